//! Native Services: a pod's packet to a frontend goes to a backend, the
//! backend's replies come back from the frontend, on this node or through
//! a peer; policy sees the real client and backend.

use etherparse::{NetSlice, TransportSlice};

use super::*;
use crate::offload::crc32c;
use crate::pipeline::DropReason;
use crate::pipeline::trace::{Recorder, Stage};
use crate::table::acl::{Rule, RuleAction, Verdict};
use crate::table::conntrack::FlowKey;
use crate::table::service::{
    Affinity, Frontend, FrontendKind, ServiceEndpoint, ServiceKey, ServicePort, ServiceTable,
    TrafficPolicy,
};
use crate::wire::transport::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};

pub(super) const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const CLIENT_PORT: u16 = 40000;

pub(super) fn backend(ip: Ipv4Addr, port: u16, local: bool) -> ServiceEndpoint {
    ServiceEndpoint {
        ip: IpAddr::V4(ip),
        port,
        local,
        ready: true,
        serving: true,
        terminating: false,
    }
}

pub(super) fn web(endpoints: Vec<ServiceEndpoint>) -> ServicePort {
    ServicePort {
        name: "default/web:http".into(),
        frontends: vec![Frontend {
            key: ServiceKey {
                ip: IpAddr::V4(VIP),
                protocol: PROTO_TCP,
                port: 80,
            },
            kind: FrontendKind::ClusterIp,
        }],
        endpoints,
        internal: TrafficPolicy::Cluster,
        external: TrafficPolicy::Cluster,
        affinity: Affinity::None,
    }
}

pub(super) fn serve(fx: &mut Fixture, ports: &[ServicePort]) {
    fx.writer.set_services(ServiceTable::build(ports).unwrap());
    fx.tables = fx.writer.publish();
}

pub(super) fn segment(
    src_mac: Mac,
    (src, sport): (impl Into<IpAddr>, u16),
    (dst, dport): (impl Into<IpAddr>, u16),
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let ethernet = PacketBuilder::ethernet2(src_mac, GW_MAC);
    let ip = match (src.into(), dst.into()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => ethernet.ipv4(src.octets(), dst.octets(), 64),
        (IpAddr::V6(src), IpAddr::V6(dst)) => ethernet.ipv6(src.octets(), dst.octets(), 64),
        (src, dst) => panic!("{src} and {dst} are of two families"),
    };
    let mut builder = ip.tcp(sport, dport, 1000, 64000);
    if flags.contains('S') {
        builder = builder.syn();
    }
    if flags.contains('A') {
        builder = builder.ack(1);
    }
    if flags.contains('R') {
        builder = builder.rst();
    }
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    tap(out)
}

pub(super) fn from_a(flags: &str) -> Vec<u8> {
    segment(MAC_A, (POD_A, CLIENT_PORT), (VIP, 80), flags, b"GET /")
}

/// The addresses and ports of a delivered TCP frame, its checksums checked.
fn ends_ip(eth: &[u8]) -> ((IpAddr, u16), (IpAddr, u16)) {
    let packet = sliced(eth);
    let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
        panic!("TCP expected")
    };
    let header = tcp.to_header();
    let (src, dst, sum) = match &packet.net {
        Some(NetSlice::Ipv4(ip)) => {
            assert_ipv4_checksum(eth);
            let ip = ip.header();
            let sum = header.calc_checksum_ipv4(&ip.to_header(), tcp.payload());
            (ip.source_addr().into(), ip.destination_addr().into(), sum)
        }
        Some(NetSlice::Ipv6(ip)) => {
            let ip = ip.header();
            let sum = header.calc_checksum_ipv6(&ip.to_header(), tcp.payload());
            (ip.source_addr().into(), ip.destination_addr().into(), sum)
        }
        _ => panic!("IP expected"),
    };
    assert_eq!(
        sum.unwrap(),
        tcp.checksum(),
        "TCP checksum after translation"
    );
    ((src, tcp.source_port()), (dst, tcp.destination_port()))
}

/// [`ends_ip`] of an IPv4 frame.
pub(super) fn ends(eth: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    match ends_ip(eth) {
        ((IpAddr::V4(src), sport), (IpAddr::V4(dst), dport)) => ((src, sport), (dst, dport)),
        other => panic!("IPv4 expected: {other:?}"),
    }
}

#[test]
fn a_local_backend_gets_the_request_and_its_reply_comes_from_the_service() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    assert_eq!(action, Action::Deliver(PORT_B));
    assert_eq!(ends(eth_of(&frame)), ((POD_A, CLIENT_PORT), (POD_B, 8080)));
    let reply = segment(MAC_B, (POD_B, 8080), (POD_A, CLIENT_PORT), "SA", b"");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_B), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(ends(eth_of(&frame)), ((VIP, 80), (POD_A, CLIENT_PORT)));
    // The client's next segment takes the remembered way.
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &from_a("A"));
    assert_eq!(action, Action::Deliver(PORT_B));
    assert_eq!(ends(eth_of(&frame)).1, (POD_B, 8080));
    assert_eq!(fx.conntrack.translations().len(), 2);
}

#[test]
fn a_remote_backends_reply_is_translated_back_on_the_clients_node() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(REMOTE_VX, 80, false)])]);
    let (action, _, _) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    let Action::Encap(encap) = action else {
        panic!("to the backend's node, got {action:?}")
    };
    assert_eq!(encap.dst.ip(), IpAddr::V4(NODE2));
    // node2's reply, encapsulated to us, from the backend's own address.
    let reply = syn_ack_from_remote_vx(80, CLIENT_PORT);
    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(ends(eth_of(&frame)), ((VIP, 80), (POD_A, CLIENT_PORT)));
}

#[test]
fn a_service_without_endpoints_refuses_and_a_local_policy_without_one_drops() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![])]);
    let (action, frame, counters) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    assert_eq!(action, Action::Reply);
    assert_eq!(counters.drops[DropReason::ServiceNoEndpoint as usize], 1);
    let packet = sliced(eth_of(&frame));
    let Some(TransportSlice::Icmpv4(icmp)) = &packet.transport else {
        panic!("ICMP expected")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port
        )
    );

    let mut local = web(vec![backend(REMOTE_VX, 80, false)]);
    local.internal = TrafficPolicy::Local;
    serve(&mut fx, &[local]);
    let (action, _, _) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    assert_eq!(action, Action::Drop(DropReason::ServiceNoLocalEndpoint));
    assert!(fx.conntrack.translations().is_empty());
}

#[test]
fn a_connection_keeps_its_backend_until_the_backend_leaves() {
    let mut fx = Fixture::new();
    let both = web(vec![
        backend(POD_B, 8080, true),
        backend(REMOTE_VX, 80, false),
    ]);
    serve(&mut fx, std::slice::from_ref(&both));
    // Find a client port whose flow goes to the local backend.
    let mut first = None;
    for port in 40_000..40_100 {
        let syn = segment(MAC_A, (POD_A, port), (VIP, 80), "S", b"");
        if fx.run(Ingress::Port(PORT_A), &syn).0 == Action::Deliver(PORT_B) {
            first = Some(port);
            break;
        }
    }
    let port = first.expect("Maglev gives some flows to each backend");
    let again = segment(MAC_A, (POD_A, port), (VIP, 80), "A", b"more");
    // The other backend leaves and comes back: flows stay where they were.
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    serve(&mut fx, &[both]);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &again).0,
        Action::Deliver(PORT_B)
    );
    // The flow's own backend leaves: the connection goes to the one left.
    serve(&mut fx, &[web(vec![backend(REMOTE_VX, 80, false)])]);
    assert!(matches!(
        fx.run(Ingress::Port(PORT_A), &again).0,
        Action::Encap(_)
    ));
    let original = FlowKey {
        src: IpAddr::V4(POD_A),
        dst: IpAddr::V4(VIP),
        protocol: PROTO_TCP,
        src_port: port,
        dst_port: 80,
    };
    let translated = fx.conntrack.translations().translated(&original).unwrap();
    assert_eq!(translated.dst, IpAddr::V4(REMOTE_VX));
}

/// Allows only the remote address `ip` (the destination of egress, the
/// source of ingress).
fn only(ip: Ipv4Addr) -> RuleSet {
    RuleSet {
        rules: vec![Rule {
            remote: vec![net(&format!("{ip}/32"))],
            ..Rule::any(1, 1, RuleAction::Allow)
        }],
        default: Verdict::Deny,
    }
}

#[test]
fn policy_judges_the_backend_and_sees_the_real_client() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(REMOTE_VX, 80, false)])]);
    // A may reach B only: not the Service's remote backend.
    fx.set_policy(PORT_A, &allow_all(), &only(POD_B));
    let (action, _, _) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    assert_eq!(action, Action::Drop(DropReason::PolicyEgress));
    assert!(fx.conntrack.translations().is_empty(), "nothing remembered");

    // B admits only A: a Service request from A gets in.
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    fx.set_policy(PORT_A, &allow_all(), &allow_all());
    fx.set_policy(PORT_B, &only(POD_A), &allow_all());
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &from_a("S")).0,
        Action::Deliver(PORT_B)
    );
}

#[test]
fn trace_shows_the_translation_and_changes_nothing() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    let mut frame = Frame::from_bytes(&from_a("S"));
    let mut recorder = Recorder::default();
    let action = fx.pipeline().process_traced(
        Ingress::Port(PORT_A),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    assert_eq!(action, Action::Deliver(PORT_B));
    assert!(recorder.stages.contains(&Stage::Service {
        service: "default/web:http".into(),
        frontend: "10.96.0.10:80".parse().unwrap(),
        backend: Some("10.244.1.3:8080".parse().unwrap()),
    }));
    assert!(fx.conntrack.translations().is_empty());
    assert!(fx.conntrack.is_empty());
}

#[test]
fn a_closed_service_flows_tuple_reused_by_a_direct_connection_is_not_translated_back() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &from_a("S")).0,
        Action::Deliver(PORT_B)
    );
    // The backend resets it: the flow is closed.
    let rst = segment(MAC_B, (POD_B, 8080), (POD_A, CLIENT_PORT), "R", b"");
    fx.run(Ingress::Port(PORT_B), &rst);
    // A's next connection from the same port goes straight to B's address.
    let direct = segment(MAC_A, (POD_A, CLIENT_PORT), (POD_B, 8080), "S", b"");
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &direct).0,
        Action::Deliver(PORT_B)
    );
    let reply = segment(MAC_B, (POD_B, 8080), (POD_A, CLIENT_PORT), "SA", b"");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_B), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(
        ends(eth_of(&frame)).0,
        (POD_B, 8080),
        "the reply of the direct connection keeps the backend's address"
    );
}

/// Pod A (`pod`, served on 8080) reaching itself through its Service
/// (`vip`:80) with `syn`: the connection comes from `hairpin`, not from its
/// own address; A's answer comes back from the Service; and a packet to the
/// hairpin address that answers no tracked flow (`stray`: the sender's MAC,
/// port and address) is dropped.
fn hairpin_round(
    fx: &mut Fixture,
    syn: &[u8],
    (pod, vip, hairpin): (IpAddr, IpAddr, IpAddr),
    (stray_mac, stray_port, stray_ip): (Mac, PortId, IpAddr),
) {
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), syn);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(
        ends_ip(eth_of(&frame)),
        ((hairpin, CLIENT_PORT), (pod, 8080)),
        "not from its own address, which it would drop"
    );
    // A answers the hairpin address; it gets its answer from the Service.
    let reply = segment(MAC_A, (pod, 8080), (hairpin, CLIENT_PORT), "SA", b"");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(ends_ip(eth_of(&frame)), ((vip, 80), (pod, CLIENT_PORT)));
    // Nothing else reaches anyone through the hairpin address.
    let stray = segment(stray_mac, (stray_ip, 9999), (hairpin, 1234), "S", b"");
    let (action, _, _) = fx.run(Ingress::Port(stray_port), &stray);
    assert_eq!(action, Action::Drop(DropReason::ToGateway));
}

#[test]
fn a_pod_reaching_itself_comes_from_the_hairpin_address_and_is_answered_as_the_service() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(POD_A, 8080, true)])]);
    hairpin_round(
        &mut fx,
        &from_a("S"),
        (
            IpAddr::V4(POD_A),
            IpAddr::V4(VIP),
            IpAddr::V4(crate::table::tables::HAIRPIN_V4),
        ),
        (MAC_B, PORT_B, IpAddr::V4(POD_B)),
    );
}

const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x96, 0, 0, 0, 0, 0, 0x10);

#[test]
fn an_ipv6_pod_reaching_itself_comes_from_the_ipv6_hairpin_address() {
    let mut fx = Fixture::new();
    let mut port = web(vec![ServiceEndpoint {
        ip: IpAddr::V6(POD_A6),
        ..backend(POD_A, 8080, true)
    }]);
    port.frontends[0].key.ip = IpAddr::V6(VIP6);
    serve(&mut fx, &[port]);
    let syn = segment(MAC_A, (POD_A6, CLIENT_PORT), (VIP6, 80), "S", b"");
    hairpin_round(
        &mut fx,
        &syn,
        (
            IpAddr::V6(POD_A6),
            IpAddr::V6(VIP6),
            IpAddr::V6(crate::table::tables::HAIRPIN_V6),
        ),
        (MAC_A, PORT_A, IpAddr::V6(POD_A6)),
    );
}

/// An SCTP packet (common header and an INIT-like chunk) from `src` to
/// `dst` over IPv4, its CRC32c filled in.
fn sctp(src_mac: Mac, (src, sport): (Ipv4Addr, u16), (dst, dport): (Ipv4Addr, u16)) -> Vec<u8> {
    let mut sctp = Vec::new();
    sctp.extend_from_slice(&sport.to_be_bytes());
    sctp.extend_from_slice(&dport.to_be_bytes());
    sctp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    sctp.extend_from_slice(&[1, 0, 0, 20, 0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0]);
    sctp.extend_from_slice(&[0, 10, 0, 10, 0, 0, 0, 1]);
    assert!(crc32c::sctp_fill(&mut sctp));
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .write(&mut out, etherparse::IpNumber(PROTO_SCTP), &sctp)
        .unwrap();
    tap(out)
}

/// The addresses and ports of a delivered IPv4 SCTP frame, its CRC32c
/// checked.
fn sctp_ends(eth: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    assert_ipv4_checksum(eth);
    let ip = &eth[14..34];
    assert_eq!(ip[9], PROTO_SCTP);
    let packet = &eth[34..];
    assert_eq!(
        crc32c::sctp_carried(packet),
        crc32c::sctp_checksum(packet),
        "SCTP checksum after translation"
    );
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let port = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    ((addr(12), port(0)), (addr(16), port(2)))
}

#[test]
fn an_sctp_service_is_translated_with_its_crc32c_both_ways() {
    let mut fx = Fixture::new();
    let mut port = web(vec![backend(POD_B, 3868, true)]);
    port.frontends[0].key.protocol = PROTO_SCTP;
    serve(&mut fx, &[port]);
    let request = sctp(MAC_A, (POD_A, CLIENT_PORT), (VIP, 80));
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &request);
    assert_eq!(action, Action::Deliver(PORT_B));
    assert_eq!(
        sctp_ends(eth_of(&frame)),
        ((POD_A, CLIENT_PORT), (POD_B, 3868))
    );
    let reply = sctp(MAC_B, (POD_B, 3868), (POD_A, CLIENT_PORT));
    let (action, frame, _) = fx.run(Ingress::Port(PORT_B), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(sctp_ends(eth_of(&frame)), ((VIP, 80), (POD_A, CLIENT_PORT)));
    // A TCP packet to the same address and port is no SCTP Service's.
    let (_, frame, _) = fx.run(Ingress::Port(PORT_A), &from_a("S"));
    assert_eq!(ends(eth_of(&frame)).1, (VIP, 80), "not translated");
}

/// A closed Service connection's tuple reused by the client's next
/// connection to the Service: conntrack ends the old flow and starts a new
/// one, and between the two the sweeper may drop the kept translation (here,
/// half of it, as a sweep of one shard does). The SYN remembers it again, so
/// the reply still comes from the Service.
#[test]
fn a_reused_tuple_remembers_its_translation_again_so_a_sweep_between_cannot_break_it() {
    let mut fx = Fixture::new();
    serve(&mut fx, &[web(vec![backend(POD_B, 8080, true)])]);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &from_a("S")).0,
        Action::Deliver(PORT_B)
    );
    let rst = segment(MAC_B, (POD_B, 8080), (POD_A, CLIENT_PORT), "R", b"");
    fx.run(Ingress::Port(PORT_B), &rst);
    let flow = |src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)| FlowKey {
        src: IpAddr::V4(src.0),
        dst: IpAddr::V4(dst.0),
        protocol: PROTO_TCP,
        src_port: src.1,
        dst_port: dst.1,
    };
    let translated = flow((POD_A, CLIENT_PORT), (POD_B, 8080));
    let unrelated = flow((POD_B, 1), (POD_A, 1));
    let translations = fx.conntrack.translations();
    assert!(translations.original(&translated).is_some());
    // The sweeper's work between the old flow's end and the new one's start.
    translations.forget(&unrelated, &translated);
    assert!(translations.original(&translated).is_none());

    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &from_a("S")).0,
        Action::Deliver(PORT_B)
    );
    let reply = segment(MAC_B, (POD_B, 8080), (POD_A, CLIENT_PORT), "SA", b"");
    let (action, frame, _) = fx.run(Ingress::Port(PORT_B), &reply);
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(
        ends(eth_of(&frame)).0,
        (VIP, 80),
        "the reply comes from the Service"
    );
}

/// The same for a datagram flow: its conntrack flow expires while the
/// client is quiet and the sweeper drops half of the kept translation; the
/// next datagram starts the flow again and remembers the translation again,
/// so the answer still comes from the Service.
#[test]
fn a_quiet_datagram_flow_remembers_its_translation_again_when_it_restarts() {
    let mut fx = Fixture::new();
    let mut dns = web(vec![backend(POD_B, 53, true)]);
    dns.frontends[0].key = ServiceKey {
        ip: IpAddr::V4(VIP),
        protocol: PROTO_UDP,
        port: 53,
    };
    serve(&mut fx, &[dns]);
    let query = tap(udp4(MAC_A, POD_A, VIP, 64, b"query"));
    let answer = tap(udp_reply(MAC_B, POD_B, POD_A));
    let answered_by = |now_ms| {
        let (action, _, _) = fx.run_at(now_ms, Ingress::Port(PORT_A), &query);
        assert_eq!(
            action,
            Action::Deliver(PORT_B),
            "the query reaches the backend"
        );
        let (action, frame, _) = fx.run_at(now_ms, Ingress::Port(PORT_B), &answer);
        assert_eq!(action, Action::Deliver(PORT_A));
        let NetSlice::Ipv4(ip) = SlicedPacket::from_ethernet(eth_of(&frame))
            .unwrap()
            .net
            .unwrap()
        else {
            panic!("not IPv4");
        };
        ip.header().source_addr()
    };
    assert_eq!(answered_by(NOW_MS), VIP);
    let translated = FlowKey {
        src: IpAddr::V4(POD_A),
        dst: IpAddr::V4(POD_B),
        protocol: PROTO_UDP,
        src_port: 5353,
        dst_port: 53,
    };
    let unrelated = FlowKey {
        src: IpAddr::V4(POD_B),
        dst: IpAddr::V4(POD_A),
        protocol: PROTO_UDP,
        src_port: 1,
        dst_port: 1,
    };
    let translations = fx.conntrack.translations();
    translations.forget(&unrelated, &translated);
    assert!(translations.original(&translated).is_none());
    // Past the established datagram flow's timeout (180 s).
    let later = NOW_MS + 200_000;
    assert_eq!(answered_by(later), VIP, "the answer comes from the Service");
}

//! Fragmented datagrams: virtual reassembly gives every later fragment its
//! first fragment's ports, so it is routed, tracked and judged by policy as
//! the first was; a later fragment that comes first is held. The fragments
//! are built field by field with etherparse's headers.

use etherparse::{IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, UdpHeader};

use super::*;
use crate::pipeline::DropReason;
use crate::pipeline::trace::Recorder;
use crate::table::acl::{PortRange, Rule, RuleAction, Verdict};

const ID: u16 = 0x4242;

/// A UDP datagram of `len` payload bytes from `src:5353` to `dst:53`, as the
/// bytes after the IP header (UDP header + payload).
fn udp_datagram(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let header = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => UdpHeader::with_ipv4_checksum(
            5353,
            53,
            &Ipv4Header::new(0, 64, IpNumber::UDP, s.octets(), d.octets()).unwrap(),
            &payload,
        )
        .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Header {
                source: s.octets(),
                destination: d.octets(),
                next_header: IpNumber::UDP,
                hop_limit: 64,
                ..Default::default()
            };
            UdpHeader::with_ipv6_checksum(5353, 53, &ip, &payload).unwrap()
        }
        _ => unreachable!(),
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

/// The IPv4 fragment of `datagram` at byte `offset` (a multiple of 8) of `len` bytes.
fn v4_fragment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    datagram: &[u8],
    offset: usize,
    len: usize,
) -> Vec<u8> {
    let part = &datagram[offset..(offset + len).min(datagram.len())];
    let mut ip = Ipv4Header::new(
        part.len() as u16,
        64,
        IpNumber::UDP,
        src.octets(),
        dst.octets(),
    )
    .unwrap();
    ip.identification = ID;
    ip.more_fragments = offset + len < datagram.len();
    ip.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    out.extend_from_slice(part);
    out
}

/// The IPv6 fragment of `datagram` at byte `offset` of `len` bytes.
fn v6_fragment(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    datagram: &[u8],
    offset: usize,
    len: usize,
) -> Vec<u8> {
    let part = &datagram[offset..(offset + len).min(datagram.len())];
    let frag = Ipv6FragmentHeader::new(
        IpNumber::UDP,
        IpFragOffset::try_new((offset / 8) as u16).unwrap(),
        offset + len < datagram.len(),
        0x1234_5678,
    );
    let ip = Ipv6Header {
        source: src.octets(),
        destination: dst.octets(),
        next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
        hop_limit: 64,
        payload_length: (8 + part.len()) as u16,
        ..Default::default()
    };
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::IPV6,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    frag.write(&mut out).unwrap();
    out.extend_from_slice(part);
    out
}

fn v4_fragments() -> Vec<Vec<u8>> {
    let datagram = udp_datagram(IpAddr::V4(POD_A), IpAddr::V4(POD_B), 3000);
    (0..datagram.len())
        .step_by(1400)
        .map(|offset| tap(v4_fragment(POD_A, POD_B, &datagram, offset, 1400)))
        .collect()
}

#[test]
fn every_fragment_of_a_datagram_is_delivered() {
    let fx = Fixture::new();
    let fragments = v4_fragments();
    assert_eq!(fragments.len(), 3);
    for (i, fragment) in fragments.iter().enumerate() {
        let (action, frame, _) = fx.run(Ingress::Port(PORT_A), fragment);
        assert_eq!(action, Action::Deliver(PORT_B), "fragment {i}");
        assert_eq!(
            eth_of(&frame).len(),
            fragment.len() - 10,
            "fragment {i} whole"
        );
    }
}

#[test]
fn ipv6_fragments_are_delivered_too() {
    let fx = Fixture::new();
    let datagram = udp_datagram(IpAddr::V6(POD_A6), IpAddr::V6(POD_B6), 2500);
    for offset in [0, 1400] {
        let fragment = tap(v6_fragment(POD_A6, POD_B6, &datagram, offset, 1400));
        let (action, _, _) = fx.run(Ingress::Port(PORT_A), &fragment);
        assert_eq!(action, Action::Deliver(PORT_B), "offset {offset}");
    }
}

#[test]
fn a_later_fragment_before_the_first_is_held_then_goes_on() {
    let fx = Fixture::new();
    let fragments = v4_fragments();
    let (early, _, counters) = fx.run(Ingress::Port(PORT_A), &fragments[2]);
    assert_eq!(early, Action::Hold);
    assert_eq!(counters.held, 1);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &fragments[0]).0,
        Action::Deliver(PORT_B)
    );
    // Decided again (as the worker does with what it held): it goes on.
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &fragments[2]).0,
        Action::Deliver(PORT_B)
    );
    // A trace of an unknown datagram's later fragment holds nothing.
    let other = Fixture::new();
    let mut frame = Frame::from_bytes(&fragments[1]);
    let mut recorder = Recorder::default();
    let action = other.pipeline().process_traced(
        Ingress::Port(PORT_A),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    assert_eq!(action, Action::Drop(DropReason::Fragment));
}

#[test]
fn later_fragments_share_the_first_fragments_policy_verdict() {
    let mut fx = Fixture::new();
    let deny_dns = RuleSet {
        rules: vec![Rule {
            protocol: Some(17),
            ports: Some(PortRange::single(53)),
            ..Rule::any(1, 1, RuleAction::Deny)
        }],
        default: Verdict::Allow,
    };
    let open = allow_all();
    fx.set_policy(PORT_B, &deny_dns, &open);
    for (i, fragment) in v4_fragments().iter().enumerate() {
        let (action, _, _) = fx.run(Ingress::Port(PORT_A), fragment);
        assert_eq!(
            action,
            Action::Drop(DropReason::PolicyIngress),
            "fragment {i}"
        );
    }
}

#[test]
fn a_first_udp_fragment_is_not_malformed() {
    // Its UDP length covers the whole datagram, beyond the fragment.
    let datagram = udp_datagram(IpAddr::V4(POD_A), IpAddr::V4(POD_B), 3000);
    let first = v4_fragment(POD_A, POD_B, &datagram, 0, 1400);
    let parsed = crate::pipeline::parse::parse_ethernet(&first).unwrap();
    let crate::pipeline::parse::L3::Ip(ip) = parsed.l3 else {
        panic!()
    };
    assert_eq!(ip.flow_ports(), (5353, 53));
    let fragment = ip.fragment.unwrap();
    assert!(fragment.is_first() && fragment.more);
    assert_eq!(fragment.id, u32::from(ID));
}

#[test]
fn fragments_from_a_peer_are_decapsulated_and_delivered_in_any_order() {
    let fx = Fixture::new();
    let datagram = udp_datagram(IpAddr::V4(REMOTE_VX), IpAddr::V4(POD_A), 2000);
    let vxlan = |offset: usize| {
        let mut inner = v4_fragment(REMOTE_VX, POD_A, &datagram, offset, 1400);
        inner[..6].copy_from_slice(&VTEP_MAC);
        inner[6..12].copy_from_slice(&PEER2_VTEP);
        let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        out.extend_from_slice(&inner);
        out
    };
    let from = from_underlay(Backend::Vxlan, NODE2);
    assert_eq!(fx.run(from, &vxlan(1400)).0, Action::Hold);
    assert_eq!(fx.run(from, &vxlan(0)).0, Action::Deliver(PORT_A));
    assert_eq!(fx.run(from, &vxlan(1400)).0, Action::Deliver(PORT_A));
}

//! Frames that are cut short, lie about their lengths, or come from the wrong
//! place: each is dropped with its reason, never a panic.

use super::*;
use crate::pipeline::DropReason;

fn run_port_a(bytes: &[u8]) -> Action {
    Fixture::new().run(Ingress::Port(PORT_A), bytes).0
}

#[test]
fn zero_length_and_short_frames_are_truncated() {
    assert_eq!(run_port_a(&[]), Action::Drop(DropReason::Truncated));
    assert_eq!(run_port_a(&[0; 5]), Action::Drop(DropReason::Truncated));
    assert_eq!(
        run_port_a(&[0; 10]),
        Action::Drop(DropReason::Truncated),
        "virtio-net header only"
    );
    assert_eq!(
        run_port_a(&[0; 23]),
        Action::Drop(DropReason::Truncated),
        "Ethernet header cut short"
    );
}

#[test]
fn every_prefix_of_a_valid_frame_is_dropped_or_decided_without_panic() {
    let fx = Fixture::new();
    let full = tap(tcp4(MAC_A, POD_A, POD_B, 80, b"payload"));
    for len in 0..full.len() {
        let (action, _, _) = fx.run(Ingress::Port(PORT_A), &full[..len]);
        assert!(
            matches!(action, Action::Drop(_)),
            "prefix of {len} bytes: {action:?}"
        );
    }
}

#[test]
fn ipv4_header_cut_short_is_truncated() {
    let full = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    assert_eq!(
        run_port_a(&full[..10 + 14 + 12]),
        Action::Drop(DropReason::Truncated)
    );
}

#[test]
fn vlan_tagged_frames_are_an_unknown_ethertype() {
    let mut frame = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    frame[10 + 12..10 + 14].copy_from_slice(&[0x81, 0x00]);
    assert_eq!(
        run_port_a(&frame),
        Action::Drop(DropReason::UnknownEthertype)
    );
}

#[test]
fn ipv4_total_length_that_lies_is_malformed() {
    let base = tap(tcp4(MAC_A, POD_A, POD_B, 80, b"abcd"));
    let total = 10 + 14 + 2;
    let mut longer = base.clone();
    longer[total..total + 2].copy_from_slice(&2000u16.to_be_bytes());
    assert_eq!(run_port_a(&longer), Action::Drop(DropReason::MalformedIp));
    let mut shorter = base.clone();
    shorter[total..total + 2].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(run_port_a(&shorter), Action::Drop(DropReason::MalformedIp));
}

#[test]
fn bad_ip_version_and_header_length_are_malformed() {
    let base = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    let mut ihl = base.clone();
    ihl[24] = 0x43;
    assert_eq!(run_port_a(&ihl), Action::Drop(DropReason::MalformedIp));
    let mut version = base.clone();
    version[24] = 0x55;
    assert_eq!(run_port_a(&version), Action::Drop(DropReason::MalformedIp));
}

#[test]
fn ipv6_payload_length_that_lies_is_malformed() {
    let mut frame = tap(tcp6(MAC_A, POD_A6, POD_B6, 80, b""));
    frame[10 + 14 + 4..10 + 14 + 6].copy_from_slice(&5000u16.to_be_bytes());
    assert_eq!(run_port_a(&frame), Action::Drop(DropReason::MalformedIp));
}

#[test]
fn tcp_data_offset_that_lies_is_malformed() {
    let mut frame = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    frame[10 + 14 + 20 + 12] = 0xf0;
    assert_eq!(run_port_a(&frame), Action::Drop(DropReason::MalformedL4));
    let mut small = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    small[10 + 14 + 20 + 12] = 0x20;
    assert_eq!(run_port_a(&small), Action::Drop(DropReason::MalformedL4));
}

#[test]
fn udp_length_that_lies_is_malformed() {
    let mut frame = tap(udp4(MAC_A, POD_A, POD_B, 64, b"abc"));
    frame[10 + 14 + 20 + 4..10 + 14 + 20 + 6].copy_from_slice(&500u16.to_be_bytes());
    assert_eq!(run_port_a(&frame), Action::Drop(DropReason::MalformedL4));
    let mut tiny = tap(udp4(MAC_A, POD_A, POD_B, 64, b"abc"));
    tiny[10 + 14 + 20 + 4..10 + 14 + 20 + 6].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(run_port_a(&tiny), Action::Drop(DropReason::MalformedL4));
}

#[test]
fn icmp_header_cut_short_is_malformed() {
    let mut header = etherparse::Ipv4Header::new(
        4,
        64,
        etherparse::IpNumber::ICMP,
        POD_A.octets(),
        POD_B.octets(),
    )
    .unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut out)
    .unwrap();
    header.write(&mut out).unwrap();
    out.extend_from_slice(&[8, 0, 0, 0]);
    assert_eq!(run_port_a(&tap(out)), Action::Drop(DropReason::MalformedL4));
}

#[test]
fn arp_for_another_protocol_is_malformed() {
    let packet = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV6,
        etherparse::ArpOperation::REQUEST,
        &MAC_A,
        &POD_A.octets(),
        &[0; 6],
        &POD_B.octets(),
    )
    .unwrap();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: [0xff; 6],
        ether_type: etherparse::EtherType::ARP,
    }
    .write(&mut out)
    .unwrap();
    packet.write(&mut out).unwrap();
    assert_eq!(
        run_port_a(&tap(out.clone())),
        Action::Drop(DropReason::MalformedArp)
    );
    assert_eq!(
        run_port_a(&tap(out[..20].to_vec())),
        Action::Drop(DropReason::MalformedArp)
    );
}

#[test]
fn a_lone_later_ipv4_fragment_is_held_for_its_first() {
    let mut header = etherparse::Ipv4Header::new(
        8,
        64,
        etherparse::IpNumber::UDP,
        POD_A.octets(),
        POD_B.octets(),
    )
    .unwrap();
    header.fragment_offset = etherparse::IpFragOffset::try_new(100).unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut out)
    .unwrap();
    header.write(&mut out).unwrap();
    out.extend_from_slice(&[1; 8]);
    assert_eq!(run_port_a(&tap(out)), Action::Hold);
}

#[test]
fn an_ipv6_first_fragment_is_forwarded_by_its_ports() {
    let fragment = etherparse::Ipv6FragmentHeader::new(
        etherparse::IpNumber::UDP,
        etherparse::IpFragOffset::try_new(0).unwrap(),
        true,
        77,
    );
    let mut ip = etherparse::Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 0,
        next_header: etherparse::IpNumber::IPV6_FRAGMENTATION_HEADER,
        hop_limit: 64,
        source: POD_A6.octets(),
        destination: POD_B6.octets(),
    };
    let body = [9u8; 16];
    ip.payload_length = (8 + body.len()) as u16;
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: MAC_A,
        destination: GW_MAC,
        ether_type: etherparse::EtherType::IPV6,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    fragment.write(&mut out).unwrap();
    out.extend_from_slice(&body);
    assert_eq!(run_port_a(&tap(out)), Action::Deliver(PORT_B));
}

#[test]
fn a_pod_sending_from_another_mac_or_ip_is_spoofing() {
    let fx = Fixture::new();
    let (action, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_B, POD_A, POD_B, 80, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::SpoofedMac));
    assert_eq!(counters.drops_of(DropReason::SpoofedMac), 1);
    let (action, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_B, POD_A, 80, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::SpoofedIp));
    assert_eq!(counters.drops_of(DropReason::SpoofedIp), 1);
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp6(
            MAC_A,
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9),
            POD_B6,
            80,
            b"",
        )),
    );
    assert_eq!(
        action,
        Action::Drop(DropReason::SpoofedIp),
        "link-local sources reach only the gateway"
    );
}

#[test]
fn frames_from_a_port_without_endpoint_are_dropped() {
    let fx = Fixture::new();
    let (action, _, _) = fx.run(
        Ingress::Port(PortId(42)),
        &tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::UnknownPort));
}

#[test]
fn arbitrary_bytes_never_panic() {
    use rand::{RngExt, SeedableRng};
    let fx = Fixture::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let seed_frames = [
        tap(tcp4(MAC_A, POD_A, POD_B, 80, b"x")),
        tap(udp4(MAC_A, POD_A, REMOTE_VX, 64, b"y")),
        tap(tcp6(MAC_A, POD_A6, REMOTE_VX6, 80, b"z")),
    ];
    let ingresses = [
        Ingress::Port(PORT_A),
        Ingress::Host,
        from_underlay(Backend::Vxlan, NODE2),
        from_underlay(Backend::Udp, NODE3),
    ];
    for i in 0..20_000 {
        let mut bytes = seed_frames[i % seed_frames.len()].clone();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        bytes.truncate(rng.random_range(0..=bytes.len()));
        let _ = fx.run(ingresses[i % ingresses.len()], &bytes);
    }
}

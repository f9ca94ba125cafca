//! The gateway's own answers: proxy ARP, neighbour discovery, ping.

use super::*;
use crate::pipeline::DropReason;
use crate::table::tables::{GATEWAY_V4, GATEWAY_V6};

fn arp(
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    operation: etherparse::ArpOperation,
) -> Vec<u8> {
    let packet = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        operation,
        &sender_mac,
        &sender_ip.octets(),
        &[0; 6],
        &target_ip.octets(),
    )
    .unwrap();
    let mut out = Vec::new();
    etherparse::Ethernet2Header {
        source: sender_mac,
        destination: [0xff; 6],
        ether_type: etherparse::EtherType::ARP,
    }
    .write(&mut out)
    .unwrap();
    packet.write(&mut out).unwrap();
    out
}

fn parse_arp_reply(frame: &Frame) -> etherparse::ArpPacket {
    let eth = eth_of(frame);
    assert_eq!(&eth[12..14], &[0x08, 0x06]);
    etherparse::ArpPacketSlice::from_slice(&eth[14..])
        .unwrap()
        .to_packet()
}

#[test]
fn arp_for_the_gateway_is_answered_with_the_gateway_mac() {
    let fx = Fixture::new();
    let request = arp(MAC_A, POD_A, GATEWAY_V4, etherparse::ArpOperation::REQUEST);
    let (action, frame, counters) = fx.run(Ingress::Port(PORT_A), &tap(request));
    assert_eq!(action, Action::Reply);
    assert_eq!(counters.replied, 1);
    assert_eq!(&frame.data()[..10], &[0; 10]);
    assert_eq!(&eth_of(&frame)[..6], &MAC_A);
    let reply = parse_arp_reply(&frame);
    assert_eq!(reply.operation, etherparse::ArpOperation::REPLY);
    assert_eq!(reply.sender_hw_addr(), &GW_MAC);
    assert_eq!(reply.sender_protocol_addr(), &GATEWAY_V4.octets());
    assert_eq!(reply.target_hw_addr(), &MAC_A);
    assert_eq!(reply.target_protocol_addr(), &POD_A.octets());
}

#[test]
fn arp_for_any_other_address_is_proxied() {
    let fx = Fixture::new();
    let request = arp(MAC_A, POD_A, POD_B, etherparse::ArpOperation::REQUEST);
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(request));
    assert_eq!(action, Action::Reply);
    let reply = parse_arp_reply(&frame);
    assert_eq!(reply.sender_hw_addr(), &GW_MAC);
    assert_eq!(reply.sender_protocol_addr(), &POD_B.octets());
}

#[test]
fn the_host_gets_proxy_arp_too() {
    let fx = Fixture::new();
    let request = arp(
        HOST_MAC,
        Ipv4Addr::new(192, 168, 0, 1),
        GATEWAY_V4,
        etherparse::ArpOperation::REQUEST,
    );
    let (action, frame, _) = fx.run(Ingress::Host, &tap(request));
    assert_eq!(action, Action::Reply);
    assert_eq!(parse_arp_reply(&frame).target_hw_addr(), &HOST_MAC);
}

#[test]
fn arp_replies_announcements_and_probes_are_ignored() {
    let fx = Fixture::new();
    for request in [
        arp(MAC_A, POD_A, GATEWAY_V4, etherparse::ArpOperation::REPLY),
        arp(MAC_A, POD_A, POD_A, etherparse::ArpOperation::REQUEST),
        arp(
            MAC_A,
            Ipv4Addr::UNSPECIFIED,
            POD_A,
            etherparse::ArpOperation::REQUEST,
        ),
    ] {
        let (action, _, _) = fx.run(Ingress::Port(PORT_A), &tap(request));
        assert_eq!(action, Action::Drop(DropReason::ArpIgnored));
    }
}

#[test]
fn arp_from_a_forged_sender_is_dropped() {
    let fx = Fixture::new();
    let forged_ip = arp(MAC_A, POD_B, GATEWAY_V4, etherparse::ArpOperation::REQUEST);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(forged_ip)).0,
        Action::Drop(DropReason::SpoofedIp)
    );
    let mut forged_mac = arp(MAC_B, POD_A, GATEWAY_V4, etherparse::ArpOperation::REQUEST);
    forged_mac[6..12].copy_from_slice(&MAC_A);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(forged_mac)).0,
        Action::Drop(DropReason::SpoofedMac)
    );
}

#[test]
fn ping_to_the_gateway_is_answered() {
    let fx = Fixture::new();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW_MAC)
        .ipv4(POD_A.octets(), GATEWAY_V4.octets(), 64)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut out, b"ping-data")
        .unwrap();
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(out));
    assert_eq!(action, Action::Reply);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else {
        panic!("not icmp")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 0x1234, seq: 7 })
    );
    assert_eq!(icmp.payload(), b"ping-data");
    let header = icmp.header();
    assert_eq!(
        header.checksum,
        header.icmp_type.calc_checksum(icmp.payload())
    );
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!()
    };
    assert_eq!(ip.header().source_addr(), GATEWAY_V4);
    assert_eq!(ip.header().destination_addr(), POD_A);
}

#[test]
fn ping6_to_the_gateway_is_answered() {
    let fx = Fixture::new();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW_MAC)
        .ipv6(POD_A6.octets(), GATEWAY_V6.octets(), 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut out, b"six")
        .unwrap();
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(out));
    assert_eq!(action, Action::Reply);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &packet.transport else {
        panic!("not icmpv6")
    };
    assert_eq!(icmp.type_u8(), 129);
    assert!(icmp.is_checksum_valid(GATEWAY_V6.octets(), POD_A6.octets()));
}

fn neighbour_solicitation(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&MAC_A);
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 1);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, [0x33, 0x33, 0xff, 0, 0, 1])
        .ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(etherparse::Icmpv6Type::NeighborSolicitation)
        .write(&mut out, &body)
        .unwrap();
    out
}

#[test]
fn neighbour_solicitation_for_the_gateway_is_advertised() {
    let fx = Fixture::new();
    let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa);
    let (action, frame, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(neighbour_solicitation(link_local, GATEWAY_V6)),
    );
    assert_eq!(action, Action::Reply);
    let eth = eth_of(&frame);
    let packet = sliced(eth);
    let Some(etherparse::NetSlice::Ipv6(ip)) = &packet.net else {
        panic!("not ipv6")
    };
    assert_eq!(ip.header().hop_limit(), 255);
    assert_eq!(ip.header().destination_addr(), link_local);
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &packet.transport else {
        panic!("not icmpv6")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv6Type::NeighborAdvertisement(
            etherparse::icmpv6::NeighborAdvertisementHeader {
                router: true,
                solicited: true,
                r#override: true
            }
        )
    );
    assert!(icmp.is_checksum_valid(GATEWAY_V6.octets(), link_local.octets()));
    let body = icmp.payload();
    assert_eq!(&body[..16], &GATEWAY_V6.octets());
    assert_eq!(&body[16..18], &[2, 1]);
    assert_eq!(&body[18..24], &GW_MAC);
}

#[test]
fn duplicate_address_detection_and_router_solicitations_need_no_answer() {
    let fx = Fixture::new();
    let dad = neighbour_solicitation(Ipv6Addr::UNSPECIFIED, POD_A6);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(dad)).0,
        Action::Drop(DropReason::NdIgnored)
    );
    // The probe for the pod's own link-local address, which the tables do not know.
    let link_local = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x858, 0xaff, 0xfef4, 0x102);
    let dad = neighbour_solicitation(Ipv6Addr::UNSPECIFIED, link_local);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(dad)).0,
        Action::Drop(DropReason::NdIgnored)
    );
    let mut rs = Vec::new();
    PacketBuilder::ethernet2(MAC_A, [0x33, 0x33, 0, 0, 0, 2])
        .ipv6(
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa).octets(),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2).octets(),
            255,
        )
        .icmpv6(etherparse::Icmpv6Type::RouterSolicitation)
        .write(&mut rs, &[])
        .unwrap();
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(rs)).0,
        Action::Drop(DropReason::NdIgnored)
    );
}

#[test]
fn anything_but_ping_to_the_gateway_is_dropped() {
    let fx = Fixture::new();
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, GATEWAY_V4, 22, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::ToGateway));
}

#[test]
fn broadcast_and_multicast_are_not_forwarded() {
    let fx = Fixture::new();
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, Ipv4Addr::BROADCAST, 64, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::Broadcast));
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, Ipv4Addr::new(239, 1, 2, 3), 64, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::Broadcast));
}

//! Pod to pod on the node, pod to host, host to pod, routing failures.

use super::*;
use crate::pipeline::DropReason;

#[test]
fn pod_to_pod_is_delivered_with_macs_rewritten_and_ttl_decremented() {
    let fx = Fixture::new();
    let input = tcp4(MAC_A, POD_A, POD_B, 80, b"hello");
    let (action, frame, counters) = fx.run(Ingress::Port(PORT_A), &tap(input.clone()));
    assert_eq!(action, Action::Deliver(PORT_B));
    assert_eq!(
        &frame.data()[..10],
        &[0; 10],
        "the virtio-net header passes through"
    );
    let eth = eth_of(&frame);
    let packet = sliced(eth);
    let link = packet.link.as_ref().unwrap().to_header().unwrap();
    let link = link.ethernet2().unwrap();
    assert_eq!(link.destination, MAC_B);
    assert_eq!(link.source, GW_MAC);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.header().ttl(), 63);
    assert_ipv4_checksum(eth);
    assert_eq!(&eth[eth.len() - 5..], b"hello");
    assert_eq!(eth.len(), input.len());
    assert_eq!(counters.delivered, 1);
    assert_eq!(counters.conntrack_created, 1);
}

#[test]
fn ipv6_pod_to_pod_decrements_the_hop_limit() {
    let fx = Fixture::new();
    let (action, frame, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp6(MAC_A, POD_A6, POD_B6, 443, b"x")),
    );
    assert_eq!(action, Action::Deliver(PORT_B));
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::NetSlice::Ipv6(ip)) = &packet.net else {
        panic!("not ipv6")
    };
    assert_eq!(ip.header().hop_limit(), 63);
    assert_eq!(&eth_of(&frame)[..6], &MAC_B);
}

#[test]
fn traffic_outside_the_cluster_goes_to_the_host_port() {
    let fx = Fixture::new();
    let (action, frame, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, OUTSIDE, 64, b"q")),
    );
    assert_eq!(action, Action::ToHost);
    assert_eq!(&eth_of(&frame)[..6], &HOST_MAC);
    assert_eq!(&eth_of(&frame)[6..12], &GW_MAC);
    assert_ipv4_checksum(eth_of(&frame));
    assert_eq!(counters.to_host, 1);
}

#[test]
fn host_to_pod_is_delivered() {
    let fx = Fixture::new();
    let node_ip = Ipv4Addr::new(192, 168, 0, 1);
    let (action, frame, _) = fx.run(
        Ingress::Host,
        &tap(tcp4(HOST_MAC, node_ip, POD_A, 8080, b"probe")),
    );
    assert_eq!(action, Action::Deliver(PORT_A));
    assert_eq!(&eth_of(&frame)[..6], &MAC_A);
}

#[test]
fn host_to_host_is_a_loop() {
    let fx = Fixture::new();
    let (action, _, counters) =
        fx.run(Ingress::Host, &tap(udp4(HOST_MAC, POD_A, OUTSIDE, 64, b"")));
    assert_eq!(action, Action::Drop(DropReason::HostLoop));
    assert_eq!(counters.drops_of(DropReason::HostLoop), 1);
}

#[test]
fn blackholed_destination_is_dropped() {
    let fx = Fixture::new();
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, BLACKHOLED, 64, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::Blackhole));
}

#[test]
fn no_route_answers_icmp_network_unreachable() {
    let fx = Fixture::with_default_route(false);
    let input = udp4(MAC_A, POD_A, OUTSIDE, 64, b"data");
    let (action, frame, counters) = fx.run(Ingress::Port(PORT_A), &tap(input.clone()));
    assert_eq!(action, Action::Reply);
    assert_eq!(counters.drops_of(DropReason::NoRoute), 1);
    assert_eq!(counters.replied, 1);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else {
        panic!("not icmp")
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 0));
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!("not ipv4")
    };
    assert_eq!(ip.header().destination_addr(), POD_A);
    assert_eq!(ip.header().source_addr(), crate::table::tables::GATEWAY_V4);
    // The error quotes the offending IP packet.
    assert_eq!(icmp.payload(), &input[14..]);
    assert_ipv4_checksum(eth_of(&frame));
    let header = icmp.header();
    assert_eq!(
        header.checksum,
        header.icmp_type.calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
}

#[test]
fn ttl_of_one_answers_time_exceeded() {
    let fx = Fixture::new();
    let (action, frame, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, POD_B, 1, b"")),
    );
    assert_eq!(action, Action::Reply);
    assert_eq!(counters.drops_of(DropReason::TtlExceeded), 1);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &packet.transport else {
        panic!("not icmp")
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (11, 0));
}

#[test]
fn an_icmp_error_never_answers_an_icmp_error() {
    let fx = Fixture::new();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW_MAC)
        .ipv4(POD_A.octets(), POD_B.octets(), 1)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut out, &[0x45; 28])
        .unwrap();
    let (action, _, _) = fx.run(Ingress::Port(PORT_A), &tap(out));
    assert_eq!(action, Action::Drop(DropReason::TtlExceeded));
}

#[test]
fn trailing_bytes_beyond_the_ip_length_are_not_forwarded_as_payload() {
    let fx = Fixture::new();
    let mut input = tcp4(MAC_A, POD_A, POD_B, 80, b"abc");
    let ip_end = input.len();
    input.extend_from_slice(&[0xaa; 100_000]);
    let (action, frame, _) = fx.run(Ingress::Port(PORT_A), &tap(input));
    assert_eq!(action, Action::Deliver(PORT_B));
    assert_eq!(eth_of(&frame).len(), ip_end);
    assert_eq!(&eth_of(&frame)[ip_end - 3..], b"abc");
}

#[test]
fn a_batch_decides_every_frame_in_order() {
    let fx = Fixture::new();
    let mut frames = vec![
        Frame::from_bytes(&tap(tcp4(MAC_A, POD_A, POD_B, 80, b""))),
        Frame::from_bytes(&tap(udp4(MAC_A, POD_A, OUTSIDE, 64, b""))),
        Frame::from_bytes(&[]),
    ];
    let mut actions = Vec::new();
    let mut counters = Counters::default();
    fx.pipeline().process_batch(
        Ingress::Port(PORT_A),
        &mut frames,
        &mut actions,
        &mut counters,
    );
    assert_eq!(
        actions,
        vec![
            Action::Deliver(PORT_B),
            Action::ToHost,
            Action::Drop(DropReason::Truncated)
        ]
    );
    assert_eq!(counters.delivered + counters.to_host, 2);
}

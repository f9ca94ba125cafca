//! The node's own overlay address (a `node` route): pods and peers reach it
//! through the host port, the host itself must not loop to it, and the
//! default route stays closed to peers.

use super::*;
use crate::pipeline::DropReason;
use crate::pipeline::trace::{Recorder, Stage};

/// This node's address on the overlay (first address of its pod subnet).
const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const NODE_ADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 1);

/// The standard fixture plus `node` routes for this node's overlay addresses.
fn fixture() -> Fixture {
    let mut fx = Fixture::new();
    fx.writer
        .set_route(net("10.244.1.1/32"), NextHop::Node)
        .unwrap();
    fx.writer
        .set_route(net("fd00:10:244:1::1/128"), NextHop::Node)
        .unwrap();
    fx.tables = fx.writer.publish();
    fx
}

/// A VXLAN payload (VNI 1) from node2: an ICMP echo request from `src` to `dst`.
fn vxlan4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(src.octets(), dst.octets(), 63)
        .icmpv4_echo_request(7, 1)
        .write(&mut out, b"probe")
        .unwrap();
    out
}

/// A VXLAN payload (VNI 1) from node2: an IPv6 UDP datagram from `src` to `dst`.
fn vxlan6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv6(src.octets(), dst.octets(), 63)
        .udp(1000, 2000)
        .write(&mut out, b"probe")
        .unwrap();
    out
}

/// Asserts `frame` is an Ethernet frame for the host port: to the kernel's
/// MAC, from the gateway's.
fn assert_for_host(frame: &Frame) {
    let eth = eth_of(frame);
    assert_eq!(&frame.data()[..10], &[0; 10], "an empty virtio-net header");
    assert_eq!(&eth[..6], &HOST_MAC, "to the kernel's MAC");
    assert_eq!(&eth[6..12], &GW_MAC, "from the gateway's MAC");
}

#[test]
fn vxlan_from_a_peer_to_the_node_address_goes_to_the_host() {
    let fx = fixture();
    let input = vxlan4(REMOTE_VX, NODE_ADDR);
    let (action, frame, counters) = fx.run(from_underlay(Backend::Vxlan, NODE2), &input);
    assert_eq!(action, Action::ToHost);
    assert_eq!(counters.drops.iter().sum::<u64>(), 0);
    assert_eq!(counters.conntrack_created, 1, "the flow is tracked");
    assert_for_host(&frame);
    let eth = eth_of(&frame);
    assert_eq!(eth.len(), input.len() - 8);
    let packet = sliced(eth);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!("{packet:?}")
    };
    assert_eq!(ip.header().destination_addr(), NODE_ADDR);
    assert_eq!(ip.header().source_addr(), REMOTE_VX);
    assert_eq!(ip.header().ttl(), 62, "TTL decremented once more");
    assert_ipv4_checksum(eth);
}

#[test]
fn ipv6_from_a_peer_to_the_node_address_goes_to_the_host() {
    let fx = fixture();
    let input = vxlan6(REMOTE_VX6, NODE_ADDR6);
    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &input);
    assert_eq!(action, Action::ToHost);
    assert_for_host(&frame);
    let packet = sliced(eth_of(&frame));
    let Some(etherparse::NetSlice::Ipv6(ip)) = &packet.net else {
        panic!("{packet:?}")
    };
    assert_eq!(ip.header().hop_limit(), 62);
}

#[test]
fn flannel_udp_from_a_peer_to_the_node_address_goes_to_the_host() {
    let fx = fixture();
    let input = bare_udp4(REMOTE_UDP, NODE_ADDR, b"probe");
    let (action, frame, _) = fx.run(from_underlay(Backend::Udp, NODE3), &input);
    assert_eq!(action, Action::ToHost);
    assert_for_host(&frame);
    assert_eq!(eth_of(&frame).len(), 14 + input.len());
    assert_ipv4_checksum(eth_of(&frame));
}

#[test]
fn a_pod_reaches_the_node_address_through_the_host_port() {
    let fx = fixture();
    let (action, frame, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, NODE_ADDR, 8080, b"hello")),
    );
    assert_eq!(action, Action::ToHost);
    assert_eq!(counters.conntrack_created, 1, "the flow is tracked");
    assert_for_host(&frame);
    let eth = eth_of(&frame);
    let packet = sliced(eth);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &packet.net else {
        panic!("{packet:?}")
    };
    assert_eq!(ip.header().ttl(), 63);
    assert_ipv4_checksum(eth);
}

#[test]
fn the_pods_egress_policy_applies_to_the_node_address() {
    let mut fx = fixture();
    let deny = deny_all();
    let allow = allow_all();
    fx.set_policy(PORT_A, &allow, &deny);
    let (action, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, NODE_ADDR, 8080, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::PolicyEgress));
}

#[test]
fn the_host_sending_to_its_own_node_address_is_a_loop() {
    let fx = fixture();
    let (action, _, counters) = fx.run(
        Ingress::Host,
        &tap(udp4(HOST_MAC, NODE_ADDR, NODE_ADDR, 64, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::HostLoop));
    assert_eq!(counters.drops_of(DropReason::HostLoop), 1);
}

#[test]
fn peers_still_cannot_relay_through_the_default_route() {
    let fx = fixture();
    for dst in [OUTSIDE, Ipv4Addr::new(10, 244, 1, 9)] {
        let (action, _, counters) = fx.run(
            from_underlay(Backend::Vxlan, NODE2),
            &vxlan4(REMOTE_VX, dst),
        );
        assert_eq!(action, Action::Drop(DropReason::DecapNotLocal), "to {dst}");
        assert_eq!(counters.drops_of(DropReason::DecapNotLocal), 1);
    }
}

#[test]
fn a_peer_cannot_speak_for_the_node_address() {
    let fx = fixture();
    let (action, _, _) = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &vxlan4(NODE_ADDR, POD_A),
    );
    assert_eq!(action, Action::Drop(DropReason::DecapSpoofed));
}

#[test]
fn trace_names_the_node_route() {
    let fx = fixture();
    let mut frame = Frame::from_bytes(&vxlan4(REMOTE_VX, NODE_ADDR));
    let mut recorder = Recorder::default();
    let action = fx.pipeline().process_traced(
        from_underlay(Backend::Vxlan, NODE2),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    assert_eq!(action, Action::ToHost);
    assert!(
        recorder.stages.contains(&Stage::Route {
            prefix: Some(net("10.244.1.1/32")),
            next_hop: Some(NextHop::Node),
        }),
        "{:?}",
        recorder.stages
    );
    assert_eq!(recorder.stages.last(), Some(&Stage::Action(Action::ToHost)));
}

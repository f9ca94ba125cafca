//! Running beside kube-proxy: the node's kernel translates a pod's packet to
//! a Service address (DNAT to a backend) and hands it back through the host
//! port; the backend's replies must return the same way, on this node or
//! from a peer, so the kernel can translate them back.

use super::*;
use crate::pipeline::DropReason;
use crate::pipeline::counters::DeniedBy;
use crate::pipeline::flow_tag;
use crate::table::acl::{Rule, RuleAction, Verdict};

/// A Service address kube-proxy translates.
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 11);
const CLIENT_PORT: u16 = 40000;

/// A TCP segment `src:sport → dst:dport` with SYN and/or ACK.
fn segment(
    src_mac: Mac,
    dst_mac: Mac,
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    syn: bool,
    ack: bool,
) -> Vec<u8> {
    let mut builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64000);
    if syn {
        builder = builder.syn();
    }
    if ack {
        builder = builder.ack(1);
    }
    let mut out = Vec::new();
    builder.write(&mut out, b"").unwrap();
    tap(out)
}

fn from_host(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), syn: bool, ack: bool) -> Vec<u8> {
    segment(HOST_MAC, GW_MAC, src, dst, syn, ack)
}

fn with_services(fx: &mut Fixture) {
    let mut node = fx.writer.node().clone();
    node.service_cidrs = vec![net("10.96.0.0/12")];
    fx.writer.set_node(node);
    fx.tables = fx.writer.publish();
}

/// The SYN of pod A to the Service, then the kernel's translated SYN to
/// `backend` coming back in from the host port.
fn connect_through_the_node(fx: &Fixture, backend: (Ipv4Addr, u16)) -> Action {
    let syn = segment(MAC_A, GW_MAC, (POD_A, CLIENT_PORT), (VIP, 80), true, false);
    let (to_vip, _, _) = fx.run(Ingress::Port(PORT_A), &syn);
    assert_eq!(
        to_vip,
        Action::ToHost,
        "a Service address is the node's to translate"
    );
    let (translated, _, _) = fx.run(
        Ingress::Host,
        &from_host((POD_A, CLIENT_PORT), backend, true, false),
    );
    translated
}

#[test]
fn a_local_backends_reply_goes_back_to_the_host_and_then_to_the_client() {
    let fx = Fixture::new();
    assert_eq!(
        connect_through_the_node(&fx, (POD_B, 8080)),
        Action::Deliver(PORT_B)
    );
    let flow = fx
        .conntrack
        .entries(1_000)
        .into_iter()
        .find(|f| f.key.dst == IpAddr::V4(POD_B))
        .expect("the translated flow is tracked");
    assert_eq!(flow.tag & flow_tag::VIA_HOST, flow_tag::VIA_HOST);
    // The backend answers the client's address: back to the host, not to A.
    let syn_ack = segment(
        MAC_B,
        GW_MAC,
        (POD_B, 8080),
        (POD_A, CLIENT_PORT),
        true,
        true,
    );
    let (reply, frame, _) = fx.run(Ingress::Port(PORT_B), &syn_ack);
    assert_eq!(reply, Action::ToHost);
    let eth = eth_of(&frame);
    assert_eq!(&eth[..6], &HOST_MAC, "to the kernel's side of tweed0");
    assert_eq!(&eth[6..12], &GW_MAC);
    // The kernel translates it back (from the Service address) and sends
    // it in again: the reply of A's own flow, delivered to A.
    let (back, _, _) = fx.run(
        Ingress::Host,
        &from_host((VIP, 80), (POD_A, CLIENT_PORT), true, true),
    );
    assert_eq!(back, Action::Deliver(PORT_A));
    // Later packets of the client take the same way (original direction).
    let ack = from_host((POD_A, CLIENT_PORT), (POD_B, 8080), false, true);
    assert_eq!(fx.run(Ingress::Host, &ack).0, Action::Deliver(PORT_B));
}

#[test]
fn a_remote_backends_reply_arriving_from_the_peer_goes_back_to_the_host() {
    let fx = Fixture::new();
    let Action::Encap(encap) = connect_through_the_node(&fx, (REMOTE_VX, 80)) else {
        panic!("the translated packet is encapsulated to the backend's node")
    };
    assert_eq!(encap.dst.ip(), IpAddr::V4(NODE2));
    // node2's reply, encapsulated to us.
    let reply = syn_ack_from_remote_vx(80, CLIENT_PORT);
    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &reply);
    assert_eq!(action, Action::ToHost);
    assert_eq!(&eth_of(&frame)[..6], &HOST_MAC);
}

#[test]
fn flows_that_never_crossed_the_host_still_go_straight_to_the_pod() {
    let fx = Fixture::new();
    let syn = segment(
        MAC_A,
        GW_MAC,
        (POD_A, CLIENT_PORT),
        (POD_B, 8080),
        true,
        false,
    );
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &syn).0,
        Action::Deliver(PORT_B)
    );
    let syn_ack = segment(
        MAC_B,
        GW_MAC,
        (POD_B, 8080),
        (POD_A, CLIENT_PORT),
        true,
        true,
    );
    assert_eq!(
        fx.run(Ingress::Port(PORT_B), &syn_ack).0,
        Action::Deliver(PORT_A)
    );
}

/// Allows TCP from pod A to pod B only.
fn a_may_reach_only_b() -> RuleSet {
    RuleSet {
        rules: vec![Rule {
            remote: vec![net("10.244.1.3/32")],
            protocol: Some(6),
            ..Rule::any(1, 1, RuleAction::Allow)
        }],
        default: Verdict::Deny,
    }
}

#[test]
fn egress_policy_applies_to_the_backend_once_the_node_translated_the_packet() {
    let mut fx = Fixture::new();
    let open = allow_all();
    fx.set_policy(PORT_A, &open, &a_may_reach_only_b());
    // Without the Service range the Service address itself is judged, and
    // A's policy names only B.
    let syn = segment(MAC_A, GW_MAC, (POD_A, CLIENT_PORT), (VIP, 80), true, false);
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &syn).0,
        Action::Drop(DropReason::PolicyEgress)
    );
    with_services(&mut fx);
    // With it, the backend is: B allowed, a remote pod denied.
    assert_eq!(
        connect_through_the_node(&fx, (POD_B, 8080)),
        Action::Deliver(PORT_B)
    );
    let (denied, _, counters) = fx.run(
        Ingress::Host,
        &from_host((POD_A, CLIENT_PORT + 1), (REMOTE_VX, 80), true, false),
    );
    assert_eq!(denied, Action::Drop(DropReason::PolicyEgress));
    assert_eq!(
        counters
            .denied_by_rule
            .get(&DeniedBy::unnamed(PORT_A, false, None)),
        Some(&1)
    );
    // Packets from the host with other sources are not A's to judge.
    let (other, _, _) = fx.run(
        Ingress::Host,
        &from_host((OUTSIDE, 5000), (REMOTE_VX, 80), true, false),
    );
    assert!(matches!(other, Action::Encap(_)), "{other:?}");
}

#[test]
fn the_backends_ingress_policy_sees_the_real_client() {
    let mut fx = Fixture::new();
    let only_a = RuleSet {
        rules: vec![Rule {
            remote: vec![net("10.244.1.2/32")],
            protocol: Some(6),
            ..Rule::any(1, 1, RuleAction::Allow)
        }],
        default: Verdict::Deny,
    };
    let open = allow_all();
    fx.set_policy(PORT_B, &only_a, &open);
    assert_eq!(
        connect_through_the_node(&fx, (POD_B, 8080)),
        Action::Deliver(PORT_B)
    );
    // The same backend through the node for a client outside the cluster
    // (a NodePort without SNAT): denied.
    let (denied, _, _) = fx.run(
        Ingress::Host,
        &from_host((OUTSIDE, 5000), (POD_B, 8080), true, false),
    );
    assert_eq!(denied, Action::Drop(DropReason::PolicyIngress));
}

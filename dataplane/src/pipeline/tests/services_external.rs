//! Native Services reached from outside the cluster: the node steers a
//! packet to a NodePort into the host port; the dataplane sends it to a
//! backend (from this node's address under the `Cluster` policy, from the
//! client's own under `Local`), and the reply goes back out of the host port
//! from the NodePort.

use super::services::{backend, ends, segment, serve};
use super::*;
use crate::pipeline::DropReason;
use crate::pipeline::service::MASQUERADE_PORTS;
use crate::table::service::{
    Affinity, Frontend, FrontendKind, ServiceEndpoint, ServiceKey, ServicePort, TrafficPolicy,
};
use crate::wire::transport::PROTO_TCP;

/// This node's overlay address (its first pod-subnet address).
const NODE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const NODE_PORT: u16 = 30080;
pub(super) const CLIENT: (Ipv4Addr, u16) = (OUTSIDE, 5555);

fn node_port(endpoints: Vec<ServiceEndpoint>, external: TrafficPolicy) -> ServicePort {
    ServicePort {
        name: "default/web:http".into(),
        frontends: vec![Frontend {
            key: ServiceKey {
                ip: IpAddr::V4(NODE1),
                protocol: PROTO_TCP,
                port: NODE_PORT,
            },
            kind: FrontendKind::External,
        }],
        endpoints,
        internal: TrafficPolicy::Cluster,
        external,
        affinity: Affinity::None,
    }
}

fn fixture(port: ServicePort) -> Fixture {
    let mut fx = Fixture::new();
    fx.writer
        .set_route(net("10.244.1.1/32"), NextHop::Node)
        .unwrap();
    serve(&mut fx, &[port]);
    fx
}

/// A segment from the client outside, steered into the host port.
pub(super) fn from_outside(client: (Ipv4Addr, u16), flags: &str) -> Vec<u8> {
    segment(HOST_MAC, client, (NODE1, NODE_PORT), flags, b"GET /")
}

/// The inner frame of a VXLAN payload the pipeline built.
fn inner(frame: &Frame) -> &[u8] {
    &frame.data()[8..]
}

/// node2's VXLAN payload: a segment of its pod REMOTE_VX from port 80 to
/// `to`.
fn from_remote_backend(to: (Ipv4Addr, u16)) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(REMOTE_VX.octets(), to.0.octets(), 63)
        .tcp(80, to.1, 5000, 64000)
        .syn()
        .ack(1)
        .write(&mut out, b"")
        .unwrap();
    out
}

/// A NodePort whose one backend is node2's pod REMOTE_VX:80, under the
/// `Cluster` policy.
fn remote_node_port() -> ServicePort {
    node_port(vec![backend(REMOTE_VX, 80, false)], TrafficPolicy::Cluster)
}

/// Runs `syn` in from the host port; the source it leaves this node with,
/// encapsulated to the backend's node: this node's address and some port.
fn masqueraded(fx: &Fixture, syn: &[u8]) -> (Ipv4Addr, u16) {
    let (action, frame, _) = fx.run(Ingress::Host, syn);
    assert!(matches!(action, Action::Encap(_)), "{action:?}");
    let (source, _) = ends(inner(&frame));
    assert_eq!(source.0, NODE_ADDR);
    source
}

/// The remote backend's reply to `source`: it leaves through the host port;
/// its two ends as it does.
fn reply_to_host(fx: &Fixture, source: (Ipv4Addr, u16)) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let (action, frame, _) = fx.run(
        from_underlay(Backend::Vxlan, NODE2),
        &from_remote_backend(source),
    );
    assert_eq!(action, Action::ToHost);
    ends(eth_of(&frame))
}

#[test]
fn cluster_policy_masquerades_to_the_node_so_a_remote_backends_reply_returns_here() {
    let fx = fixture(remote_node_port());
    let (action, frame, _) = fx.run(Ingress::Host, &from_outside(CLIENT, "S"));
    let Action::Encap(encap) = action else {
        panic!("to the backend's node, got {action:?}")
    };
    assert_eq!(encap.dst.ip(), IpAddr::V4(NODE2));
    assert_eq!(
        ends(inner(&frame)),
        ((NODE_ADDR, CLIENT.1), (REMOTE_VX, 80)),
        "from this node's address, the client's port kept (below the node's ephemeral range)"
    );
    let reply = from_remote_backend((NODE_ADDR, CLIENT.1));
    let (action, frame, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &reply);
    assert_eq!(
        action,
        Action::ToHost,
        "back through the node to the client"
    );
    assert_eq!(ends(eth_of(&frame)), ((NODE1, NODE_PORT), CLIENT));
    assert_eq!(&eth_of(&frame)[..6], &HOST_MAC, "to the kernel's side");
}

#[test]
fn local_policy_keeps_the_clients_address_and_serves_from_this_node_only() {
    let fx = fixture(node_port(
        vec![backend(POD_B, 8080, true), backend(REMOTE_VX, 80, false)],
        TrafficPolicy::Local,
    ));
    for port in 5000..5020 {
        let (action, frame, _) = fx.run(Ingress::Host, &from_outside((OUTSIDE, port), "S"));
        assert_eq!(action, Action::Deliver(PORT_B), "only the local backend");
        assert_eq!(ends(eth_of(&frame)), ((OUTSIDE, port), (POD_B, 8080)));
    }
    let reply = segment(MAC_B, (POD_B, 8080), CLIENT, "SA", b"");
    fx.run(Ingress::Host, &from_outside(CLIENT, "S"));
    let (action, frame, _) = fx.run(Ingress::Port(PORT_B), &reply);
    assert_eq!(action, Action::ToHost);
    assert_eq!(ends(eth_of(&frame)), ((NODE1, NODE_PORT), CLIENT));

    let fx = fixture(node_port(
        vec![backend(REMOTE_VX, 80, false)],
        TrafficPolicy::Local,
    ));
    let (action, _, _) = fx.run(Ingress::Host, &from_outside(CLIENT, "S"));
    assert_eq!(action, Action::Drop(DropReason::ServiceNoLocalEndpoint));
}

#[test]
fn two_clients_on_one_port_get_two_masqueraded_ports_and_their_own_replies() {
    let fx = fixture(remote_node_port());
    let other = (Ipv4Addr::new(8, 8, 4, 4), CLIENT.1);
    let sources: Vec<_> = [CLIENT, other]
        .into_iter()
        .map(|client| masqueraded(&fx, &from_outside(client, "S")))
        .collect();
    assert_eq!(sources[0].1, CLIENT.1, "the first keeps its port");
    assert_ne!(sources[0], sources[1], "the second cannot share it");
    for (source, client) in sources.into_iter().zip([CLIENT, other]) {
        assert_eq!(reply_to_host(&fx, source), ((NODE1, NODE_PORT), client));
    }
}

#[test]
fn a_client_port_in_the_nodes_ephemeral_range_is_moved_below_it() {
    let fx = fixture(remote_node_port());
    let client = (OUTSIDE, 40000);
    let source = masqueraded(&fx, &from_outside(client, "S"));
    assert!(
        MASQUERADE_PORTS.contains(&source.1),
        "port {} is where the node's own connections take none",
        source.1
    );
    assert_eq!(reply_to_host(&fx, source), ((NODE1, NODE_PORT), client));
}

/// The node itself reaching a ClusterIP (the Service range is routed into
/// the host port): masqueraded to its own address, its port moved below the
/// ephemeral range, and the reply goes back to the port it called from.
#[test]
fn the_nodes_own_connection_to_a_cluster_ip_gets_its_reply_on_its_own_port() {
    let mut port = remote_node_port();
    port.frontends[0] = Frontend {
        key: ServiceKey {
            ip: IpAddr::V4(super::services::VIP),
            protocol: PROTO_TCP,
            port: 80,
        },
        kind: FrontendKind::ClusterIp,
    };
    let fx = fixture(port);
    let client = (NODE_ADDR, 40000);
    let syn = segment(HOST_MAC, client, (super::services::VIP, 80), "S", b"");
    let source = masqueraded(&fx, &syn);
    assert_ne!(source.1, client.1, "moved below the ephemeral range");
    assert_eq!(
        reply_to_host(&fx, source),
        ((super::services::VIP, 80), client),
        "the reply reaches the port the node called from"
    );
}

#[test]
fn a_port_the_nodes_own_connection_to_the_backend_holds_is_not_taken() {
    let fx = fixture(remote_node_port());
    // The node itself (a probe, say) talks to the backend from the port the
    // client outside happens to use.
    let probe = segment(HOST_MAC, (NODE_ADDR, CLIENT.1), (REMOTE_VX, 80), "S", b"");
    let (action, _, _) = fx.run(Ingress::Host, &probe);
    assert!(matches!(action, Action::Encap(_)), "{action:?}");
    let source = masqueraded(&fx, &from_outside(CLIENT, "S"));
    assert_ne!(source.1, CLIENT.1, "the node's own flow keeps its port");
    assert_eq!(reply_to_host(&fx, source), ((NODE1, NODE_PORT), CLIENT));
}

/// A NodePort with a remote backend under the `Cluster` policy, on a
/// fixture without an overlay address of its own.
pub(super) fn serve_node_port(fx: &mut Fixture) {
    serve(fx, &[remote_node_port()]);
}

#[test]
fn without_a_node_address_a_masqueraded_connection_is_dropped_not_sent_unanswerable() {
    let mut fx = Fixture::new();
    serve_node_port(&mut fx);
    let (action, _, _) = fx.run(Ingress::Host, &from_outside(CLIENT, "S"));
    assert_eq!(action, Action::Drop(DropReason::ServiceNoSource));
}

//! The node's own address on the overlay (`route_set … via node`): two nodes
//! joined by a VXLAN underlay, each node's host netns holding the first
//! address of its pod subnet on `tweed0` and routing the cluster CIDR through
//! the dataplane from that address, as the control daemon sets it up.
//!
//! Node → remote pod, remote pod → node address and node → remote node
//! address all cross the overlay. Before the `node` route is set, a peer's
//! packet to the node address falls under the default route and is dropped
//! (`decap_not_local`); after a dataplane restart the route is still there.

use std::net::IpAddr;
use std::time::Duration;

use tweed_api::dataplane::proto::{PeerSpec, RouteSpec, RouteTarget, RouteVia};
use tweed_dataplane::table::peers::Backend;
use tweed_suite::netns::Netns;
use tweed_suite::netns::{End, veth};
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

/// One node's overlay identity: its pod subnets and its own addresses in them.
struct Overlay {
    subnet4: &'static str,
    subnet6: &'static str,
    addr4: &'static str,
    addr6: &'static str,
}

const A: Overlay = Overlay {
    subnet4: "10.244.1.0/24",
    subnet6: "fd00:1::/64",
    addr4: "10.244.1.1",
    addr6: "fd00:1::1",
};
const B: Overlay = Overlay {
    subnet4: "10.244.2.0/24",
    subnet6: "fd00:2::/64",
    addr4: "10.244.2.1",
    addr6: "fd00:2::1",
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What the control daemon does in the node's host netns: its overlay
/// addresses on tweed0, the cluster CIDRs through the dataplane's gateway
/// from those addresses, and everything else in the dataplane to the host.
fn set_up_host(node: &Node, own: &Overlay) {
    let ns = node.netns();
    ns.ip(&["link", "set", "tweed0", "up"]);
    ns.ip(&["addr", "add", &format!("{}/32", own.addr4), "dev", "tweed0"]);
    ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{}/128", own.addr6),
        "dev",
        "tweed0",
        "nodad",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.244.0.0/16",
        "via",
        "169.254.1.1",
        "dev",
        "tweed0",
        "onlink",
        "src",
        own.addr4,
    ]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "fd00::/16",
        "via",
        "fe80::1",
        "dev",
        "tweed0",
        "src",
        own.addr6,
    ]);
    for prefix in ["0.0.0.0/0", "::/0"] {
        node.api
            .route_set(RouteSpec {
                prefix: prefix.parse().unwrap(),
                via: RouteVia::Host,
            })
            .unwrap_or_else(|e| panic!("route_set {prefix} via host: {e:?}"));
    }
}

/// `route_set` of the node's own overlay addresses `via: node`.
fn set_node_routes(node: &Node, own: &Overlay) {
    for prefix in [format!("{}/32", own.addr4), format!("{}/128", own.addr6)] {
        node.api
            .route_set(RouteSpec {
                prefix: prefix.parse().unwrap(),
                via: RouteVia::Node,
            })
            .unwrap_or_else(|e| panic!("route_set {prefix} via node: {e:?}"));
    }
}

/// Programs `node` with `other` (overlay `theirs`) as its VXLAN peer `name`.
fn set_peer(node: &Node, name: &str, other: &Node, theirs: &Overlay) {
    node.api
        .peer_set(PeerSpec {
            name: name.into(),
            subnets: vec![
                theirs.subnet4.parse().unwrap(),
                theirs.subnet6.parse().unwrap(),
            ],
            underlay_ip: other.underlay_ip,
            vtep_mac: other.api.dump().node.vtep_mac,
            backend: Backend::Vxlan,
            source_ports: None,
            partial_checksums: false,
        })
        .unwrap_or_else(|e| panic!("peer_set {name}: {e:?}"));
}

/// Asserts `node` lists `addr`'s host prefix with next hop `node`.
fn assert_node_route(node: &Node, addr: &str, len: u8) {
    let routes = node.api.route_list();
    let prefix = format!("{addr}/{len}").parse().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.prefix == prefix && r.next_hop == RouteTarget::Node),
        "{prefix} is listed as a node route: {routes:?}"
    );
}

#[test]
fn node_addresses_are_reachable_across_the_overlay() {
    if !require_root() {
        return;
    }
    let prefix = "nrt";
    let (na, nb) = (Netns::new(prefix, "a"), Netns::new(prefix, "b"));
    veth(
        End {
            ns: &na,
            ifname: "u0",
            addr: Some("192.168.209.1/24"),
        },
        End {
            ns: &nb,
            ifname: "u0",
            addr: Some("192.168.209.2/24"),
        },
    );
    let a = Node::start(na, &format!("{prefix}a"), ip("192.168.209.1"), &[]);
    let mut b = Node::start(nb, &format!("{prefix}b"), ip("192.168.209.2"), &[]);
    let pod = Pod::attach(
        &b,
        prefix,
        "p",
        Some("10.244.2.2".parse().unwrap()),
        Some("fd00:2::2".parse().unwrap()),
    );
    let pod4 = IpAddr::V4(pod.ipv4());
    let pod6 = IpAddr::V6(pod.ipv6());
    set_up_host(&a, &A);
    set_up_host(&b, &B);
    set_peer(&a, "b", &b, &B);
    set_peer(&b, "a", &a, &A);

    // Without its node route, B's address is only covered by B's default
    // route, which peers may not use: A's probe is dropped at B.
    let refused = b.api.drops("decap_not_local");
    let dropped = poll::wait(FIRST, || {
        let _ = ping(a.netns(), ip(B.addr4), 1, Duration::from_secs(1));
        b.api.drops("decap_not_local") > refused
    });
    assert!(
        dropped,
        "B drops a peer's packet for an address only its default route covers"
    );
    assert!(
        !ping(a.netns(), ip(B.addr4), 1, Duration::from_secs(1)),
        "B's node address is unreachable before its node route"
    );

    set_node_routes(&a, &A);
    set_node_routes(&b, &B);
    assert_node_route(&a, A.addr4, 32);
    assert_node_route(&b, B.addr6, 128);
    let refused = b.api.drops("decap_not_local");
    let to_host = b.api.stats().actions.to_host;

    // A's host → B's pod, from A's node address.
    assert!(wait_ping(a.netns(), pod4, FIRST), "A's host → B's pod");
    assert!(
        ping(a.netns(), pod4, 5, PING),
        "A's host → B's pod, 5 echoes"
    );
    let flows = b.api.dump().flows;
    assert!(
        flows
            .iter()
            .any(|f| f.src == ip(A.addr4) && f.dst == pod4 && f.protocol == 1),
        "B tracks the echo from A's node address: {flows:?}"
    );
    assert!(
        wait_ping(a.netns(), pod6, FIRST),
        "A's host → B's pod over IPv6"
    );

    // B's pod → A's node address.
    assert!(
        ping(&pod.netns, ip(A.addr4), 5, PING),
        "B's pod → A's node address, 5 echoes"
    );
    assert!(
        wait_ping(&pod.netns, ip(A.addr6), FIRST),
        "B's pod → A's node address over IPv6"
    );

    // A's host → B's node address: B's kernel answers, across the overlay.
    assert!(
        wait_ping(a.netns(), ip(B.addr4), FIRST),
        "A's host → B's node address"
    );
    assert!(
        ping(a.netns(), ip(B.addr4), 5, PING),
        "A's host → B's node address, 5 echoes"
    );
    assert!(
        wait_ping(a.netns(), ip(B.addr6), FIRST),
        "A's host → B's node address over IPv6"
    );
    tcp_transfer(a.netns(), b.netns(), ip(B.addr4), 5301, 2 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("A's host → B's node address over TCP: {e}"));
    tcp_transfer(b.netns(), a.netns(), ip(A.addr4), 5302, 1 << 20, TRANSFER)
        .unwrap_or_else(|e| panic!("B's host → A's node address over TCP: {e}"));

    assert!(
        b.api.stats().actions.to_host > to_host,
        "B hands the packets for its node address to its host"
    );
    assert_eq!(
        b.api.drops("decap_not_local"),
        refused,
        "nothing for a node address is refused once it is routed"
    );

    // The node route survives a dataplane crash (restored from the state file).
    b.restart();
    assert_node_route(&b, B.addr4, 32);
    assert!(
        wait_ping(a.netns(), ip(B.addr4), FIRST),
        "A's host → B's node address after B's dataplane restarted"
    );
}

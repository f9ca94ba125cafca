//! Two nodes, each a netns with its own dataplane and pod, joined by a veth
//! underlay: pod traffic crosses in VXLAN, then (after `peer_set` replaces
//! the peers) in flannel's UDP format. The TCP transfer is far larger than the
//! MTU, so GSO super-frames are segmented before encapsulation. It runs once
//! on each tap I/O back end (io_uring and epoll).

use std::net::IpAddr;
use std::time::Duration;

use tweed_api::dataplane::proto::PeerSpec;
use tweed_dataplane::table::peers::Backend;
use tweed_suite::netns::{End, Netns, veth};
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, ping_sized, tcp_transfer, udp_round_trip, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

/// Programs `node` with `other` as a peer named `name`.
fn set_peer(node: &Node, name: &str, other: &Node, subnets: &[&str], backend: Backend) {
    let vtep_mac = other.api.dump().node.vtep_mac;
    node.api
        .peer_set(PeerSpec {
            name: name.into(),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            underlay_ip: other.underlay_ip,
            vtep_mac,
            backend,
            source_ports: None,
            partial_checksums: false,
        })
        .unwrap_or_else(|e| panic!("peer_set {name}: {e:?}"));
}

#[test]
fn pods_on_two_nodes_talk_over_vxlan_then_udp() {
    talk("ovl", "uring");
}

#[test]
fn pods_on_two_nodes_talk_over_vxlan_then_udp_over_epoll() {
    talk("ovlep", "epoll");
}

/// The checks with both dataplanes' tap I/O forced to `io` (`--io`).
fn talk(prefix: &str, io: &str) {
    if !require_root() {
        return;
    }
    let (n1, n2) = (Netns::new(prefix, "n1"), Netns::new(prefix, "n2"));
    veth(
        End {
            ns: &n1,
            ifname: "u0",
            addr: Some("192.168.203.1/24"),
        },
        End {
            ns: &n2,
            ifname: "u0",
            addr: Some("192.168.203.2/24"),
        },
    );
    let n1 = Node::start(
        n1,
        &format!("{prefix}1"),
        "192.168.203.1".parse().unwrap(),
        &["--io", io],
    );
    let n2 = Node::start(
        n2,
        &format!("{prefix}2"),
        "192.168.203.2".parse().unwrap(),
        &["--io", io],
    );
    let a = Pod::attach(
        &n1,
        prefix,
        "a",
        Some("10.244.1.2".parse().unwrap()),
        Some("fd00:1::2".parse().unwrap()),
    );
    let b = Pod::attach(
        &n2,
        prefix,
        "b",
        Some("10.244.2.2".parse().unwrap()),
        Some("fd00:2::2".parse().unwrap()),
    );
    let (a4, b4) = (IpAddr::V4(a.ipv4()), IpAddr::V4(b.ipv4()));
    let b6 = IpAddr::V6(b.ipv6());

    for (backend, port) in [(Backend::Vxlan, 5100), (Backend::Udp, 5200)] {
        set_peer(&n1, "n2", &n2, &["10.244.2.0/24", "fd00:2::/64"], backend);
        set_peer(&n2, "n1", &n1, &["10.244.1.0/24", "fd00:1::/64"], backend);
        assert_eq!(
            n1.api.peer_list().len(),
            1,
            "peer_set replaces the peer of the same name"
        );

        let before = n1.api.stats().actions.encapsulated;
        assert!(wait_ping(&a.netns, b4, FIRST), "{backend:?}: a → b");
        assert!(ping(&a.netns, b4, 5, PING), "{backend:?}: a → b, 5 echoes");
        assert!(ping(&b.netns, a4, 5, PING), "{backend:?}: b → a, 5 echoes");
        assert!(
            wait_ping(&a.netns, b6, FIRST),
            "{backend:?}: a → b over IPv6"
        );
        tcp_transfer(&a.netns, &b.netns, b4, port, 4 << 20, TRANSFER)
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        tcp_transfer(&b.netns, &a.netns, a4, port + 1, 2 << 20, TRANSFER)
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        tcp_transfer(&a.netns, &b.netns, b6, port + 2, 1 << 20, TRANSFER)
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        udp_round_trip(&b.netns, &a.netns, a4, port + 3, 1400, PING)
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        // Datagrams larger than the pod MTU: the pods' kernels fragment
        // them and every fragment must cross (virtual reassembly).
        udp_round_trip(&b.netns, &a.netns, a4, port + 4, 6000, PING)
            .unwrap_or_else(|e| panic!("{backend:?}, fragmented: {e}"));
        udp_round_trip(&a.netns, &b.netns, b6, port + 5, 4000, PING)
            .unwrap_or_else(|e| panic!("{backend:?}, fragmented IPv6: {e}"));
        assert!(
            ping_sized(&a.netns, b4, 3000, 3, PING),
            "{backend:?}: 3 pings of 3000 bytes a → b"
        );
        let after = n1.api.stats().actions.encapsulated;
        assert!(
            after > before,
            "{backend:?}: encapsulated frames are counted ({before} → {after})"
        );
    }
}

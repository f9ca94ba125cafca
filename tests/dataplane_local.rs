//! Two pods on one node: the dataplane routes between them (IPv4 and IPv6,
//! ICMP, TCP with the bytes checked, UDP), and between them and the node's own
//! kernel through the host port `tweed0`.

use std::net::IpAddr;
use std::time::Duration;

use tweed_dataplane::api::proto::{RouteSpec, RouteVia};
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, udp_round_trip, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

#[test]
fn two_pods_on_one_node_exchange_icmp_tcp_and_udp() {
    if !require_root() {
        return;
    }
    let prefix = "loc";
    let node = Node::standalone(prefix, "192.168.201.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.1.2".parse().unwrap()),
        Some("fd00:1::2".parse().unwrap()),
    );
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.1.3".parse().unwrap()),
        Some("fd00:1::3".parse().unwrap()),
    );
    let (a4, b4) = (IpAddr::V4(a.ipv4()), IpAddr::V4(b.ipv4()));
    let (a6, b6) = (IpAddr::V6(a.ipv6()), IpAddr::V6(b.ipv6()));

    assert!(wait_ping(&a.netns, b4, FIRST), "a → b over IPv4");
    assert!(ping(&a.netns, b4, 5, PING), "a → b, 5 echoes");
    assert!(ping(&b.netns, a4, 5, PING), "b → a, 5 echoes");
    assert!(wait_ping(&a.netns, b6, FIRST), "a → b over IPv6");
    assert!(ping(&a.netns, b6, 5, PING), "a → b IPv6, 5 echoes");
    assert!(ping(&b.netns, a6, 5, PING), "b → a IPv6, 5 echoes");

    // 4 MiB each way, IPv4, and once over IPv6: the bytes are checked by SHA-256.
    tcp_transfer(&a.netns, &b.netns, b4, 5001, 4 << 20, TRANSFER).unwrap();
    tcp_transfer(&b.netns, &a.netns, a4, 5002, 4 << 20, TRANSFER).unwrap();
    tcp_transfer(&a.netns, &b.netns, b6, 5003, 1 << 20, TRANSFER).unwrap();

    udp_round_trip(&a.netns, &b.netns, b4, 5004, 1200, PING).unwrap();
    udp_round_trip(&b.netns, &a.netns, a6, 5005, 1200, PING).unwrap();

    let stats = node.api.stats();
    assert!(
        stats.actions.delivered > 0,
        "delivered frames are counted: {stats:?}"
    );
    let ports: Vec<_> = stats
        .ports
        .iter()
        .filter(|p| p.rx_packets > 0 && p.tx_packets > 0)
        .collect();
    assert_eq!(
        ports.len(),
        2,
        "both ports count traffic: {:?}",
        stats.ports
    );
}

#[test]
fn node_and_pod_reach_each_other_through_tweed0() {
    if !require_root() {
        return;
    }
    let prefix = "host";
    let node = Node::standalone(prefix, "192.168.202.1", &[]);
    let pod = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.2.2".parse().unwrap()),
        None,
    );
    let node_ip: IpAddr = "192.168.202.1".parse().unwrap();
    let pod_ip = IpAddr::V4(pod.ipv4());

    // What the control daemon will do: the node's kernel routes the pod CIDR to
    // the dataplane's gateway on tweed0, and the dataplane sends what is not a
    // pod to the host.
    let links = node.netns().ip_json(&["link", "show", "dev", "tweed0"]);
    assert_eq!(
        links[0]["ifname"], "tweed0",
        "the dataplane created its host port: {links}"
    );
    node.netns().ip(&["link", "set", "tweed0", "up"]);
    node.netns().ip(&[
        "route",
        "replace",
        "10.244.2.0/24",
        "via",
        "169.254.1.1",
        "dev",
        "tweed0",
        "onlink",
    ]);
    node.api
        .route_set(RouteSpec {
            prefix: "0.0.0.0/0".parse().unwrap(),
            via: RouteVia::Host,
        })
        .unwrap();

    assert!(wait_ping(node.netns(), pod_ip, FIRST), "node → pod");
    assert!(ping(node.netns(), pod_ip, 5, PING), "node → pod, 5 echoes");
    assert!(
        ping(&pod.netns, node_ip, 5, PING),
        "pod → node address, 5 echoes"
    );
    tcp_transfer(&pod.netns, node.netns(), node_ip, 5011, 1 << 20, TRANSFER).unwrap();
    tcp_transfer(node.netns(), &pod.netns, pod_ip, 5012, 1 << 20, TRANSFER).unwrap();
    assert!(
        node.api.stats().actions.to_host > 0,
        "frames to the host are counted"
    );
}

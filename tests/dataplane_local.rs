//! Two pods on one node: the dataplane routes between them (IPv4 and IPv6,
//! ICMP, TCP with the bytes checked, UDP), and between them and the node's own
//! kernel through the host port `tweed0`. A pod removed and added again at
//! once, with the same name, addresses and interface, works. The traffic
//! checks run once on each tap I/O back end (io_uring and epoll) and each
//! way a worker waits when idle (lingering after traffic, sleeping at once,
//! busy-polling).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tweed_api::dataplane::proto::{PortAdd, RouteSpec, RouteVia};
use tweed_suite::netns::Netns;
use tweed_suite::node::Node;
use tweed_suite::pod::{IFNAME, Pod};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, udp_round_trip, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);
const TRANSFER: Duration = Duration::from_secs(30);

/// io_uring, with workers that linger after traffic (the default).
#[test]
fn two_pods_on_one_node_exchange_icmp_tcp_and_udp() {
    exchange("loc", "io_uring, linger 50 µs", &["--io", "uring"]);
}

/// epoll, with workers that sleep as soon as they are idle.
#[test]
fn two_pods_on_one_node_exchange_icmp_tcp_and_udp_over_epoll() {
    exchange("locep", "epoll", &["--io", "epoll", "--linger-us", "0"]);
}

/// One worker that never sleeps (a later `--workers` wins over the harness's).
#[test]
fn two_pods_on_one_node_exchange_icmp_tcp_and_udp_busy_polling() {
    exchange(
        "locbp",
        "io_uring, busy-poll",
        &["--io", "uring", "--busy-poll", "--workers", "1"],
    );
}

/// The traffic checks with the dataplane started with `flags`, which it
/// reports as tap I/O `io`.
fn exchange(prefix: &str, io: &str, flags: &[&str]) {
    if !require_root() {
        return;
    }
    let node = Node::standalone(prefix, "192.168.201.1", flags);
    assert_eq!(
        node.api.stats().io.as_deref(),
        Some(io),
        "the dataplane reports the back end it was asked for"
    );
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
    // Larger than the MTU: fragmented by the pod's kernel, every fragment
    // forwarded (virtual reassembly gives the later ones the first's ports).
    udp_round_trip(&a.netns, &b.netns, b4, 5006, 8000, PING)
        .unwrap_or_else(|e| panic!("fragmented UDP: {e}"));
    udp_round_trip(&b.netns, &a.netns, a6, 5007, 5000, PING)
        .unwrap_or_else(|e| panic!("fragmented UDP over IPv6: {e}"));

    let stats = node.api.stats();
    assert_eq!(
        stats.workers.iter().map(|w| w.io_errors).sum::<u64>(),
        0,
        "{io}: no I/O errors: {:?}",
        stats.workers
    );
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

/// The links of `netns` other than `lo`.
fn links(netns: &Netns) -> Vec<String> {
    netns
        .ip_json(&["link", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .filter(|n| n != "lo")
        .collect()
}

#[test]
fn a_pod_added_again_right_after_its_removal_works() {
    if !require_root() {
        return;
    }
    let prefix = "readd";
    let node = Node::standalone(prefix, "192.168.203.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.3.2".parse().unwrap()),
        Some("fd00:3::2".parse().unwrap()),
    );
    let name = format!("{prefix}/b");
    let (b4, b6): (Ipv4Addr, Ipv6Addr) =
        ("10.244.3.3".parse().unwrap(), "fd00:3::3".parse().unwrap());
    let port = |netns: &Netns| PortAdd {
        name: name.clone(),
        netns: netns.path(),
        ifname: IFNAME.into(),
        ipv4: Some(b4),
        ipv6: Some(b6),
        mac: None,
        mtu: None,
    };
    let add = |netns: &Netns, what: &str| {
        node.api
            .port_add(port(netns))
            .unwrap_or_else(|e| panic!("{what}: port_add: {:?}: {}", e.kind, e.message))
    };
    let remove = |what: &str| {
        node.api
            .port_remove(&name)
            .unwrap_or_else(|e| panic!("{what}: port_remove: {:?}: {}", e.kind, e.message))
    };

    // The same netns: port_remove answers before the old tap is deleted, so
    // each port_add finds eth0 still taken and must wait for it, not fail.
    let first = Netns::new(prefix, "b");
    for round in 0..5 {
        add(&first, &format!("round {round}"));
        remove(&format!("round {round}"));
    }
    let port_b = add(&first, "same netns");
    let b1 = Pod {
        name: name.clone(),
        port: port_b,
        netns: first,
    };
    b1.wait_addresses();
    assert_eq!(links(&b1.netns), [IFNAME], "one interface in the pod");
    assert!(
        wait_ping(&a.netns, IpAddr::V4(b4), FIRST),
        "a → b after b was added again"
    );
    assert!(
        wait_ping(&b1.netns, IpAddr::V6(a.ipv6()), FIRST),
        "b → a over IPv6"
    );

    // A new netns (a new sandbox of the same pod): nothing to wait for.
    remove("before the move");
    let second = Netns::new(prefix, "b2");
    let port_b = add(&second, "new netns");
    let b2 = Pod {
        name: name.clone(),
        port: port_b,
        netns: second,
    };
    b2.wait_addresses();
    assert!(
        wait_ping(&a.netns, IpAddr::V4(b4), FIRST),
        "a → b in its new netns"
    );
    assert_eq!(node.api.port_list().len(), 2, "a and b, once each");
    assert!(
        poll::wait(Duration::from_secs(10), || links(&b1.netns).is_empty()),
        "the old sandbox's tap is deleted: {:?}",
        links(&b1.netns)
    );

    // The removals finish, and the state file stops listing them.
    let state = node.dir.join("dataplane-state.json");
    let settled = poll::wait(Duration::from_secs(10), || {
        std::fs::read_to_string(&state).is_ok_and(|text| !text.contains("\"removing\""))
    });
    assert!(
        settled,
        "the state file still lists removals: {}",
        std::fs::read_to_string(&state).unwrap_or_default()
    );
}

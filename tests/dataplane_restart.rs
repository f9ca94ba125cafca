//! A dataplane crash does not take the pods' network down for good: the taps
//! are persistent, so after SIGKILL the pods keep their interfaces and
//! addresses, and a new process started on the same state directory
//! re-attaches them; traffic resumes without re-adding ports.

use std::net::IpAddr;
use std::time::Duration;

use tweed_suite::node::Node;
use tweed_suite::pod::{IFNAME, Pod};
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, tcp_transfer, wait_ping};

const FIRST: Duration = Duration::from_secs(10);
const PING: Duration = Duration::from_secs(5);

#[test]
fn pods_survive_a_dataplane_crash_and_traffic_resumes_after_restart() {
    if !require_root() {
        return;
    }
    let prefix = "rst";
    let mut node = Node::standalone(prefix, "192.168.206.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.6.2".parse().unwrap()),
        Some("fd00:6::2".parse().unwrap()),
    );
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.6.3".parse().unwrap()),
        Some("fd00:6::3".parse().unwrap()),
    );
    let (a4, b4) = (IpAddr::V4(a.ipv4()), IpAddr::V4(b.ipv4()));
    assert!(wait_ping(&a.netns, b4, FIRST), "a → b before the crash");
    let ports_before = node.api.port_list();

    node.kill();
    for pod in [&a, &b] {
        let addrs: Vec<String> = pod
            .netns
            .addresses(IFNAME)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        for want in [format!("{}/32", pod.ipv4()), format!("{}/128", pod.ipv6())] {
            assert!(
                addrs.contains(&want),
                "{}: {IFNAME} keeps {want} after the crash: {addrs:?}",
                pod.name
            );
        }
        let routes = pod.netns.ip_json(&["route", "show", "default"]);
        assert_eq!(
            routes[0]["gateway"], "169.254.1.1",
            "{}: the default route stays: {routes}",
            pod.name
        );
    }
    assert!(
        !ping(&a.netns, b4, 1, Duration::from_secs(1)),
        "nothing forwards while the dataplane is down"
    );

    node.restart();
    assert_eq!(
        node.api.port_list(),
        ports_before,
        "the ports come back from the state directory"
    );
    assert!(
        wait_ping(&a.netns, b4, FIRST),
        "a → b after the restart, without re-adding ports"
    );
    assert!(ping(&b.netns, a4, 5, PING), "b → a after the restart");
    assert!(
        wait_ping(&a.netns, IpAddr::V6(b.ipv6()), FIRST),
        "a → b over IPv6 after the restart"
    );
    tcp_transfer(
        &a.netns,
        &b.netns,
        b4,
        5601,
        1 << 20,
        Duration::from_secs(30),
    )
    .unwrap();

    // A second crash and restart is no different from the first.
    node.kill();
    node.restart();
    assert!(
        wait_ping(&b.netns, a4, FIRST),
        "b → a after a second restart"
    );
}

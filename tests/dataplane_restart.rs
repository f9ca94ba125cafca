//! A dataplane crash does not take the pods' network down for good: the taps
//! are persistent, so after SIGKILL the pods keep their interfaces and
//! addresses, and a new process started on the same state directory
//! re-attaches them; traffic resumes without re-adding ports. A tap removal
//! that SIGKILL cut short is finished by the next start.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tweed_suite::netns::Netns;
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

/// Whether `netns` has an `eth0`.
fn has_eth0(netns: &Netns) -> bool {
    netns
        .ip_json(&["link", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .any(|l| l["ifname"] == IFNAME)
}

#[test]
fn a_removal_cut_short_by_sigkill_is_finished_by_the_next_start() {
    if !require_root() {
        return;
    }
    let prefix = "rsk";
    let mut node = Node::standalone(prefix, "192.168.210.1", &[]);
    let pod =
        |role: &str, ip: &str| Pod::attach(&node, prefix, role, Some(ip.parse().unwrap()), None);
    let (a, b, c) = (
        pod("a", "10.244.9.2"),
        pod("b", "10.244.9.3"),
        pod("c", "10.244.9.4"),
    );

    // The race as it happens: port_remove answers, SIGKILL right after,
    // while the tap is (most likely) still being deleted.
    node.api.port_remove(&a.name).expect("port_remove a");
    node.kill();
    let a_left = has_eth0(&a.netns);

    // The worst case, made certain: the state file lists b's tap as being
    // removed while the tap is still there and persistent (killed before
    // the reaper touched it). It also lists a removal of c's eth0, which c,
    // a port it still lists, now owns: that removal had finished, and the
    // start must leave c alone.
    assert!(
        has_eth0(&b.netns),
        "b's tap outlives the dataplane (persistent)"
    );
    let path = node.dir.join("dataplane-state.json");
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the state file"))
            .expect("the state file is JSON");
    let ports = state["ports"].as_array_mut().expect("ports");
    let at = ports
        .iter()
        .position(|p| p["name"] == b.name.as_str())
        .expect("b is listed");
    ports.remove(at);
    let removing = state
        .as_object_mut()
        .expect("an object")
        .entry("removing")
        .or_insert_with(|| json!([]));
    let removing = removing.as_array_mut().expect("removing is a list");
    removing.push(json!({"name": b.name, "netns": b.netns.path(), "ifname": IFNAME}));
    removing.push(json!({"name": "rsk/old-c", "netns": c.netns.path(), "ifname": IFNAME}));
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap())
        .expect("write the state file");

    node.restart();
    assert!(
        !has_eth0(&a.netns),
        "a's tap is gone after the restart (it was {} at the kill)",
        if a_left {
            "still there"
        } else {
            "already gone"
        }
    );
    assert!(
        !has_eth0(&b.netns),
        "the listed removal of b's tap was finished"
    );
    assert!(has_eth0(&c.netns), "c keeps its tap");
    let names: Vec<String> = node.api.port_list().into_iter().map(|p| p.name).collect();
    assert_eq!(names, [c.name.as_str()], "only c is a port");
    let text = std::fs::read_to_string(&path).expect("read the state file");
    assert!(
        !text.contains("\"removing\""),
        "nothing is left to remove: {text}"
    );
    let gateway: IpAddr = "169.254.1.1".parse().unwrap();
    assert!(wait_ping(&c.netns, gateway, FIRST), "c reaches its gateway");
}

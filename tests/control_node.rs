//! One node running `tweed daemon` (embedded store): pods attached through
//! `control.sock` reach each other and the node, the CLI and the metrics
//! endpoint show them, and the node survives its dataplane dying, its own
//! restart and dual-stack.
//!
//! Each test has its own prefix and underlay subnet (10.97.1-9); every
//! namespace, process and directory goes with its guard, also on failure,
//! and a failing test prints the daemon's log.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use tweed_control::api::node::StatusReply;
use tweed_suite::control::{
    self, ControlPod, SingleNode, links, metric_values, node_address, pod_get, pod_list, routes,
    status,
};
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::wait_ping;

/// How long a first ping through a fresh path may take.
const FIRST: Duration = Duration::from_secs(15);
/// How long the node may take to heal (a dataplane restart, a daemon
/// restart): generous, the test only cares that it happens unattended.
const HEAL: Duration = Duration::from_secs(45);
/// The metrics endpoint inside the node's namespace.
const METRICS: &str = "127.0.0.1:9101";

/// This node's IPv4 (or IPv6) subnet from `status`.
fn subnet(status: &StatusReply, v6: bool) -> IpNet {
    *status
        .node
        .subnets
        .iter()
        .find(|s| matches!(s, IpNet::V6(_)) == v6)
        .unwrap_or_else(|| panic!("node has no {} subnet: {status:?}", family(v6)))
}

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// Pings in both directions between `a` and `b` (IPv4 or IPv6).
fn assert_pods_ping(a: &ControlPod, b: &ControlPod, v6: bool, timeout: Duration) {
    let (to_a, to_b) = if v6 {
        (a.ipv6(), b.ipv6())
    } else {
        (a.ipv4(), b.ipv4())
    };
    assert!(
        wait_ping(&a.netns, to_b, timeout),
        "pod a → pod b ({to_b}) over {}",
        family(v6)
    );
    assert!(
        wait_ping(&b.netns, to_a, timeout),
        "pod b → pod a ({to_a}) over {}",
        family(v6)
    );
}

/// `tweed ARGS` (table output) on the node; panics unless it succeeds.
fn cli_table(node: &SingleNode, args: &[&str]) -> String {
    let out = node.daemon().cli(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`tweed {}` failed ({}):\n{stdout}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Whether one line of `text` mentions all of `words`.
fn has_line_with(text: &str, words: &[&str]) -> bool {
    text.lines().any(|l| words.iter().all(|w| l.contains(w)))
}

/// The node's routes (`ip route`, both families) as text.
fn ip_routes(ns: &Netns) -> String {
    format!(
        "{}{}",
        ns.ip(&["-4", "route", "show"]),
        ns.ip(&["-6", "route", "show"])
    )
}

/// `nft list tables` in `ns`.
fn nft_tables(ns: &Netns) -> String {
    let out = ns.exec("nft", &["list", "tables"]);
    assert!(
        out.status.success(),
        "nft list tables in {}: {}",
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pods_reach_each_other_and_the_node_and_the_cli_shows_them() {
    if !require_root() {
        return;
    }
    let prefix = "cnp";
    let node = SingleNode::start(prefix, "10.97.1", &["--metrics-addr", METRICS]);
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let b = ControlPod::attach(&mut client, prefix, "b");
    let st = status(&mut client);
    let net = subnet(&st, false);
    for pod in [&a, &b] {
        assert!(
            net.contains(&pod.ipv4()),
            "pod {} got {} outside the node subnet {net}",
            pod.info.name,
            pod.ipv4()
        );
    }
    assert_ne!(a.ipv4(), b.ipv4(), "two pods, two addresses");

    assert_pods_ping(&a, &b, false, FIRST);
    assert!(wait_ping(node.node(), a.ipv4(), FIRST), "node → pod a");
    let node_addr = node_address(&net);
    assert!(
        wait_ping(&a.netns, node_addr, FIRST),
        "pod a → the node's address {node_addr}"
    );

    // Tables.
    let table = cli_table(&node, &["status"]);
    assert!(
        table.contains("node0") && table.contains(&net.to_string()),
        "status names the node and its subnet:\n{table}"
    );
    let table = cli_table(&node, &["pods"]);
    for pod in [&a, &b] {
        let ip = pod.ipv4().to_string();
        assert!(
            has_line_with(&table, &[&pod.info.name, &pod.info.container_id, &ip]),
            "pods lists {} with {ip}:\n{table}",
            pod.info.name
        );
    }
    let table = cli_table(&node, &["nodes"]);
    assert!(
        has_line_with(&table, &["node0", &net.to_string()]),
        "nodes lists node0 with {net}:\n{table}"
    );
    let table = cli_table(&node, &["routes"]);
    for pod in [&a, &b] {
        let prefix = format!("{}/32", pod.ipv4());
        let hop = format!("port {}", pod.info.port_name());
        assert!(
            has_line_with(&table, &[&prefix, &hop]),
            "routes has {prefix} via {hop}:\n{table}"
        );
    }

    // JSON.
    let json = node.daemon().cli_json(&["status"]);
    assert_eq!(json["node"]["name"], "node0", "{json}");
    assert_eq!(json["node"]["kind"], "this", "{json}");
    assert_eq!(json["dataplane"]["up"], true, "{json}");
    assert_eq!(json["dataplane"]["ports"], 2, "{json}");
    assert!(json["dataplane"]["pid"].is_u64(), "{json}");
    assert!(
        json["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("embedded")),
        "{json}"
    );
    let json = node.daemon().cli_json(&["pods"]);
    let listed: BTreeSet<(String, String)> = json["pods"]
        .as_array()
        .unwrap_or_else(|| panic!("pods -o json has a pods array: {json}"))
        .iter()
        .map(|p| {
            (
                p["container_id"].as_str().unwrap_or_default().to_owned(),
                p["ipv4"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [&a, &b]
        .iter()
        .map(|p| (p.info.container_id.clone(), p.ipv4().to_string()))
        .collect();
    assert_eq!(listed, expected, "pods -o json: {json}");
    let json = node.daemon().cli_json(&["nodes"]);
    assert_eq!(json["nodes"][0]["name"], "node0", "{json}");
    assert_eq!(json["nodes"][0]["subnets"][0], net.to_string(), "{json}");
    assert_eq!(
        json["nodes"][0]["underlay_ip"],
        node.underlay_ip().to_string(),
        "{json}"
    );
    let json = node.daemon().cli_json(&["routes"]);
    for pod in [&a, &b] {
        let prefix = format!("{}/32", pod.ipv4());
        let hop = format!("port {}", pod.info.port_name());
        assert!(
            json["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["prefix"] == prefix.as_str() && r["next_hop"] == hop.as_str()),
            "routes -o json has {prefix} via {hop}: {json}"
        );
    }

    // Counters: the pings went through both pods' ports. Workers publish
    // their counters every so often, so wait for them.
    let counted = |json: &serde_json::Value, port: &str, field: &str| {
        json["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == port)
            .and_then(|p| p[field].as_u64())
            .is_some_and(|n| n > 0)
    };
    let ports = [a.info.port_name(), b.info.port_name()];
    let mut json = serde_json::Value::Null;
    let seen = poll::wait(FIRST, || {
        json = node.daemon().cli_json(&["stats"]);
        ports.iter().all(|port| {
            ["rx_packets", "tx_packets"]
                .iter()
                .all(|field| counted(&json, port, field))
        })
    });
    assert!(
        seen,
        "stats -o json counts packets both ways on {ports:?}: {json}"
    );

    // Metrics, from inside the node.
    let out = node.node().exec(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://{METRICS}/metrics"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl the metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        metric_values(&text, "tweed_ipam_addresses_used"),
        vec![2.0],
        "two addresses used:\n{text}"
    );
    assert_eq!(
        metric_values(&text, "tweed_dataplane_up"),
        vec![1.0],
        "the dataplane is up:\n{text}"
    );
}

#[test]
fn a_killed_dataplane_is_restarted_and_pods_ping_again() {
    if !require_root() {
        return;
    }
    let prefix = "cnk";
    let node = SingleNode::start(prefix, "10.97.2", &[]);
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let b = ControlPod::attach(&mut client, prefix, "b");
    assert_pods_ping(&a, &b, false, FIRST);
    let before = status(&mut client);
    let old = node
        .daemon()
        .dataplane_pid()
        .expect("run/dataplane.pid holds the dataplane's pid");
    assert_eq!(before.dataplane.pid, Some(old), "status: {before:?}");

    let killed = Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -9 {old}");

    // Nobody acts: the daemon notices, restarts and resyncs.
    assert_pods_ping(&a, &b, false, HEAL);
    let mut last = None;
    let restarted = poll::wait(HEAL, || {
        let st = status(&mut client);
        let ok = st.dataplane.up
            && st.dataplane.restarts >= 1
            && st.dataplane.pid.is_some_and(|p| p != old);
        last = Some(st);
        ok
    });
    assert!(
        restarted,
        "status shows a restarted dataplane with a new pid (old {old}): {last:?}"
    );
    let st = last.expect("polled at least once");
    assert_eq!(
        node.daemon().dataplane_pid(),
        st.dataplane.pid,
        "run/dataplane.pid names the new dataplane"
    );
    assert_eq!(st.dataplane.ports, 2, "both ports are back: {st:?}");
}

#[test]
fn a_restarted_daemon_keeps_its_subnet_and_pods() {
    if !require_root() {
        return;
    }
    let prefix = "cnr";
    let mut node = SingleNode::start(prefix, "10.97.3", &[]);
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let b = ControlPod::attach(&mut client, prefix, "b");
    assert_pods_ping(&a, &b, false, FIRST);
    let net = subnet(&status(&mut client), false);
    let cluster_route = "10.244.0.0/16";
    let routes_text = ip_routes(node.node());
    assert!(
        has_line_with(&routes_text, &[cluster_route, "tweed0"]),
        "the cluster CIDR is routed via tweed0 while the daemon runs:\n{routes_text}"
    );
    let tables = nft_tables(node.node());
    assert!(
        tables.contains("inet tweed"),
        "nft table inet tweed exists while the daemon runs:\n{tables}"
    );
    let node_json = std::fs::read_to_string(node.daemon().state_dir().join("node.json"))
        .expect("the daemon wrote STATE/node.json");
    assert!(
        node_json.contains(&net.to_string()),
        "node.json remembers {net}: {node_json}"
    );
    drop(client);

    assert!(node.daemon_mut().stop(), "the daemon exits on SIGTERM");
    let routes_text = ip_routes(node.node());
    // The kernel's own link-local route stays with the device; the daemon's
    // routes go.
    let left: Vec<&str> = routes_text
        .lines()
        .filter(|l| l.contains("tweed0") && !l.starts_with("fe80::/64"))
        .collect();
    assert!(
        left.is_empty() && !routes_text.contains(cluster_route),
        "no route of the daemon is left after SIGTERM: {left:?}\n{routes_text}"
    );
    let tables = nft_tables(node.node());
    assert!(
        !tables.contains("tweed"),
        "no tweed nft table is left after SIGTERM:\n{tables}"
    );

    node.daemon_mut().restart();
    let mut client = node.client();
    let st = status(&mut client);
    assert_eq!(subnet(&st, false), net, "the same subnet after a restart");
    for pod in [&a, &b] {
        let got = pod_get(&mut client, &pod.info.container_id, &pod.info.ifname)
            .unwrap_or_else(|e| panic!("pod_get {}: {e:?}", pod.info.container_id));
        assert_eq!(
            got.ipv4, pod.info.ipv4,
            "pod {} keeps its address",
            pod.info.name
        );
        assert_eq!(got.mac, pod.info.mac, "pod {} keeps its MAC", pod.info.name);
    }
    assert_eq!(pod_list(&mut client).len(), 2, "two pods after a restart");

    assert_pods_ping(&a, &b, false, HEAL);
    for pod in [&a, &b] {
        control::wait_addresses(&pod.netns, &pod.info);
        assert_eq!(
            links(&pod.netns),
            [pod.info.ifname.as_str()],
            "one interface in pod {}",
            pod.info.name
        );
        let prefix = format!("{}/32", pod.ipv4());
        let held = routes(&mut client)
            .iter()
            .filter(|r| r.prefix.to_string() == prefix)
            .count();
        assert_eq!(held, 1, "route {prefix} is listed once");
    }
    let ports = node.dataplane().port_list();
    let names: BTreeSet<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(ports.len(), 2, "two ports, not duplicated: {ports:?}");
    assert_eq!(
        names,
        [a.info.port_name(), b.info.port_name()]
            .iter()
            .map(String::as_str)
            .collect(),
        "the pods' ports"
    );
    let routes_text = ip_routes(node.node());
    assert!(
        has_line_with(&routes_text, &[cluster_route, "tweed0"]),
        "the cluster route is back after the restart:\n{routes_text}"
    );
    assert!(
        nft_tables(node.node()).contains("inet tweed"),
        "the nft table is back after the restart"
    );
}

#[test]
fn dual_stack_pods_ping_over_both_families() {
    if !require_root() {
        return;
    }
    let prefix = "cn6";
    let node = SingleNode::start(
        prefix,
        "10.97.4",
        &[
            "--cluster-cidr",
            "10.244.0.0/16",
            "--cluster-cidr",
            "fd44::/48",
        ],
    );
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let b = ControlPod::attach(&mut client, prefix, "b");
    let st = status(&mut client);
    let (v4, v6) = (subnet(&st, false), subnet(&st, true));
    assert_eq!(v6.prefix_len(), 64, "the default IPv6 node subnet length");
    assert!(
        IpNet::V6("fd44::/48".parse().expect("a CIDR")).contains(&v6),
        "{v6} is cut from fd44::/48"
    );
    for pod in [&a, &b] {
        assert!(v4.contains(&pod.ipv4()), "{} in {v4}", pod.ipv4());
        assert!(v6.contains(&pod.ipv6()), "{} in {v6}", pod.ipv6());
    }
    assert_pods_ping(&a, &b, false, FIRST);
    assert_pods_ping(&a, &b, true, FIRST);

    let node_v6 = node_address(&v6);
    let on_tweed0 = node.node().addresses("tweed0");
    assert!(
        on_tweed0
            .iter()
            .any(|(addr, _)| addr.split('/').next() == Some(&node_v6.to_string())),
        "tweed0 carries the node's IPv6 address {node_v6}: {on_tweed0:?}"
    );
    assert!(
        wait_ping(&a.netns, node_v6, FIRST),
        "pod a → the node's IPv6 address {node_v6}"
    );
}

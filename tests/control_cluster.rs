//! Three `tweed daemon`s sharing one etcd, end to end: they boot at the same
//! moment and lease distinct subnets, their pods reach each other and the
//! other nodes' hosts, health probes see every peer; a node that leaves is
//! forgotten once its lease expires and gets its subnet (and its pod's
//! connectivity) back when it returns; a dataplane killed under a node
//! recovers without anyone acting.
//!
//! One scenario in one test: each phase starts from the state the previous
//! one left, as a cluster lives, and three daemons with their dataplanes are
//! all this 2-core machine runs at once. Every wait is a poll with a generous
//! deadline; no assertion depends on how fast something happened.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use tweed_suite::cluster::{
    self, ClusterPod, NodeSpec, node_names, routes_prefix, start_together, subnet_v4,
};
use tweed_suite::daemon::Daemon;
use tweed_suite::etcd::Etcd;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{ping, wait_ping};
use tweed_suite::underlay::Underlay;

const PREFIX: &str = "cc";
const BASE: &str = "10.96.21";
const NODES: usize = 3;
/// The daemons' default cluster CIDR.
const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// How long a path may take to work for the first time (peers programmed,
/// neighbours resolved).
const FIRST: Duration = Duration::from_secs(20);
/// How long the cluster may take to notice a change (a lease expiring with a
/// 3 s TTL, a watch event, a probe every 2 s).
const CONVERGE: Duration = Duration::from_secs(20);
/// One ping exchange on a path that works.
const PING: Duration = Duration::from_secs(5);

#[test]
fn three_nodes_on_etcd_route_pods_forget_a_leaving_node_and_heal_a_dataplane() {
    if !require_root() {
        return;
    }
    // Dropped last: every namespace outlives the daemons and pods in it.
    let underlay = Underlay::new(PREFIX, BASE, NODES);
    let etcd = Etcd::start(underlay.switch(), underlay.switch_ip());
    let args: Vec<String> = [
        "--etcd-endpoints",
        etcd.endpoint(),
        "--lease-ttl",
        "3",
        "--workers",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let names: Vec<String> = (0..NODES).map(|i| format!("node{i}")).collect();
    let specs: Vec<NodeSpec<'_>> = (0..NODES)
        .map(|i| NodeSpec {
            netns: underlay.node(i),
            name: &names[i],
            args: &args,
        })
        .collect();
    let mut daemons = start_together(&specs);

    // Distinct subnets of the cluster CIDR, each node seeing all three.
    let cidr: IpNet = CLUSTER_CIDR.parse().unwrap();
    let subnets: Vec<IpNet> = daemons.iter().map(subnet_v4).collect();
    for (i, subnet) in subnets.iter().enumerate() {
        assert!(cidr.contains(subnet), "node{i}'s {subnet} is in {cidr}");
    }
    assert_eq!(
        subnets.iter().collect::<BTreeSet<_>>().len(),
        NODES,
        "three nodes started together lease distinct subnets: {subnets:?}"
    );
    for d in &daemons {
        wait_nodes(d, &names);
    }

    // One pod per node, each reaching every other (all six ordered pairs).
    let pods: Vec<ClusterPod> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| ClusterPod::add(d, PREFIX, &format!("p{i}")))
        .collect();
    for (i, pod) in pods.iter().enumerate() {
        assert!(
            subnets[i].contains(&pod.ip()),
            "pod p{i} ({}) is in node{i}'s {}",
            pod.ip(),
            subnets[i]
        );
    }
    for a in 0..NODES {
        for b in (0..NODES).filter(|b| *b != a) {
            assert!(
                wait_ping(&pods[a].netns, pods[b].ip(), FIRST),
                "pod p{a} ({}) → pod p{b} ({})",
                pods[a].ip(),
                pods[b].ip()
            );
        }
    }
    // Each node's host reaches a pod on the next node.
    for i in 0..NODES {
        let j = (i + 1) % NODES;
        assert!(
            wait_ping(underlay.node(i), pods[j].ip(), FIRST),
            "node{i}'s host → pod p{j} ({})",
            pods[j].ip()
        );
    }
    wait_peers_reachable(&daemons[0], &names[1..]);

    // Node 2 leaves (SIGTERM keeps its lease, which then expires): the
    // others drop its subnet and its record.
    assert!(
        routes_prefix(&daemons[0], subnets[2]),
        "node0 routes node2's {} while node2 runs",
        subnets[2]
    );
    assert!(daemons[2].stop(), "node2 exits on SIGTERM");
    for d in &daemons[..2] {
        let mut seen = Vec::new();
        let forgotten = poll::wait(CONVERGE, || {
            seen = node_names(d);
            seen.len() == 2 && !routes_prefix(d, subnets[2])
        });
        assert!(
            forgotten,
            "{} forgets node2 once its lease expires: nodes {seen:?}, routes {:?}",
            d.name(),
            cluster::routes(d)
        );
    }
    for (a, b) in [(0, 1), (1, 0)] {
        assert!(
            ping(&pods[a].netns, pods[b].ip(), 3, PING),
            "pod p{a} → pod p{b} while node2 is gone"
        );
    }

    // Node 2 returns: same subnet, its pod (netns and store record kept)
    // reaches the others again, both ways.
    daemons[2].restart();
    assert_eq!(
        subnet_v4(&daemons[2]),
        subnets[2],
        "node2 gets its subnet back"
    );
    for d in &daemons {
        wait_nodes(d, &names);
    }
    for other in 0..2 {
        assert!(
            wait_ping(&pods[2].netns, pods[other].ip(), FIRST),
            "returned pod p2 → pod p{other}"
        );
        assert!(
            wait_ping(&pods[other].netns, pods[2].ip(), FIRST),
            "pod p{other} → returned pod p2"
        );
    }

    // Node 1's dataplane dies (kill -9): its daemon starts another and
    // resyncs; cross-node traffic to its pod recovers on its own.
    let killed = daemons[1]
        .dataplane_pid()
        .expect("node1's dataplane.pid names its dataplane");
    let status = Command::new("kill")
        .args(["-KILL", &killed.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {killed} (node1's dataplane)");
    let replaced = poll::wait(CONVERGE, || {
        daemons[1].dataplane_pid().is_some_and(|pid| pid != killed)
            && cluster::status(&daemons[1]).dataplane.up
    });
    assert!(
        replaced,
        "node1's daemon starts a new dataplane after {killed} was killed: {:?}",
        cluster::status(&daemons[1]).dataplane
    );
    for other in [0, 2] {
        assert!(
            wait_ping(&pods[other].netns, pods[1].ip(), FIRST),
            "pod p{other} → pod p1 after node1's dataplane was killed"
        );
        assert!(
            wait_ping(&pods[1].netns, pods[other].ip(), FIRST),
            "pod p1 → pod p{other} after node1's dataplane was killed"
        );
    }
    assert!(
        cluster::status(&daemons[1]).dataplane.restarts >= 1,
        "node1's status counts the restart"
    );

    // Pods first (pod_del while their daemons run), then the daemons, etcd
    // and the namespaces.
    drop(pods);
    drop(daemons);
    drop(etcd);
    drop(underlay);
}

/// Waits until `daemon`'s `tweed nodes` lists exactly `names`.
fn wait_nodes(daemon: &Daemon, names: &[String]) {
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut seen = Vec::new();
    let all = poll::wait(CONVERGE, || {
        seen = node_names(daemon);
        seen.iter().map(String::as_str).collect::<BTreeSet<_>>() == wanted
            && seen.len() == names.len()
    });
    assert!(
        all,
        "`tweed nodes` on {} lists {names:?}; it lists {seen:?}",
        daemon.name()
    );
}

/// Waits until `daemon`'s `tweed status` shows every one of `peers`
/// reachable with a round-trip time.
fn wait_peers_reachable(daemon: &Daemon, peers: &[String]) {
    let mut last = None;
    let ok = poll::wait(CONVERGE, || {
        let status = cluster::status(daemon);
        let ok = peers.iter().all(|name| {
            status
                .peers
                .iter()
                .any(|p| p.node.name == *name && p.reachable == Some(true) && p.rtt_ms.is_some())
        });
        last = Some(status.peers);
        ok
    });
    assert!(
        ok,
        "`tweed status` on {} shows {peers:?} reachable with an rtt; peers: {last:?}",
        daemon.name()
    );
}

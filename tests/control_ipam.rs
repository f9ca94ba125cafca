//! Pod addresses on one node (embedded store), through `control.sock`:
//! concurrent allocation, exhaustion, release and reuse, idempotent ADD, GC,
//! failed ADDs that leave nothing behind, and a daemon killed in the middle
//! of a burst of ADDs.
//!
//! Each test has its own prefix and underlay subnet (10.97.11-19); every
//! namespace, process and directory goes with its guard, also on failure,
//! and a failing test prints the daemon's log.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc;
use std::time::Duration;

use ipnet::IpNet;
use tweed_control::api::pod::{PodAdd, PodInfo};
use tweed_control::api::{ClientError, ErrorKind};
use tweed_suite::control::{
    self, ControlPod, SingleNode, add_request, gc, links, pod_add, pod_del, pod_get, pod_list,
    refusal, settled_links, status,
};
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::wait_ping;

/// How long a first ping through a fresh path may take.
const FIRST: Duration = Duration::from_secs(15);
/// How long the crash test waits for its first answers, at most.
const ANSWERS: Duration = Duration::from_secs(60);

/// `n` pod namespaces `tw-<prefix>-p<i>-<pid>`.
fn pod_namespaces(prefix: &str, n: usize) -> Vec<Netns> {
    (0..n)
        .map(|i| Netns::new(prefix, &format!("p{i}")))
        .collect()
}

/// The container id of pod `i` of a test.
fn container(prefix: &str, i: usize) -> String {
    format!("{prefix}-c{i}")
}

/// This node's IPv4 subnet from `status`.
fn node_subnet(node: &SingleNode) -> IpNet {
    let st = status(&mut node.client());
    *st.node
        .subnets
        .iter()
        .find(|s| matches!(s, IpNet::V4(_)))
        .unwrap_or_else(|| panic!("the node has an IPv4 subnet: {st:?}"))
}

/// Pod `i`'s `pod_add` in `netns[i]`; answers the daemon's reply.
fn add(node: &SingleNode, prefix: &str, netns: &[Netns], i: usize) -> Result<PodInfo, ClientError> {
    let request = add_request(&container(prefix, i), &netns[i], &format!("p{i}"));
    pod_add(&mut node.client(), &request)
}

/// The IPv4 address `pod_add` answered.
fn v4(pod: &PodInfo) -> Ipv4Addr {
    pod.ipv4
        .unwrap_or_else(|| panic!("pod {} has an IPv4 address", pod.container_id))
}

/// Asserts no address in `pods` is held twice and returns them.
fn distinct(pods: &[PodInfo]) -> BTreeSet<Ipv4Addr> {
    let addrs: BTreeSet<Ipv4Addr> = pods.iter().map(v4).collect();
    assert_eq!(
        addrs.len(),
        pods.len(),
        "no address is held twice: {:?}",
        pods.iter()
            .map(|p| (&p.container_id, p.ipv4))
            .collect::<Vec<_>>()
    );
    addrs
}

/// Asserts nothing is left: no pod record, no dataplane port, no interface
/// in any of `netns`.
fn assert_nothing_left(node: &SingleNode, netns: &[Netns]) {
    let pods = pod_list(&mut node.client());
    assert!(pods.is_empty(), "no pod is left: {pods:?}");
    let ports = node.dataplane().port_list();
    assert!(ports.is_empty(), "no dataplane port is left: {ports:?}");
    for ns in netns {
        assert_eq!(
            settled_links(ns, &[]),
            Vec::<String>::new(),
            "no interface is left in {}",
            ns.name()
        );
    }
}

#[test]
fn fifty_concurrent_adds_get_fifty_addresses_and_dels_clear_them() {
    if !require_root() {
        return;
    }
    let prefix = "ci50";
    let node = SingleNode::start(prefix, "10.97.11", &[]);
    let net = node_subnet(&node);
    let netns = pod_namespaces(prefix, 50);
    let pods: Vec<PodInfo> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..netns.len())
            .map(|i| {
                let (node, netns) = (&node, &netns);
                s.spawn(move || add(node, prefix, netns, i))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.join()
                    .expect("a pod_add thread panicked")
                    .unwrap_or_else(|e| panic!("pod_add {i}: {e:?}"))
            })
            .collect()
    });
    let addrs = distinct(&pods);
    assert_eq!(addrs.len(), 50, "fifty distinct addresses");
    for addr in &addrs {
        assert!(net.contains(&IpAddr::V4(*addr)), "{addr} is in {net}");
    }
    assert_eq!(pod_list(&mut node.client()).len(), 50, "pod_list has 50");
    assert_eq!(node.dataplane().port_list().len(), 50, "fifty ports");

    // A sample, reached from pod 0.
    control::wait_addresses(&netns[0], &pods[0]);
    for i in [1, 13, 26, 38, 49] {
        control::wait_addresses(&netns[i], &pods[i]);
        let dst = IpAddr::V4(v4(&pods[i]));
        assert!(wait_ping(&netns[0], dst, FIRST), "pod 0 → pod {i} ({dst})");
    }

    std::thread::scope(|s| {
        for pod in &pods {
            let node = &node;
            s.spawn(move || {
                let released = pod_del(&mut node.client(), &pod.container_id, None);
                assert_eq!(
                    released.len(),
                    1,
                    "pod_del {} released it",
                    pod.container_id
                );
            });
        }
    });
    assert_nothing_left(&node, &netns);
}

#[test]
fn a_full_subnet_refuses_with_exhausted_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let prefix = "cix";
    let node = SingleNode::start(prefix, "10.97.12", &["--subnet-len", "29"]);
    let net = node_subnet(&node);
    assert_eq!(net.prefix_len(), 29, "the node got a /29");
    let netns = pod_namespaces(prefix, 6);
    let pods: Vec<PodInfo> = (0..5)
        .map(|i| add(&node, prefix, &netns, i).unwrap_or_else(|e| panic!("pod_add {i}: {e:?}")))
        .collect();
    distinct(&pods);

    let err = refusal(add(&node, prefix, &netns, 5));
    assert_eq!(err.kind, ErrorKind::Exhausted, "the sixth: {err:?}");
    assert!(
        err.message.contains(&net.to_string()),
        "the message names the subnet {net}: {}",
        err.message
    );
    assert!(
        links(&netns[5]).is_empty(),
        "no interface in the refused pod's netns"
    );
    let listed = pod_list(&mut node.client());
    assert_eq!(listed.len(), 5, "no record for the refused pod: {listed:?}");
    assert!(
        !listed
            .iter()
            .any(|p| p.container_id == container(prefix, 5)),
        "the refused pod is not listed"
    );
    assert_eq!(node.dataplane().port_list().len(), 5, "five ports");
}

#[test]
fn a_released_address_is_handed_out_again() {
    if !require_root() {
        return;
    }
    let prefix = "cir";
    let node = SingleNode::start(prefix, "10.97.13", &["--subnet-len", "29"]);
    let netns = pod_namespaces(prefix, 7);
    let mut client = node.client();
    let mut held: BTreeMap<usize, PodInfo> = BTreeMap::new();
    for i in 0..3 {
        let pod = add(&node, prefix, &netns, i).unwrap_or_else(|e| panic!("pod_add {i}: {e:?}"));
        held.insert(i, pod);
    }
    let released = pod_del(&mut client, &container(prefix, 1), None);
    assert_eq!(released.len(), 1, "pod 1 released: {released:?}");
    let freed = v4(&held.remove(&1).expect("pod 1 was held"));
    assert!(
        settled_links(&netns[1], &[]).is_empty(),
        "pod 1's tap is gone"
    );

    // The next allocation succeeds; round-robin may hand out a fresh address
    // first, so fill the pool: the freed one must come back.
    for i in 3..6 {
        let pod = add(&node, prefix, &netns, i).unwrap_or_else(|e| panic!("pod_add {i}: {e:?}"));
        held.insert(i, pod);
    }
    let pods: Vec<PodInfo> = held.values().cloned().collect();
    let addrs = distinct(&pods);
    assert_eq!(addrs.len(), 5, "the /29 is full again");
    assert!(
        addrs.contains(&freed),
        "the released {freed} was handed out again: {addrs:?}"
    );
    let err = refusal(add(&node, prefix, &netns, 6));
    assert_eq!(
        err.kind,
        ErrorKind::Exhausted,
        "then the pool is full: {err:?}"
    );
}

#[test]
fn adding_the_same_attachment_twice_answers_the_same_pod() {
    if !require_root() {
        return;
    }
    let prefix = "cii";
    let node = SingleNode::start(prefix, "10.97.14", &[]);
    let netns = pod_namespaces(prefix, 1);
    let first = add(&node, prefix, &netns, 0).expect("the first pod_add");
    let second = add(&node, prefix, &netns, 0).expect("the second pod_add");
    assert_eq!(
        first, second,
        "the same attachment twice answers the same pod"
    );
    assert_eq!(pod_list(&mut node.client()).len(), 1, "one record");
    let ports = node.dataplane().port_list();
    assert_eq!(ports.len(), 1, "one port: {ports:?}");
    assert_eq!(links(&netns[0]), ["eth0"], "one interface in the pod");
    let prefix_32 = format!("{}/32", v4(&first));
    let routes = control::routes(&mut node.client());
    assert_eq!(
        routes
            .iter()
            .filter(|r| r.prefix.to_string() == prefix_32)
            .count(),
        1,
        "one route {prefix_32}: {routes:?}"
    );
}

#[test]
fn gc_releases_every_pod_not_listed_and_keeps_the_rest() {
    if !require_root() {
        return;
    }
    let prefix = "cig";
    let node = SingleNode::start(prefix, "10.97.15", &[]);
    let mut client = node.client();
    let pods: Vec<ControlPod> = (0..4)
        .map(|i| ControlPod::attach(&mut client, prefix, &format!("p{i}")))
        .collect();
    let valid = [pods[0].key(), pods[1].key()];
    let released = gc(&mut client, &valid);
    let released: BTreeSet<String> = released.into_iter().map(|p| p.container_id).collect();
    let expected: BTreeSet<String> = pods[2..]
        .iter()
        .map(|p| p.info.container_id.clone())
        .collect();
    assert_eq!(released, expected, "gc released the two unlisted pods");
    for pod in &pods[2..] {
        assert!(
            settled_links(&pod.netns, &[]).is_empty(),
            "{}'s tap is gone",
            pod.info.name
        );
        let err = refusal(pod_get(
            &mut client,
            &pod.info.container_id,
            &pod.info.ifname,
        ));
        assert_eq!(
            err.kind,
            ErrorKind::NotFound,
            "{} has no record",
            pod.info.name
        );
    }
    let kept: BTreeSet<String> = pod_list(&mut client)
        .into_iter()
        .map(|p| p.container_id)
        .collect();
    let expected: BTreeSet<String> = pods[..2]
        .iter()
        .map(|p| p.info.container_id.clone())
        .collect();
    assert_eq!(kept, expected, "the valid two are kept");
    assert!(wait_ping(&pods[0].netns, pods[1].ipv4(), FIRST), "p0 → p1");
    assert!(wait_ping(&pods[1].netns, pods[0].ipv4(), FIRST), "p1 → p0");
}

#[test]
fn failed_adds_leave_nothing_behind() {
    if !require_root() {
        return;
    }
    let prefix = "cie";
    // A /29 (five addresses): filling it afterwards proves no address leaked.
    let node = SingleNode::start(prefix, "10.97.16", &["--subnet-len", "29"]);
    let mut client = node.client();

    // A netns that does not exist.
    let missing = format!("/run/netns/tw-{prefix}-missing-{}", std::process::id());
    let request = PodAdd {
        container_id: "missing-netns".to_owned(),
        netns: missing.clone(),
        ifname: "eth0".to_owned(),
        namespace: None,
        name: Some("missing".to_owned()),
        labels: Default::default(),
        mtu: None,
        ips: Vec::new(),
        mac: None,
        netns_fd: None,
    };
    let err = refusal(pod_add(&mut client, &request));
    assert_eq!(err.kind, ErrorKind::Invalid, "netns {missing}: {err:?}");
    let err = refusal(pod_get(&mut client, "missing-netns", "eth0"));
    assert_eq!(err.kind, ErrorKind::NotFound, "no record: {err:?}");

    // An ifname already taken in the pod's netns.
    let taken = Netns::new(prefix, "taken");
    taken.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ]);
    let before = taken.ip_json(&["link", "show", "dev", "eth0"]);
    let err = refusal(pod_add(
        &mut client,
        &add_request("taken-ifname", &taken, "taken"),
    ));
    assert_eq!(err.kind, ErrorKind::Conflict, "eth0 taken: {err:?}");
    let err2 = refusal(pod_get(&mut client, "taken-ifname", "eth0"));
    assert_eq!(err2.kind, ErrorKind::NotFound, "no record: {err2:?}");
    let after = taken.ip_json(&["link", "show", "dev", "eth0"]);
    assert_eq!(
        after[0]["ifindex"], before[0]["ifindex"],
        "the pod's own eth0 is untouched: {after}"
    );
    let mut left = links(&taken);
    left.sort();
    assert_eq!(left, ["eth0", "peer0"], "no tap was left in the netns");

    assert!(pod_list(&mut client).is_empty(), "no record is left");
    assert!(node.dataplane().port_list().is_empty(), "no port is left");
    // Every address is still free.
    let netns = pod_namespaces(prefix, 5);
    let pods: Vec<PodInfo> = (0..5)
        .map(|i| add(&node, prefix, &netns, i).unwrap_or_else(|e| panic!("pod_add {i}: {e:?}")))
        .collect();
    assert_eq!(distinct(&pods).len(), 5, "all five addresses were free");
}

#[test]
fn a_daemon_killed_during_adds_keeps_every_answer_and_holds_no_address_twice() {
    if !require_root() {
        return;
    }
    let prefix = "cic";
    let mut node = SingleNode::start(prefix, "10.97.17", &[]);
    let netns = pod_namespaces(prefix, 30);
    // Connected before the burst, so a refused connect cannot be mistaken
    // for the crash.
    let clients: Vec<_> = (0..netns.len()).map(|_| node.client()).collect();
    let (tx, rx) = mpsc::channel();
    let answered: BTreeMap<usize, PodInfo> = std::thread::scope(|s| {
        for (i, mut client) in clients.into_iter().enumerate() {
            let tx = tx.clone();
            let request = add_request(&container(prefix, i), &netns[i], &format!("p{i}"));
            s.spawn(move || {
                let _ = tx.send((i, pod_add(&mut client, &request)));
            });
        }
        drop(tx);
        let mut answered = BTreeMap::new();
        let mut failed = Vec::new();
        while answered.len() < 10 {
            match rx.recv_timeout(ANSWERS) {
                Ok((i, Ok(pod))) => {
                    answered.insert(i, pod);
                }
                Ok((i, Err(e))) => failed.push((i, e)),
                Err(e) => panic!(
                    "only {} pod_adds answered ({e}); failures: {failed:?}",
                    answered.len()
                ),
            }
        }
        node.daemon_mut().kill9();
        // The rest: answered before the kill landed, or cut off.
        for (i, result) in rx.iter() {
            match result {
                Ok(pod) => {
                    answered.insert(i, pod);
                }
                Err(ClientError::Api(e)) => panic!("pod_add {i} was refused: {e:?}"),
                Err(_) => {}
            }
        }
        assert!(
            failed.is_empty(),
            "no pod_add failed before the kill: {failed:?}"
        );
        answered
    });
    assert!(
        (10..30).contains(&answered.len()),
        "the kill landed in the middle of the burst: {} answered",
        answered.len()
    );

    node.daemon_mut().restart();
    let mut client = node.client();
    for (i, pod) in &answered {
        let got = pod_get(&mut client, &pod.container_id, &pod.ifname)
            .unwrap_or_else(|e| panic!("answered pod {i} has a record after the crash: {e:?}"));
        assert_eq!(got.ipv4, pod.ipv4, "answered pod {i} keeps its address");
    }
    let listed = pod_list(&mut client);
    eprintln!(
        "{} of 30 pod_adds answered around the kill; {} records after the restart",
        answered.len(),
        listed.len()
    );
    distinct(&listed);
    assert!(
        listed.len() >= answered.len(),
        "every answered pod is listed: {listed:?}"
    );

    let mut pods = Vec::new();
    for i in 0..netns.len() {
        let pod = add(&node, prefix, &netns, i).unwrap_or_else(|e| panic!("re-add {i}: {e:?}"));
        if let Some(before) = answered.get(&i) {
            assert_eq!(
                pod.ipv4, before.ipv4,
                "re-adding answered pod {i} is idempotent"
            );
        }
        pods.push(pod);
    }
    assert_eq!(distinct(&pods).len(), 30, "thirty distinct addresses");
    assert_eq!(pod_list(&mut client).len(), 30, "thirty records");
    let ports = node.dataplane().port_list();
    assert_eq!(ports.len(), 30, "thirty ports: {ports:?}");
    for (i, ns) in netns.iter().enumerate() {
        let ready = poll::wait(FIRST, || links(ns) == ["eth0"]);
        assert!(ready, "pod {i} has one interface: {:?}", links(ns));
    }

    for i in 0..netns.len() {
        pod_del(&mut client, &container(prefix, i), None);
    }
    assert_nothing_left(&node, &netns);
}

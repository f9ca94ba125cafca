//! The CNI plugin end to end: the built `tweed-cni` run as a container
//! runtime runs it (env + stdin, see `tweed_suite::cni`), against a real
//! `tweed daemon` in a one-node underlay, with pods in their own netns.
//!
//! Each test checks what the plugin printed (result shape per version, error
//! codes) and what it did: the interface in the pod's netns, the pod's
//! route on the dataplane, the daemon's allocation.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tweed_api::dataplane::proto::RouteTarget;
use tweed_control::api::pod::PodInfo;
use tweed_control::api::proto::Empty;
use tweed_control::api::{Client, Request, ResponseBody};
use tweed_suite::cni::{Outcome, Plugin, Vars};
use tweed_suite::control::settled_links;
use tweed_suite::daemon::Daemon;
use tweed_suite::netns::Netns;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::wait_ping;
use tweed_suite::underlay::Underlay;

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A one-node underlay running the daemon, and the plugin pointed at it.
struct Node {
    plugin: Plugin,
    daemon: Daemon,
    underlay: Underlay,
}

impl Node {
    fn start(prefix: &str, base: &str, args: &[&str]) -> Self {
        let underlay = Underlay::new(prefix, base, 1);
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let daemon = Daemon::start(underlay.node(0), "node0", &args);
        let plugin = Plugin::new(&daemon.control_socket());
        Node {
            plugin,
            daemon,
            underlay,
        }
    }

    fn prefix(&self) -> &str {
        self.underlay.node(0).prefix()
    }

    fn call(&self, request: Request) -> ResponseBody {
        Client::connect(&self.daemon.control_socket())
            .and_then(|mut c| c.call(request))
            .unwrap_or_else(|e| panic!("control.sock: {e}"))
    }

    fn pods(&self) -> Vec<PodInfo> {
        match self.call(Request::PodList(Empty {})) {
            ResponseBody::Pods(p) => p.pods,
            other => panic!("pod_list answered {other:?}"),
        }
    }

    /// The dataplane's routes to pod ports, as `PREFIX` strings.
    fn pod_routes(&self) -> Vec<String> {
        match self.call(Request::RouteList(Empty {})) {
            ResponseBody::Routes(r) => r
                .routes
                .iter()
                .filter(|r| matches!(r.next_hop, RouteTarget::Port(_)))
                .map(|r| r.prefix.to_string())
                .collect(),
            other => panic!("route_list answered {other:?}"),
        }
    }

    fn assert_nothing_held(&self, what: &str) {
        assert_eq!(self.pods(), Vec::<PodInfo>::new(), "{what}: pods left");
        assert_eq!(
            self.pod_routes(),
            Vec::<String>::new(),
            "{what}: pod routes left"
        );
    }
}

/// The links of a netns other than `lo`.
fn links(ns: &Netns) -> Vec<String> {
    ns.ip_json(&["link", "show"])
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["ifname"].as_str().map(str::to_owned))
        .filter(|n| n != "lo")
        .collect()
}

/// The IPv4 address (without length) of a result's first IP.
fn first_ip(result: &Value) -> IpAddr {
    let cidr = result["ips"][0]["address"].as_str().expect("an address");
    cidr.split('/').next().unwrap().parse().expect("an IP")
}

fn assert_shape(version: &str, result: &Value, netns: &Netns, ifname: &str) {
    let ctx = format!("{version} result {result}");
    assert_eq!(result["cniVersion"], version, "{ctx}");
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    assert_eq!(interfaces.len(), 1, "{ctx}");
    assert_eq!(interfaces[0]["name"], ifname, "{ctx}");
    assert_eq!(interfaces[0]["sandbox"], netns.path(), "{ctx}");
    assert_eq!(interfaces[0]["mac"], netns.mac(ifname), "{ctx}");
    assert_eq!(
        interfaces[0].get("mtu").is_some(),
        version == "1.1.0",
        "mtu only in 1.1.0: {ctx}"
    );
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{ctx}");
    assert_eq!(ips[0]["gateway"], "169.254.1.1", "{ctx}");
    assert_eq!(ips[0]["interface"], 0, "{ctx}");
    let address = ips[0]["address"].as_str().expect("address");
    assert!(address.ends_with("/32"), "{ctx}");
    if version.starts_with("0.") {
        assert_eq!(ips[0]["version"], "4", "{ctx}");
    } else {
        assert!(ips[0].get("version").is_none(), "{ctx}");
    }
    assert_eq!(result["routes"], json!([{"dst":"0.0.0.0/0"}]), "{ctx}");
    let on_link: Vec<String> = netns
        .addresses(ifname)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert!(
        on_link.iter().any(|a| a == address),
        "{address} not on {ifname}: {on_link:?}"
    );
}

#[test]
fn add_check_del_in_every_version() {
    if !require_root() {
        return;
    }
    let node = Node::start("cv", "10.98.40", &[]);
    for (i, version) in VERSIONS.iter().enumerate() {
        let pod = Netns::new(node.prefix(), &format!("p{i}"));
        let id = format!("cv{i}");
        let result = node.plugin.add(version, &id, &pod.path(), "eth0");
        assert_shape(version, &result, &pod, "eth0");
        let address = result["ips"][0]["address"].as_str().unwrap().to_owned();
        assert_eq!(node.pod_routes(), [address], "{version}: the pod's route");

        let check = node
            .plugin
            .check(version, &id, &pod.path(), "eth0", &result);
        if version.starts_with("0.3") {
            assert_eq!(check.error_code(), 1, "CHECK does not exist in {version}");
        } else {
            check.assert_ok(&format!("CHECK {version}"));
        }

        node.plugin
            .del(version, &id, Some(&pod.path()), "eth0")
            .assert_ok(&format!("DEL {version}"));
        assert_eq!(
            settled_links(&pod, &[]),
            Vec::<String>::new(),
            "{version}: links after DEL"
        );
        let routes = pod.ip_json(&["route", "show"]);
        assert_eq!(routes, json!([]), "{version}: routes after DEL");
        node.assert_nothing_held(&format!("after DEL {version}"));
    }
}

#[test]
fn the_minimal_conflist_works_with_the_defaults() {
    if !require_root() {
        return;
    }
    let node = Node::start("cm", "10.98.41", &[]);
    let pod = Netns::new(node.prefix(), "p");
    // What a runtime passes for `{"cniVersion":"1.1.0","name":"tweed","plugins":[{"type":"tweed"}]}`,
    // with the socket only because the test daemon's is not /run/tweed's.
    let config = json!({"cniVersion":"1.1.0","name":"tweed","type":"tweed",
                        "socket": node.plugin.socket().display().to_string()});
    let out = node.plugin.run(
        Vars {
            command: "ADD",
            container_id: Some("cm0"),
            netns: Some(&pod.path()),
            ifname: Some("eth0"),
            args: None,
        },
        config.to_string().as_bytes(),
    );
    out.assert_ok("ADD without CNI_ARGS");
    let pods = node.pods();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].namespace, "default");
    node.plugin
        .del("1.1.0", "cm0", Some(&pod.path()), "eth0")
        .assert_ok("DEL");
}

#[test]
fn check_says_what_differs() {
    if !require_root() {
        return;
    }
    let node = Node::start("cc", "10.98.42", &[]);
    let pod = Netns::new(node.prefix(), "p");
    let result = node.plugin.add("1.1.0", "cc0", &pod.path(), "eth0");
    let ip = result["ips"][0]["address"].as_str().unwrap().to_owned();

    let mut wrong = result.clone();
    wrong["ips"][0]["address"] = json!("10.1.2.3/32");
    let out = node
        .plugin
        .check("1.1.0", "cc0", &pod.path(), "eth0", &wrong);
    assert_eq!(out.error_code(), 101, "{out:?}");
    assert!(out.error_msg().contains("10.1.2.3/32"), "{out:?}");

    pod.ip(&["addr", "del", &ip, "dev", "eth0"]);
    let out = node
        .plugin
        .check("1.1.0", "cc0", &pod.path(), "eth0", &result);
    assert_eq!(out.error_code(), 101, "{out:?}");
    let msg = out.error_msg();
    assert!(msg.contains(&format!("lacks the address {ip}")), "{msg}");

    let out = node
        .plugin
        .check("1.1.0", "never", &pod.path(), "eth0", &result);
    assert_eq!(
        out.error_code(),
        3,
        "CHECK of an unknown container: {out:?}"
    );

    node.plugin
        .del("1.1.0", "cc0", Some(&pod.path()), "eth0")
        .assert_ok("DEL");
}

#[test]
fn two_pods_attached_by_the_plugin_ping_each_other() {
    if !require_root() {
        return;
    }
    let node = Node::start("cp", "10.98.43", &[]);
    let a = Netns::new(node.prefix(), "a");
    let b = Netns::new(node.prefix(), "b");
    let ra = node.plugin.add("1.1.0", "cpa", &a.path(), "eth0");
    let rb = node.plugin.add("1.1.0", "cpb", &b.path(), "eth0");
    let (ia, ib) = (first_ip(&ra), first_ip(&rb));
    assert_ne!(ia, ib);
    assert!(wait_ping(&a, ib, Duration::from_secs(10)), "a → b");
    assert!(wait_ping(&b, ia, Duration::from_secs(10)), "b → a");
    for (id, ns) in [("cpa", &a), ("cpb", &b)] {
        node.plugin
            .del("1.1.0", id, Some(&ns.path()), "eth0")
            .assert_ok("DEL");
    }
    node.assert_nothing_held("after both DELs");
}

#[test]
fn del_is_idempotent() {
    if !require_root() {
        return;
    }
    let node = Node::start("cd", "10.98.44", &[]);
    let pod = Netns::new(node.prefix(), "p");
    node.plugin.add("1.0.0", "cd0", &pod.path(), "eth0");
    for round in ["first", "second"] {
        node.plugin
            .del("1.0.0", "cd0", Some(&pod.path()), "eth0")
            .assert_ok(&format!("{round} DEL"));
    }
    node.assert_nothing_held("after DEL twice");

    let gone = Netns::new(node.prefix(), "gone");
    node.plugin.add("1.0.0", "cd1", &gone.path(), "eth0");
    let path = gone.path();
    drop(gone);
    assert!(!Path::new(&path).exists());
    node.plugin
        .del("1.0.0", "cd1", Some(&path), "eth0")
        .assert_ok("DEL after the netns was removed");
    node.plugin
        .del("1.0.0", "cd1", None, "eth0")
        .assert_ok("DEL without CNI_NETNS");
    node.assert_nothing_held("after DEL of a removed netns");

    node.plugin
        .del("1.0.0", "never-added", Some(&pod.path()), "eth0")
        .assert_ok("DEL of a container never added");
}

#[test]
fn fifty_parallel_adds_get_distinct_addresses_and_dels_leave_nothing() {
    if !require_root() {
        return;
    }
    const N: usize = 50;
    let node = Node::start("cq", "10.98.45", &[]);
    let pods: Vec<Netns> = (0..N)
        .map(|i| Netns::new(node.prefix(), &format!("p{i}")))
        .collect();
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let plugin = &node.plugin;
                s.spawn(move || plugin.add("1.1.0", &format!("cq{i}"), &pod.path(), "eth0"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an ADD thread panicked"))
            .collect()
    });
    let mut ips: Vec<IpAddr> = results.iter().map(first_ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), N, "distinct addresses: {ips:?}");
    assert_eq!(node.pods().len(), N);

    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let plugin = &node.plugin;
                s.spawn(move || plugin.del("1.1.0", &format!("cq{i}"), Some(&pod.path()), "eth0"))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a DEL thread panicked"))
            .collect()
    });
    for (i, out) in outcomes.iter().enumerate() {
        out.assert_ok(&format!("DEL cq{i}"));
    }
    node.assert_nothing_held("after 50 DELs");
    for pod in &pods {
        assert_eq!(
            settled_links(pod, &[]),
            Vec::<String>::new(),
            "{} after DEL",
            pod.name()
        );
    }
}

#[test]
fn bad_inputs_are_refused_with_their_codes_and_leave_nothing() {
    if !require_root() {
        return;
    }
    let node = Node::start("cb", "10.98.46", &[]);
    let plugin = &node.plugin;
    let pod = Netns::new(node.prefix(), "p");
    let path = pod.path();
    let add_vars = Vars {
        command: "ADD",
        container_id: Some("cb0"),
        netns: Some(&path),
        ifname: Some("eth0"),
        args: None,
    };

    let out = plugin.run(add_vars, b"{\"cniVersion\":");
    assert_eq!(out.error_code(), 6, "invalid JSON: {out:?}");

    let config = plugin.config("1.1.0").to_string();
    let out = plugin.run(
        Vars {
            netns: None,
            ..add_vars
        },
        config.as_bytes(),
    );
    assert_eq!(out.error_code(), 4, "missing CNI_NETNS: {out:?}");
    assert!(out.error_msg().contains("CNI_NETNS"), "{out:?}");

    let out = plugin.run(add_vars, plugin.config("0.2.0").to_string().as_bytes());
    assert_eq!(out.error_code(), 1, "unsupported version: {out:?}");

    let missing = format!("/run/netns/tw-cb-missing-{}", std::process::id());
    let out = plugin.run(
        Vars {
            netns: Some(&missing),
            ..add_vars
        },
        config.as_bytes(),
    );
    assert_eq!(out.error_code(), 4, "netns that does not exist: {out:?}");
    assert!(out.error_msg().contains("No such file"), "ENOENT: {out:?}");
    node.assert_nothing_held("after ADD into a missing netns");

    // The kernel's cause, and what the path is instead of a netns.
    let file = format!("/tmp/tw-cb-notns-{}", std::process::id());
    std::fs::write(&file, b"").expect("write a plain file");
    struct Remove<'a>(&'a str);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _remove = Remove(&file);
    let under_file = format!("{file}/x");
    for (netns, why) in [
        (file.as_str(), "not a network namespace (a regular file)"),
        (under_file.as_str(), "Not a directory"),
        ("/proc/self/ns/mnt", "it is a mnt namespace"),
    ] {
        let out = plugin.run(
            Vars {
                netns: Some(netns),
                ..add_vars
            },
            config.as_bytes(),
        );
        assert_eq!(out.error_code(), 4, "CNI_NETNS={netns}: {out:?}");
        assert!(out.error_msg().contains(why), "CNI_NETNS={netns}: {out:?}");
    }
    node.assert_nothing_held("after ADD into things that are no netns");

    pod.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "other",
    ]);
    let out = plugin.run(add_vars, config.as_bytes());
    assert_eq!(out.error_code(), 100, "ifname already taken: {out:?}");
    assert!(out.error_msg().contains("already exists"), "{out:?}");
    assert_eq!(links(&pod), ["other", "eth0"], "only the veth pair is left");
    node.assert_nothing_held("after ADD over a taken ifname");

    let down = plugin.with_socket(Path::new("/tmp/tw-cb-nobody.sock"));
    let out = down.run(add_vars, down.config("1.1.0").to_string().as_bytes());
    assert_eq!(out.error_code(), 11, "daemon not running: {out:?}");
    assert!(out.error_msg().contains("not running"), "{out:?}");
    let out = down.del("1.1.0", "cb0", Some(&path), "eth0");
    assert_eq!(
        out.error_code(),
        11,
        "DEL with the daemon not running: {out:?}"
    );
}

#[test]
fn gc_keeps_the_valid_attachments_and_releases_the_others() {
    if !require_root() {
        return;
    }
    let node = Node::start("cg", "10.98.47", &[]);
    let pods: Vec<Netns> = (0..3)
        .map(|i| Netns::new(node.prefix(), &format!("p{i}")))
        .collect();
    for (i, pod) in pods.iter().enumerate() {
        node.plugin
            .add("1.1.0", &format!("cg{i}"), &pod.path(), "eth0");
    }
    let mut config = node.plugin.config("1.1.0");
    config["cni.dev/valid-attachments"] = json!([{"containerID":"cg1","ifname":"eth0"}]);
    node.plugin
        .run(
            Vars {
                command: "GC",
                ..Vars::default()
            },
            config.to_string().as_bytes(),
        )
        .assert_ok("GC");
    let kept: Vec<String> = node.pods().into_iter().map(|p| p.container_id).collect();
    assert_eq!(kept, ["cg1"]);
    assert_eq!(settled_links(&pods[0], &[]), Vec::<String>::new());
    assert_eq!(links(&pods[1]), ["eth0"]);
    assert_eq!(settled_links(&pods[2], &[]), Vec::<String>::new());

    let mut old = node.plugin.config("1.0.0");
    old["cni.dev/valid-attachments"] = json!([]);
    let out = node.plugin.run(
        Vars {
            command: "GC",
            ..Vars::default()
        },
        old.to_string().as_bytes(),
    );
    assert_eq!(out.error_code(), 1, "GC before 1.1.0: {out:?}");
    assert_eq!(node.pods().len(), 1);
}

#[test]
fn status_and_version() {
    if !require_root() {
        return;
    }
    let node = Node::start("cs", "10.98.48", &[]);
    let status = |plugin: &Plugin, version: &str| {
        plugin.run(
            Vars {
                command: "STATUS",
                ..Vars::default()
            },
            plugin.config(version).to_string().as_bytes(),
        )
    };
    let out = status(&node.plugin, "1.1.0");
    out.assert_ok("STATUS with the daemon up");
    assert_eq!(out.stdout, "", "STATUS prints nothing when ready");
    let out = status(&node.plugin, "1.0.0");
    assert_eq!(out.error_code(), 1, "STATUS before 1.1.0: {out:?}");
    let down = node.plugin.with_socket(Path::new("/tmp/tw-cs-nobody.sock"));
    let out = status(&down, "1.1.0");
    assert_eq!(out.error_code(), 50, "STATUS with no daemon: {out:?}");

    let out = node.plugin.run(
        Vars {
            command: "VERSION",
            ..Vars::default()
        },
        br#"{"cniVersion":"1.0.0"}"#,
    );
    out.assert_ok("VERSION");
    assert_eq!(
        out.json(),
        json!({"cniVersion":"1.0.0","supportedVersions":VERSIONS})
    );
}

#[test]
fn a_dual_stack_result_has_both_families() {
    if !require_root() {
        return;
    }
    let node = Node::start(
        "c6",
        "10.98.49",
        &[
            "--cluster-cidr",
            "10.244.0.0/16",
            "--cluster-cidr",
            "fd00:10::/48",
        ],
    );
    let pod = Netns::new(node.prefix(), "p");
    let result = node.plugin.add("1.1.0", "c60", &pod.path(), "eth0");
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 2, "{result}");
    assert_eq!(ips[1]["gateway"], "fe80::1", "{result}");
    assert!(
        ips[1]["address"].as_str().unwrap().ends_with("/128"),
        "{result}"
    );
    assert_eq!(
        result["routes"],
        json!([{"dst":"0.0.0.0/0"},{"dst":"::/0"}])
    );
    node.plugin
        .check("1.1.0", "c60", &pod.path(), "eth0", &result)
        .assert_ok("CHECK dual-stack");
    node.plugin
        .del("1.1.0", "c60", Some(&pod.path()), "eth0")
        .assert_ok("DEL");
    node.assert_nothing_held("after DEL");
}

//! Services through tweed with kube-proxy's own rules on the nodes: the
//! iptables-mode and nftables-mode rules kube-proxy writes for four Services
//! (tests/fixtures/kube-proxy/, with where their shape comes from) are loaded
//! into both node namespaces, and pods use them as in a cluster:
//!
//! - a ClusterIP with its backend on the client's node, one with its backend
//!   on the other node (checked TCP transfers; the backend sees the client
//!   pod's own address);
//! - hairpin: a pod reaching itself through its own Service (which
//!   kube-proxy masquerades);
//! - NodePorts from a host outside the cluster: `externalTrafficPolicy:
//!   Cluster` (the backend sees the node) and `Local` (it sees the client);
//! - DNS through a ClusterIP: a query to dnsmasq in a pod on the other node;
//! - NetworkPolicy: the backend's ingress policy allows or denies by the
//!   client pod's labels, and a pod's egress policy applies to the Service's
//!   backend (the daemons run with `--service-cidr`).
//!
//! Replies must return through the node that translated the request, or the
//! client answers them with a reset (and kube-proxy's `INVALID` drop bites).
//!
//! A second cluster runs native Services (`--native-services`) beside
//! kube-proxy's iptables rules, as while a cluster moves from one to the
//! other: pods' ClusterIPs and the NodePorts from outside are the
//! dataplane's, and kube-proxy's rules count none of their packets.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use tweed_suite::cluster::{ClusterPod, NodeSpec, start_together};
use tweed_suite::daemon::Daemon;
use tweed_suite::dns::{self, Dnsmasq};
use tweed_suite::etcd::Etcd;
use tweed_suite::manifests;
use tweed_suite::netns::Netns;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{Listener, tcp_connect, tcp_transfer_via, wait_ping};
use tweed_suite::underlay::Underlay;

const PREFIX: &str = "kpx";
const BASE: &str = "10.97.24";
const CLUSTER: &str = "10.244.0.0/16";
const SERVICES: &str = "10.120.0.0/16";
const VIP_DNS: Ipv4Addr = Ipv4Addr::new(10, 120, 0, 10);
const VIP_API: Ipv4Addr = Ipv4Addr::new(10, 120, 0, 11);
const VIP_DB: Ipv4Addr = Ipv4Addr::new(10, 120, 0, 12);
const VIP_SELF: Ipv4Addr = Ipv4Addr::new(10, 120, 0, 13);
const FIRST: Duration = Duration::from_secs(20);
const TRANSFER: Duration = Duration::from_secs(20);
/// How long a connection that policy denies is given before it counts as blocked.
const BLOCKED: Duration = Duration::from_secs(3);
const BYTES: usize = 200_000;
/// The name dnsmasq answers, with the API Service's address.
const DNS_NAME: &str = "api.tweed.test";

/// The policies: only `app=web` may reach `app=api` (TCP 8080); `app=other`
/// may send only to `app=db` on TCP 80 (checked after kube-proxy's DNAT).
const POLICIES: &str = include_str!("fixtures/service-policies.yaml");

/// The pods of the test and where they run.
struct Pods {
    web: ClusterPod,
    other: ClusterPod,
    api: ClusterPod,
    hairpin: ClusterPod,
    db: ClusterPod,
    dns: ClusterPod,
}

/// A fixture with its placeholders filled for node `node` (`hosts_db`: db's
/// endpoint is local there).
fn render(fixture: &str, pods: &Pods, node_ip: IpAddr, hosts_db: bool) -> String {
    let (keep, drop) = if hosts_db {
        ("#local-db ", "#remote-db ")
    } else {
        ("#remote-db ", "#local-db ")
    };
    fixture
        .lines()
        .filter(|l| !l.starts_with(drop))
        .map(|l| l.strip_prefix(keep).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{CLUSTER}", CLUSTER)
        .replace("{SERVICES}", SERVICES)
        .replace("{NODE_IP}", &node_ip.to_string())
        .replace("{VIP_API}", &VIP_API.to_string())
        .replace("{VIP_DB}", &VIP_DB.to_string())
        .replace("{VIP_SELF}", &VIP_SELF.to_string())
        .replace("{VIP_DNS}", &VIP_DNS.to_string())
        .replace("{API}", &pods.api.ip().to_string())
        .replace("{DB}", &pods.db.ip().to_string())
        .replace("{SELF}", &pods.hairpin.ip().to_string())
        .replace("{DNS}", &pods.dns.ip().to_string())
        + "\n"
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kube-proxy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `program` in `ns` with `input` on stdin; panics with its stderr on failure.
fn load(ns: &Netns, program: &str, args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = ns
        .command(program, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program} in {}: {e}", ns.name()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the rules");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}\n{input}",
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes kube-proxy's iptables rules (iptables-nft keeps them in the
/// `ip nat` and `ip filter` tables) and its nftables table.
fn flush_kube_proxy(ns: &Netns) {
    for table in ["nat", "filter"] {
        let _ = ns.exec("nft", &["delete", "table", "ip", table]);
    }
    let _ = ns.exec("nft", &["delete", "table", "ip", "kube-proxy"]);
}

/// Transfers from `client` to `dial`, the sink in `server` on `listen`;
/// returns the source address the sink saw.
fn transfer(
    what: &str,
    client: &Netns,
    dial: (IpAddr, u16),
    server: &ClusterPod,
    port: u16,
) -> IpAddr {
    tcp_transfer_via(
        client,
        dial,
        &server.netns,
        (server.ip(), port),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn resolve(pod: &ClusterPod) -> String {
    let out = dns::query(&pod.netns, IpAddr::V4(VIP_DNS), DNS_NAME);
    assert!(
        out.success(),
        "DNS through {VIP_DNS} from {}: {out}",
        pod.info.name
    );
    out.stdout.trim().to_owned()
}

/// Every check of the Services, whichever mode wrote the rules.
fn check_services(mode: &str, underlay: &Underlay, daemons: &[Daemon], pods: &Pods) {
    let api = (IpAddr::V4(VIP_API), 80);
    // A ClusterIP whose backend is on the client's node.
    let seen = transfer(
        &format!("{mode}: web → api's ClusterIP"),
        &pods.web.netns,
        api,
        &pods.api,
        8080,
    );
    assert_eq!(
        seen,
        pods.web.ip(),
        "{mode}: api sees the client pod itself"
    );
    // One whose backend is on the other node.
    let seen = transfer(
        &format!("{mode}: web → db's ClusterIP (other node)"),
        &pods.web.netns,
        (IpAddr::V4(VIP_DB), 80),
        &pods.db,
        80,
    );
    assert_eq!(seen, pods.web.ip(), "{mode}: db sees the client pod itself");
    // Hairpin: the pod through its own Service, masqueraded by kube-proxy.
    transfer(
        &format!("{mode}: hairpin → its own ClusterIP"),
        &pods.hairpin.netns,
        (IpAddr::V4(VIP_SELF), 80),
        &pods.hairpin,
        9090,
    );
    // NodePorts from a host outside the cluster (the underlay's switch).
    let outside = underlay.switch();
    let seen = transfer(
        &format!("{mode}: outside → node0's NodePort 30080 (Cluster)"),
        outside,
        (underlay.node_ip(0), 30080),
        &pods.api,
        8080,
    );
    assert_ne!(
        seen,
        underlay.switch_ip(),
        "{mode}: externalTrafficPolicy Cluster masquerades the client"
    );
    let seen = transfer(
        &format!("{mode}: outside → node1's NodePort 30081 (Local)"),
        outside,
        (underlay.node_ip(1), 30081),
        &pods.db,
        80,
    );
    assert_eq!(
        seen,
        underlay.switch_ip(),
        "{mode}: externalTrafficPolicy Local keeps the client's address"
    );
    // DNS through a ClusterIP, the server on the other node.
    assert_eq!(
        resolve(&pods.web),
        VIP_API.to_string(),
        "{mode}: web resolves {DNS_NAME}"
    );
    // Policy: api admits only app=web; other may send only to app=db.
    let _api = Listener::start(&pods.api.netns, pods.api.ip(), 8080);
    let _self = Listener::start(&pods.hairpin.netns, pods.hairpin.ip(), 9090);
    assert!(
        tcp_connect(&pods.web.netns, api.0, api.1, FIRST),
        "{mode}: web may reach api through its Service"
    );
    assert!(
        !tcp_connect(&pods.other.netns, api.0, api.1, BLOCKED),
        "{mode}: api's ingress policy denies other through the Service"
    );
    assert!(
        !tcp_connect(&pods.other.netns, IpAddr::V4(VIP_SELF), 80, BLOCKED),
        "{mode}: other's egress policy applies to the Service's backend (self is not db)"
    );
    assert!(
        tcp_connect(&pods.web.netns, IpAddr::V4(VIP_SELF), 80, FIRST),
        "{mode}: web, without egress policy, reaches self's Service"
    );
    let _db = Listener::start(&pods.db.netns, pods.db.ip(), 80);
    assert!(
        tcp_connect(&pods.other.netns, IpAddr::V4(VIP_DB), 80, FIRST),
        "{mode}: other's egress policy allows db, judged after the translation"
    );
    let _ = daemons;
}

/// Two nodes on etcd (started with `extra` flags besides the Service
/// range) and the test's pods, reaching each other. Fields drop in order:
/// the pods, the daemons, etcd, the namespaces.
struct Cluster {
    pods: Pods,
    daemons: Vec<Daemon>,
    _etcd: Etcd,
    underlay: Underlay,
}

fn start_cluster(prefix: &str, base: &str, extra: &[&str]) -> Cluster {
    let underlay = Underlay::new(prefix, base, 2);
    let etcd = Etcd::start(underlay.switch(), underlay.switch_ip());
    let args: Vec<String> = [
        "--etcd-endpoints",
        etcd.endpoint(),
        "--workers",
        "1",
        "--service-cidr",
        SERVICES,
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect();
    let specs = [
        NodeSpec {
            netns: underlay.node(0),
            name: "node0",
            args: &args,
        },
        NodeSpec {
            netns: underlay.node(1),
            name: "node1",
            args: &args,
        },
    ];
    let daemons = start_together(&specs);
    let pods = Pods {
        web: ClusterPod::add_labelled(&daemons[0], prefix, "web", &[("app", "web")]),
        other: ClusterPod::add_labelled(&daemons[0], prefix, "other", &[("app", "other")]),
        api: ClusterPod::add_labelled(&daemons[0], prefix, "api", &[("app", "api")]),
        hairpin: ClusterPod::add_labelled(&daemons[0], prefix, "self", &[("app", "self")]),
        db: ClusterPod::add_labelled(&daemons[1], prefix, "db", &[("app", "db")]),
        dns: ClusterPod::add_labelled(&daemons[1], prefix, "dns", &[("app", "dns")]),
    };
    assert!(
        wait_ping(&pods.web.netns, pods.db.ip(), FIRST),
        "the pods reach each other across the overlay"
    );
    Cluster {
        pods,
        daemons,
        _etcd: etcd,
        underlay,
    }
}

/// Loads kube-proxy's rules from fixture `name` into both nodes, each
/// rendered for its node, with `program` and `args`.
fn load_kube_proxy(underlay: &Underlay, pods: &Pods, name: &str, program: &str, args: &[&str]) {
    let text = fixture(name);
    for i in 0..2 {
        let rules = render(&text, pods, underlay.node_ip(i), i == 1);
        load(underlay.node(i), program, args, &rules);
    }
}

/// Removes kube-proxy's rules from both nodes.
fn flush_kube_proxy_everywhere(underlay: &Underlay) {
    for i in 0..2 {
        flush_kube_proxy(underlay.node(i));
    }
}

/// dnsmasq in the dns pod, answering [`DNS_NAME`] with api's ClusterIP.
fn dns_server(pods: &Pods) -> Dnsmasq {
    Dnsmasq::start(
        &pods.dns.netns,
        pods.dns.ip(),
        DNS_NAME,
        IpAddr::V4(VIP_API),
    )
}

#[test]
fn services_work_with_kube_proxys_iptables_and_nftables_rules() {
    if !require_root() {
        return;
    }
    let cluster = start_cluster(PREFIX, BASE, &[]);
    let (underlay, daemons, pods) = (&cluster.underlay, &cluster.daemons, &cluster.pods);
    daemons[0].apply("policy", POLICIES);
    let _dnsmasq = dns_server(pods);

    load_kube_proxy(
        underlay,
        pods,
        "iptables.rules",
        "iptables-restore",
        &["--noflush"],
    );
    check_services("iptables", underlay, daemons, pods);
    flush_kube_proxy_everywhere(underlay);

    load_kube_proxy(underlay, pods, "nftables.nft", "nft", &["-f", "-"]);
    check_services("nftables", underlay, daemons, pods);
    flush_kube_proxy_everywhere(underlay);
    spoofed_pod_sources_from_outside_are_dropped(underlay, pods);
}

/// The Services of the fixtures as `tweed service apply` takes them: api
/// (NodePort 30080, `externalTrafficPolicy: Cluster`), db (NodePort 30081,
/// `Local`) and dns.
fn native_manifests(pods: &Pods) -> String {
    let service = |name, vip, (protocol, port, target), spec, node_port, backend, node| {
        manifests::Service {
            name,
            vip,
            protocol,
            port,
            target,
            spec,
            node_port,
            backends: &[(backend, node)],
        }
        .manifest()
    };
    [
        service(
            "api",
            VIP_API,
            ("TCP", 80, 8080),
            &["type: NodePort", "externalTrafficPolicy: Cluster"],
            Some(30080),
            pods.api.ip(),
            "node0",
        ),
        service(
            "db",
            VIP_DB,
            ("TCP", 80, 80),
            &["type: NodePort", "externalTrafficPolicy: Local"],
            Some(30081),
            pods.db.ip(),
            "node1",
        ),
        service(
            "dns",
            VIP_DNS,
            ("UDP", 53, 53),
            &["type: ClusterIP"],
            None,
            pods.dns.ip(),
            "node1",
        ),
    ]
    .concat()
}

/// Packets the kernel's rule in nat `chain` whose line holds all of
/// `needles` matched.
fn kernel_rule_packets(ns: &Netns, chain: &str, needles: &[&str]) -> u64 {
    let out = ns.exec("iptables", &["-t", "nat", "-L", chain, "-v", "-x", "-n"]);
    assert!(out.status.success(), "list {chain}");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule in {chain} with {needles:?} in\n{text}"))
}

/// Native Services beside kube-proxy: the same Services in tweed
/// (`--native-services`) and as kube-proxy's iptables rules, as while a
/// cluster moves from one to the other. Pods' connections to ClusterIPs are
/// balanced by the dataplane (the kernel's ClusterIP rule never matches), DNS
/// goes through a native ClusterIP, and a host outside the cluster reaches
/// both NodePorts through tweed too: the node steers them into the dataplane
/// ahead of its netfilter, so kube-proxy's NodePort rules never match either.
#[test]
fn native_services_beside_kube_proxy() {
    const PREFIX: &str = "kpn";
    if !require_root() {
        return;
    }
    let cluster = start_cluster(PREFIX, "10.97.26", &["--native-services"]);
    let (underlay, daemons, pods) = (&cluster.underlay, &cluster.daemons, &cluster.pods);
    daemons[0].apply("service", &native_manifests(pods));
    let _dnsmasq = dns_server(pods);
    load_kube_proxy(
        underlay,
        pods,
        "iptables.rules",
        "iptables-restore",
        &["--noflush"],
    );

    let api = (IpAddr::V4(VIP_API), 80);
    let seen = transfer(
        "native: web → api's ClusterIP",
        &pods.web.netns,
        api,
        &pods.api,
        8080,
    );
    assert_eq!(seen, pods.web.ip(), "api sees the client pod itself");
    let seen = transfer(
        "native: web → db's ClusterIP (other node)",
        &pods.web.netns,
        (IpAddr::V4(VIP_DB), 80),
        &pods.db,
        80,
    );
    assert_eq!(seen, pods.web.ip(), "db sees the client pod itself");
    assert_eq!(
        resolve(&pods.web),
        VIP_API.to_string(),
        "web resolves {DNS_NAME} through the native DNS ClusterIP"
    );
    let vip = VIP_API.to_string();
    assert_eq!(
        kernel_rule_packets(underlay.node(0), "KUBE-SERVICES", &["KUBE-SVC-API", &vip]),
        0,
        "the dataplane translated web's connections: the kernel's ClusterIP rule saw none"
    );

    let outside = underlay.switch();
    let seen = transfer(
        "native: outside → node0's NodePort 30080 (Cluster)",
        outside,
        (underlay.node_ip(0), 30080),
        &pods.api,
        8080,
    );
    assert_ne!(
        seen,
        underlay.switch_ip(),
        "externalTrafficPolicy Cluster masquerades the client"
    );
    let seen = transfer(
        "native: outside → node1's NodePort 30081 (Local)",
        outside,
        (underlay.node_ip(1), 30081),
        &pods.db,
        80,
    );
    assert_eq!(
        seen,
        underlay.switch_ip(),
        "externalTrafficPolicy Local keeps the client's address"
    );
    for (node, port) in [(0, "dpt:30080"), (1, "dpt:30081")] {
        assert_eq!(
            kernel_rule_packets(underlay.node(node), "KUBE-NODEPORTS", &[port]),
            0,
            "tweed steered node{node}'s NodePort: kube-proxy's rule saw none"
        );
    }
    flush_kube_proxy_everywhere(underlay);
}

/// Connects from SRC to DST:PORT once, ignoring the outcome. Args: SRC DST PORT.
const SPOOFED_CONNECT: &str = r#"
import socket, sys
for _ in range(3):
    s = socket.socket()
    s.bind((sys.argv[1], 0))
    s.settimeout(0.5)
    try:
        s.connect((sys.argv[2], int(sys.argv[3])))
    except OSError:
        pass
    s.close()
"#;

/// TCP segments `ns`'s kernel received (`Tcp: InSegs`, per namespace).
fn tcp_in_segments(ns: &Netns) -> u64 {
    let out = ns.exec("cat", &["/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().expect("Tcp header"),
        tcp.next().expect("Tcp values"),
    );
    let i = names
        .split_whitespace()
        .position(|n| n == "InSegs")
        .expect("InSegs");
    values
        .split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

/// A host on the underlay that claims web's address and routes api through
/// node0: api's policy admits web, so only the node's anti-spoofing (cluster
/// sources come from tweed0 alone) keeps these SYNs from api.
fn spoofed_pod_sources_from_outside_are_dropped(underlay: &Underlay, pods: &Pods) {
    let outside = underlay.switch();
    let web = format!("{}/32", pods.web.ip());
    let api = format!("{}/32", pods.api.ip());
    let node0 = underlay.node_ip(0).to_string();
    outside.ip(&["addr", "add", &web, "dev", "lo"]);
    outside.ip(&["route", "add", &api, "via", &node0]);
    let before = tcp_in_segments(&pods.api.netns);
    let out = outside.exec_bounded(
        "python3",
        &[
            "-c",
            SPOOFED_CONNECT,
            &pods.web.ip().to_string(),
            &pods.api.ip().to_string(),
            "8080",
        ],
        Duration::from_secs(10),
    );
    let after = tcp_in_segments(&pods.api.netns);
    outside.ip(&["route", "del", &api, "via", &node0]);
    outside.ip(&["addr", "del", &web, "dev", "lo"]);
    assert!(out.success(), "the spoofing connects ran: {out}");
    assert_eq!(
        after, before,
        "no segment with web's forged address from outside reaches api"
    );
}

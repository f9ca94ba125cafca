//! Native Services: two nodes run with `--native-services` and no
//! kube-proxy rules at all; Services and EndpointSlices are applied with
//! `tweed service apply` on one node and reach the other through etcd.
//!
//! - a ClusterIP with its backend on the client's node and one with its
//!   backend on the other node (checked TCP transfers; the backend sees the
//!   client pod's own address);
//! - DNS through a ClusterIP: a UDP query to dnsmasq on the other node;
//! - the node itself (its own network namespace) reaching ClusterIPs, DNS
//!   included, with backends on both nodes;
//! - spread over two backends, and ClientIP affinity keeping a client on one;
//! - hairpin: a pod reaching itself through its own Service;
//! - an EndpointSlice changed under open connections: those to the backend
//!   that left end (reset), those to the other go on, and new connections go
//!   to the backend left;
//! - no endpoints: refused at once (ICMP port unreachable, counted);
//! - NetworkPolicy judges the backend and sees the real client;
//! - `tweed trace` shows the translation; deleting a Service stops it.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Stdio};
use std::time::Duration;

use tweed_suite::cluster::{ClusterPod, NodeSpec, start_together};
use tweed_suite::daemon::Daemon;
use tweed_suite::dns::{self, Dnsmasq};
use tweed_suite::etcd::Etcd;
use tweed_suite::manifests;
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{Listener, tcp_connect, tcp_transfer_via, wait_ping};
use tweed_suite::underlay::Underlay;

const PREFIX: &str = "nsv";
const BASE: &str = "10.97.25";
/// The Service range: every VIP below is in it.
const SERVICE_CIDR: &str = "10.121.0.0/16";
const VIP_API: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 11);
const VIP_DB: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 12);
const VIP_DNS: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 10);
const VIP_WHO: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 20);
const VIP_STICKY: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 21);
const VIP_EMPTY: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 30);
const VIP_SELF: Ipv4Addr = Ipv4Addr::new(10, 121, 0, 31);
const FIRST: Duration = Duration::from_secs(20);
const TRANSFER: Duration = Duration::from_secs(20);
const BLOCKED: Duration = Duration::from_secs(3);
const BYTES: usize = 200_000;
const DNS_NAME: &str = "api.tweed.test";
/// The port the "who" servers answer on.
const WHO_PORT: u16 = 7070;

/// Answers every TCP connection on ADDR:PORT with a line holding NAME, and
/// every line it then receives with another; prints "ready" once
/// listening. Args: ADDR PORT NAME.
const WHO_SERVER: &str = r#"
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
print("ready", flush=True)
name = (sys.argv[3] + "\n").encode()
def serve(c):
    try:
        c.sendall(name)
        f = c.makefile("rb")
        for _ in f:
            c.sendall(name)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Connects COUNT times to ADDR:PORT (a new source port each time) and
/// prints the name each answer carries. Args: ADDR PORT COUNT.
const WHO_ASK: &str = r#"
import socket, sys
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    print(s.makefile("r").readline().strip())
    s.close()
"#;

/// Opens COUNT connections to ADDR:PORT and prints the backends' names on
/// one line; after a line on stdin, sends a line on each and prints, per
/// connection, "NAME ok" (answered) or "NAME broken". Args: ADDR PORT COUNT.
const WHO_HOLD: &str = r#"
import socket, sys
conns = []
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    f = s.makefile("r")
    conns.append((s, f, f.readline().strip()))
print(" ".join(n for _, _, n in conns), flush=True)
sys.stdin.readline()
for s, f, n in conns:
    try:
        s.settimeout(3)
        s.sendall(b"ping\n")
        ok = f.readline().strip() == n
    except OSError:
        ok = False
    print(n, "ok" if ok else "broken", flush=True)
"#;

/// Connects once to ADDR:PORT and prints how it ended: "refused",
/// "timeout" or "connected". Args: ADDR PORT.
const CONNECT_OUTCOME: &str = r#"
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
"#;

/// Only `app=web` may reach `app=api` (TCP 8080); `app=other` may send
/// only to `app=db` on TCP 80.
const POLICIES: &str = include_str!("fixtures/service-policies.yaml");

struct Pods {
    web: ClusterPod,
    other: ClusterPod,
    api: ClusterPod,
    db: ClusterPod,
    dns: ClusterPod,
}

/// A ClusterIP Service `name` on `vip` (`proto` `port` → `target`), and its
/// EndpointSlice with `backends` (address, node).
fn service(
    name: &str,
    vip: Ipv4Addr,
    (protocol, port, target): (&str, u16, u16),
    affinity: &str,
    backends: &[(IpAddr, &str)],
) -> String {
    manifests::Service {
        name,
        vip,
        protocol,
        port,
        target,
        spec: &[&format!("sessionAffinity: {affinity}")],
        node_port: None,
        backends,
    }
    .manifest()
}

/// A "who" server in a pod; killed on drop.
struct Who(Child);

impl Who {
    fn start(pod: &ClusterPod, name: &str) -> Self {
        let mut child = pod.netns.spawn(
            "python3",
            &[
                "-c",
                WHO_SERVER,
                &pod.ip().to_string(),
                &WHO_PORT.to_string(),
                name,
            ],
        );
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the who server starts");
        assert_eq!(line.trim(), "ready", "who server {name}");
        Self(child)
    }
}

impl Drop for Who {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The names that answer `count` connections from `client` to `vip`.
fn ask(client: &Netns, vip: Ipv4Addr, count: usize) -> Vec<String> {
    let out = client.exec_bounded(
        "python3",
        &[
            "-c",
            WHO_ASK,
            &vip.to_string(),
            &WHO_PORT.to_string(),
            &count.to_string(),
        ],
        Duration::from_secs(60),
    );
    assert!(out.success(), "asking {vip}: {out}");
    out.stdout.lines().map(str::to_owned).collect()
}

/// How many of `reason` drops `daemon`'s dataplane counted.
fn drops(daemon: &Daemon, reason: &str) -> u64 {
    let out = daemon.cli(&["stats", "-o", "json"]);
    assert!(out.status.success(), "stats");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    stats["drops"][reason].as_u64().unwrap_or(0)
}

/// Two nodes with `--native-services` and etcd on the underlay's switch;
/// dropped in that order.
struct Cluster {
    daemons: Vec<Daemon>,
    _etcd: Etcd,
    underlay: Underlay,
}

fn start_cluster(prefix: &str, base: &str) -> Cluster {
    let underlay = Underlay::new(prefix, base, 2);
    let etcd = Etcd::start(underlay.switch(), underlay.switch_ip());
    let args: Vec<String> = [
        "--etcd-endpoints",
        etcd.endpoint(),
        "--workers",
        "1",
        "--native-services",
        "--service-cidr",
        SERVICE_CIDR,
    ]
    .iter()
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
    Cluster {
        daemons: start_together(&specs),
        _etcd: etcd,
        underlay,
    }
}

#[test]
fn native_services_balance_in_the_dataplane_without_kube_proxy() {
    if !require_root() {
        return;
    }
    let cluster = start_cluster(PREFIX, BASE);
    let daemons = &cluster.daemons;
    let status = daemons[0].cli(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("services:      native"),
        "tweed status says the dataplane balances Services"
    );
    let pods = Pods {
        web: ClusterPod::add_labelled(&daemons[0], PREFIX, "web", &[("app", "web")]),
        other: ClusterPod::add_labelled(&daemons[0], PREFIX, "other", &[("app", "other")]),
        api: ClusterPod::add_labelled(&daemons[0], PREFIX, "api", &[("app", "api")]),
        db: ClusterPod::add_labelled(&daemons[1], PREFIX, "db", &[("app", "db")]),
        dns: ClusterPod::add_labelled(&daemons[1], PREFIX, "dns", &[("app", "dns")]),
    };
    assert!(
        wait_ping(&pods.web.netns, pods.db.ip(), FIRST),
        "the pods reach each other across the overlay"
    );
    let manifests = [
        service(
            "api",
            VIP_API,
            ("TCP", 80, 8080),
            "None",
            &[(pods.api.ip(), "node0")],
        ),
        service(
            "db",
            VIP_DB,
            ("TCP", 80, 80),
            "None",
            &[(pods.db.ip(), "node1")],
        ),
        service(
            "dns",
            VIP_DNS,
            ("UDP", 53, 53),
            "None",
            &[(pods.dns.ip(), "node1")],
        ),
        service(
            "who",
            VIP_WHO,
            ("TCP", WHO_PORT, WHO_PORT),
            "None",
            &[(pods.api.ip(), "node0"), (pods.db.ip(), "node1")],
        ),
        service(
            "sticky",
            VIP_STICKY,
            ("TCP", WHO_PORT, WHO_PORT),
            "ClientIP",
            &[(pods.api.ip(), "node0"), (pods.db.ip(), "node1")],
        ),
        service("empty", VIP_EMPTY, ("TCP", 80, 80), "None", &[]),
        service(
            "self",
            VIP_SELF,
            ("TCP", WHO_PORT, WHO_PORT),
            "None",
            &[(pods.api.ip(), "node0")],
        ),
    ]
    .concat();
    let applied = daemons[0].apply("service", &manifests);
    assert!(applied.contains("service default/api applied"), "{applied}");
    // node1 learns them through etcd.
    let listed = poll::wait(FIRST, || {
        let out = daemons[1].cli(&["service", "list"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP_DB}:80/tcp"))
    });
    assert!(listed, "node1 lists the Services applied on node0");

    // A ClusterIP whose backend is on the client's node.
    let seen = tcp_transfer_via(
        &pods.web.netns,
        (IpAddr::V4(VIP_API), 80),
        &pods.api.netns,
        (pods.api.ip(), 8080),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| panic!("web → api's ClusterIP: {e}"));
    assert_eq!(seen, pods.web.ip(), "api sees the client pod itself");
    // One whose backend is on the other node.
    let seen = tcp_transfer_via(
        &pods.web.netns,
        (IpAddr::V4(VIP_DB), 80),
        &pods.db.netns,
        (pods.db.ip(), 80),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| panic!("web → db's ClusterIP (other node): {e}"));
    assert_eq!(seen, pods.web.ip(), "db sees the client pod itself");

    // DNS through a ClusterIP, the server on the other node.
    let dnsmasq = Dnsmasq::start(
        &pods.dns.netns,
        pods.dns.ip(),
        DNS_NAME,
        IpAddr::V4(VIP_API),
    );
    let out = dns::query(&pods.web.netns, IpAddr::V4(VIP_DNS), DNS_NAME);
    assert!(out.success(), "DNS through {VIP_DNS}: {out}");
    assert_eq!(out.stdout.trim(), VIP_API.to_string());

    // The node's own processes (and hostNetwork pods) use ClusterIPs too:
    // the Service range is routed into the dataplane, which balances it.
    let node0 = cluster.underlay.node(0);
    let out = dns::query(node0, IpAddr::V4(VIP_DNS), DNS_NAME);
    assert!(out.success(), "DNS from node0 through {VIP_DNS}: {out}");
    assert_eq!(out.stdout.trim(), VIP_API.to_string());
    drop(dnsmasq);
    let node0_subnet = tweed_suite::cluster::subnet_v4(&daemons[0]);
    for (vip, pod, port, what) in [
        (VIP_API, &pods.api, 8080, "same node"),
        (VIP_DB, &pods.db, 80, "other node"),
    ] {
        let seen = tcp_transfer_via(
            node0,
            (IpAddr::V4(vip), 80),
            &pod.netns,
            (pod.ip(), port),
            BYTES,
            TRANSFER,
        )
        .unwrap_or_else(|e| panic!("node0 → {vip} (backend on the {what}): {e}"));
        assert!(
            node0_subnet.contains(&seen),
            "the backend on the {what} sees node0's overlay address, not {seen}"
        );
    }

    // Spread, affinity, and an endpoint leaving.
    let _who_api = Who::start(&pods.api, "api");
    let _who_db = Who::start(&pods.db, "db");
    let spread = ask(&pods.web.netns, VIP_WHO, 24);
    assert!(
        spread.iter().any(|n| n == "api") && spread.iter().any(|n| n == "db"),
        "24 connections spread over both backends: {spread:?}"
    );
    // Hairpin: api through a Service whose only endpoint is api itself.
    assert_eq!(
        ask(&pods.api.netns, VIP_SELF, 3),
        ["api", "api", "api"],
        "a pod reaches itself through its own Service"
    );
    let sticky = ask(&pods.web.netns, VIP_STICKY, 12);
    assert!(
        sticky.iter().all(|n| *n == sticky[0]),
        "ClientIP affinity keeps web on one backend: {sticky:?}"
    );
    // Connections open on both backends; then api leaves the Service.
    let mut hold = pods
        .web
        .netns
        .command(
            "python3",
            &[
                "-c",
                WHO_HOLD,
                &VIP_WHO.to_string(),
                &WHO_PORT.to_string(),
                "12",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the holding client");
    let mut held = BufReader::new(hold.stdout.take().expect("stdout"));
    let mut names = String::new();
    held.read_line(&mut names)
        .expect("the open connections' backends");
    let names: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
    assert!(
        names.len() == 12 && names.contains(&"api".to_owned()) && names.contains(&"db".to_owned()),
        "12 open connections on both backends: {names:?}"
    );
    daemons[0].apply(
        "service",
        &service(
            "who",
            VIP_WHO,
            ("TCP", WHO_PORT, WHO_PORT),
            "None",
            &[(pods.db.ip(), "node1")],
        ),
    );
    hold.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("tell the client to go on");
    let outcomes: Vec<String> = held.lines().map_while(Result::ok).collect();
    let _ = hold.wait();
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("{n} {}", if n == "db" { "ok" } else { "broken" }))
        .collect();
    assert_eq!(
        outcomes, expected,
        "open connections to db go on, those to api (gone) end"
    );
    let after = ask(&pods.web.netns, VIP_WHO, 12);
    assert!(
        after.iter().all(|n| n == "db"),
        "api left the Service: every new connection goes to db: {after:?}"
    );

    // No endpoints: refused at once, as kube-proxy rejects.
    let before = drops(&daemons[0], "service_no_endpoint");
    let out = pods.web.netns.exec_bounded(
        "python3",
        &["-c", CONNECT_OUTCOME, &VIP_EMPTY.to_string(), "80"],
        Duration::from_secs(15),
    );
    assert_eq!(
        out.stdout.trim(),
        "refused",
        "a Service without endpoints: {out}"
    );
    // The workers publish their counters every 100 ms.
    assert!(
        poll::wait(FIRST, || drops(&daemons[0], "service_no_endpoint") > before),
        "the refusal is counted"
    );

    // Trace shows the translation.
    let trace = daemons[0].cli(&[
        "trace",
        "--from",
        "default/web",
        "--to",
        &VIP_API.to_string(),
        "--proto",
        "tcp",
        "--port",
        "80",
    ]);
    let text = String::from_utf8_lossy(&trace.stdout);
    assert!(
        text.contains("service") && text.contains(&format!("{}:8080", pods.api.ip())),
        "trace shows the backend: {text}{}",
        String::from_utf8_lossy(&trace.stderr)
    );

    // Policy: api admits only app=web; other may send only to app=db.
    daemons[0].apply("policy", POLICIES);
    let api = (IpAddr::V4(VIP_API), 80);
    let _api = Listener::start(&pods.api.netns, pods.api.ip(), 8080);
    assert!(
        tcp_connect(&pods.web.netns, api.0, api.1, FIRST),
        "web may reach api through its Service"
    );
    assert!(
        !tcp_connect(&pods.other.netns, api.0, api.1, BLOCKED),
        "api's ingress policy denies other through the Service"
    );
    let _db = Listener::start(&pods.db.netns, pods.db.ip(), 80);
    assert!(
        tcp_connect(&pods.other.netns, IpAddr::V4(VIP_DB), 80, FIRST),
        "other's egress policy allows db, judged after the translation"
    );

    // Deleting a Service stops its translation on every node.
    let out = daemons[0].cli(&["service", "delete", "default/db"]);
    assert!(out.status.success(), "service delete");
    let gone = poll::wait(FIRST, || {
        !tcp_connect(
            &pods.web.netns,
            IpAddr::V4(VIP_DB),
            80,
            Duration::from_secs(1),
        )
    });
    assert!(gone, "db's ClusterIP no longer answers once deleted");
    drop(pods);
    drop(cluster);
}

/// A Service of type NodePort on `vip` (TCP `port` → `target`, node port
/// `node_port`) with `spec` lines besides, and its endpoints.
fn node_port_service(
    name: &str,
    vip: Ipv4Addr,
    (port, target, node_port): (u16, u16, u16),
    spec: &[&str],
    backends: &[(IpAddr, &str)],
) -> String {
    let mut lines = vec!["type: NodePort"];
    lines.extend_from_slice(spec);
    manifests::Service {
        name,
        vip,
        protocol: "TCP",
        port,
        target,
        spec: &lines,
        node_port: Some(node_port),
        backends,
    }
    .manifest()
}

/// The status and body `ns` gets for a GET of `url` (`None`: no answer).
fn health_check(ns: &Netns, url: &str) -> Option<(u16, String)> {
    let out = ns.exec_bounded(
        "curl",
        &["-sS", "--max-time", "5", "-w", "\n%{http_code}", url],
        Duration::from_secs(10),
    );
    let text = out.stdout.trim_end().to_owned();
    let (body, status) = text.rsplit_once('\n')?;
    Some((status.parse().ok()?, body.to_owned()))
}

/// Whether the steering tables are in `ns`.
fn steering_installed(ns: &Netns) -> bool {
    ns.exec_bounded(
        "nft",
        &["list", "table", "netdev", "tweed_steer"],
        Duration::from_secs(10),
    )
    .success()
}

/// NodePorts and externalIPs reached from a host outside the cluster (the
/// underlay's switch), with no kube-proxy: each node steers those packets
/// into its dataplane, which balances them. `externalTrafficPolicy:
/// Cluster` reaches a backend on the other node from the node's own overlay
/// address (its reply returns through the node the client called);
/// `Local` keeps the client's address, and a node without a local endpoint
/// drops; a `Local` load balancer's health check node port answers 200 on
/// the node with its endpoint and 503 on the other, as the cloud's load
/// balancer expects. An externalIP routed to a node works the same way. Deleting a
/// Service gives its NodePort back to the node's stack (refused), and a
/// stopped daemon leaves no steering behind.
#[test]
fn nodeports_and_external_ips_from_outside_are_balanced_without_kube_proxy() {
    const PREFIX: &str = "nsx";
    const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    if !require_root() {
        return;
    }
    let mut cluster = start_cluster(PREFIX, "10.97.27");
    let (underlay, daemons) = (&cluster.underlay, &cluster.daemons);
    let api = ClusterPod::add(&daemons[0], PREFIX, "api");
    let db = ClusterPod::add(&daemons[1], PREFIX, "db");
    assert!(
        wait_ping(&api.netns, db.ip(), FIRST),
        "the pods reach each other across the overlay"
    );
    let manifests = [
        node_port_service(
            "np-cluster",
            Ipv4Addr::new(10, 121, 1, 1),
            (80, 8080, 30080),
            &[],
            &[(db.ip(), "node1")],
        ),
        node_port_service(
            "np-local",
            Ipv4Addr::new(10, 121, 1, 2),
            (80, 80, 30081),
            &["externalTrafficPolicy: Local"],
            &[(db.ip(), "node1")],
        ),
        manifests::Service {
            name: "lb-local",
            vip: Ipv4Addr::new(10, 121, 1, 4),
            protocol: "TCP",
            port: 80,
            target: 80,
            spec: &[
                "type: LoadBalancer",
                "externalTrafficPolicy: Local",
                "healthCheckNodePort: 32000",
            ],
            node_port: Some(30082),
            backends: &[(db.ip(), "node1")],
        }
        .manifest(),
        manifests::Service {
            name: "ext",
            vip: Ipv4Addr::new(10, 121, 1, 3),
            protocol: "TCP",
            port: 8443,
            target: 8080,
            spec: &[&format!("externalIPs: [\"{EXTERNAL_IP}\"]")],
            node_port: None,
            backends: &[(api.ip(), "node0")],
        }
        .manifest(),
    ]
    .concat();
    let applied = daemons[0].apply("service", &manifests);
    assert!(
        applied.contains("service default/np-local applied"),
        "{applied}"
    );
    for (i, daemon) in daemons.iter().enumerate() {
        assert!(
            poll::wait(FIRST, || steering_installed(underlay.node(i))),
            "{} steers its NodePorts into the dataplane",
            daemon.name()
        );
    }
    let outside = underlay.switch();
    let node0_subnet = tweed_suite::cluster::subnet_v4(&daemons[0]);

    let seen = tcp_transfer_via(
        outside,
        (underlay.node_ip(0), 30080),
        &db.netns,
        (db.ip(), 8080),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| {
        panic!("outside → node0's NodePort 30080 (Cluster, backend on node1): {e}")
    });
    assert!(
        node0_subnet.contains(&seen),
        "Cluster policy: the backend sees node0's own address, not {seen}"
    );
    let seen = tcp_transfer_via(
        outside,
        (underlay.node_ip(1), 30081),
        &db.netns,
        (db.ip(), 80),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| panic!("outside → node1's NodePort 30081 (Local): {e}"));
    assert_eq!(
        seen,
        underlay.switch_ip(),
        "Local policy keeps the client's address"
    );
    // The load balancer's health check: node1 has lb-local's endpoint,
    // node0 none.
    for (node, status, endpoints) in [(1, 200, 1), (0, 503, 0)] {
        let url = format!("http://{}:32000/healthz", underlay.node_ip(node));
        let answered = poll::wait(FIRST, || {
            health_check(outside, &url).is_some_and(|(s, _)| s == status)
        });
        let (_, body) = health_check(outside, &url).unwrap_or_default();
        assert!(
            answered,
            "node{node} answers {status} on its health check node port: {body}"
        );
        assert!(
            body.contains(&format!("\"localEndpoints\":{endpoints}")),
            "node{node}: {body}"
        );
    }

    let before = drops(&daemons[0], "service_no_local_endpoint");
    assert!(
        !tcp_connect(outside, underlay.node_ip(0), 30081, BLOCKED),
        "node0 has no local endpoint of a Local NodePort"
    );
    assert!(
        poll::wait(FIRST, || drops(&daemons[0], "service_no_local_endpoint")
            > before),
        "node0's dataplane dropped it (and counted)"
    );

    // An externalIP the outside routes to node0.
    let via = underlay.node_ip(0).to_string();
    outside.ip(&["route", "add", &format!("{EXTERNAL_IP}/32"), "via", &via]);
    let seen = tcp_transfer_via(
        outside,
        (IpAddr::V4(EXTERNAL_IP), 8443),
        &api.netns,
        (api.ip(), 8080),
        BYTES,
        TRANSFER,
    )
    .unwrap_or_else(|e| panic!("outside → externalIP {EXTERNAL_IP}:8443: {e}"));
    assert!(node0_subnet.contains(&seen), "masqueraded to node0: {seen}");

    // A deleted Service's NodePort is the node's stack's again: refused.
    let out = daemons[0].cli(&["service", "delete", "default/np-cluster"]);
    assert!(out.status.success(), "service delete");
    let refused = poll::wait(FIRST, || {
        let out = outside.exec_bounded(
            "python3",
            &["-c", CONNECT_OUTCOME, &via, "30080"],
            Duration::from_secs(15),
        );
        out.stdout.trim() == "refused"
    });
    assert!(refused, "node0's NodePort 30080 is no longer steered");

    drop((api, db));
    assert!(cluster.daemons[0].stop(), "node0 stops cleanly");
    assert!(
        !steering_installed(cluster.underlay.node(0)),
        "a stopped daemon leaves no steering behind"
    );
    drop(cluster);
}

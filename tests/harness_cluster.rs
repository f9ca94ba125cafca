//! The multi-node harness itself: an underlay of node namespaces on a bridge,
//! an etcd in the switch namespace that every node reaches, the namespace
//! guard killing what still runs inside, and the daemon guard (driven by a
//! fake `tweed` until the real daemon exists). After every guard has dropped,
//! no namespace, process or directory is left.

use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tweed_suite::daemon::Daemon;
use tweed_suite::etcd::{CLIENT_PORT, Etcd};
use tweed_suite::netns::{self, Netns};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::process;
use tweed_suite::traffic::wait_ping;
use tweed_suite::underlay::Underlay;

const FIRST: Duration = Duration::from_secs(10);
const GONE: Duration = Duration::from_secs(10);

#[test]
fn underlay_nodes_reach_each_other_and_the_switch() {
    if !require_root() {
        return;
    }
    let underlay = Underlay::new("hu", "10.98.1", 3);
    let names = names(&underlay);
    for i in 0..underlay.len() {
        let node = underlay.node(i);
        assert_eq!(
            underlay.node_ip(i).to_string(),
            format!("10.98.1.{}", i + 1)
        );
        let routes = node.ip_json(&["route", "show", "default"]);
        assert_eq!(
            routes[0]["dev"], "eth0",
            "node {i}'s default route: {routes}"
        );
        assert_eq!(
            routes[0]["gateway"], "10.98.1.254",
            "node {i}'s gateway: {routes}"
        );
        assert!(
            wait_ping(node, underlay.switch_ip(), FIRST),
            "node {i} → switch"
        );
        for j in (0..underlay.len()).filter(|j| *j != i) {
            assert!(
                wait_ping(node, underlay.node_ip(j), FIRST),
                "node {i} → node {j}"
            );
        }
    }
    drop(underlay);
    assert_no_netns(&names);
}

#[test]
fn etcd_in_the_switch_serves_every_node() {
    if !require_root() {
        return;
    }
    let underlay = Underlay::new("he", "10.98.2", 3);
    let names = names(&underlay);
    let etcd = Etcd::start(underlay.switch(), underlay.switch_ip());
    assert_eq!(etcd.endpoint(), "http://10.98.2.254:2379");
    let switch_ip = underlay.switch_ip();
    for i in 0..underlay.len() {
        assert!(
            tcp_open(underlay.node(i), switch_ip, CLIENT_PORT),
            "node {i} connects to etcd's client port"
        );
    }
    // The probe can fail: nothing listens one port up.
    assert!(
        !tcp_open(underlay.node(0), switch_ip, CLIENT_PORT + 2),
        "nothing listens on {switch_ip}:{}",
        CLIENT_PORT + 2
    );

    // What one node writes, the others read (etcd's v3 JSON gateway).
    kv(
        underlay.node(0),
        etcd.endpoint(),
        &["put", "/harness/k", "from-n0"],
    );
    for i in 1..underlay.len() {
        let got = kv(underlay.node(i), etcd.endpoint(), &["get", "/harness/k"]);
        assert_eq!(got.trim(), "from-n0", "node {i} reads node 0's write");
    }

    let pid = etcd.pid().expect("etcd runs");
    let dir = etcd.dir().to_path_buf();
    assert!(dir.join("data").is_dir(), "etcd's data dir exists");
    drop(etcd);
    assert!(!alive(pid), "etcd ({pid}) is gone after drop");
    assert!(!dir.exists(), "{} is removed", dir.display());
    drop(underlay);
    assert_no_netns(&names);
}

#[test]
fn netns_drop_kills_what_still_runs_inside() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("hk", "ns");
    let name = ns.name().to_owned();
    let mut child = ns.spawn("sleep", &["1000"]);
    // An orphan: its parent shell exits at once, nobody owns it.
    let out = ns.exec("bash", &["-c", "sleep 1000 >/dev/null 2>&1 & echo $!"]);
    let orphan: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bash printed the orphan's pid");
    assert!(alive(orphan), "the orphan runs");
    let inside = netns::pids(&name);
    assert!(
        inside.contains(&child.id()) && inside.contains(&orphan),
        "both run in {name}: {inside:?}"
    );

    drop(ns);
    let status = process::wait_deadline(&mut child, GONE).expect("the child was killed");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the child died of SIGKILL: {status}"
    );
    assert!(
        poll::wait(GONE, || !alive(orphan)),
        "the orphan ({orphan}) was killed"
    );
    assert_no_netns(&[name]);
}

/// Stands in for `tweed` until the real daemon exists: `daemon` binds
/// `run/control.sock`, starts a `sleep` as its "dataplane" (pid in
/// `run/dataplane.pid`) and exits on SIGTERM without stopping it; with
/// `--exit-now` it exits at once. Any other command prints its arguments
/// and its network namespace as JSON, or fails with `boom` for `fail`.
const FAKE_TWEED: &str = r#"#!/usr/bin/env python3
import json, os, signal, socket, subprocess, sys
args = sys.argv[1:]
def flag(name):
    return args[args.index(name) + 1]
if args[:1] == ["daemon"]:
    run, state = flag("--run-dir"), flag("--state-dir")
    print("fake daemon %s starting" % flag("--node-name"), flush=True)
    if "--exit-now" in args:
        print("bye", flush=True)
        sys.exit(3)
    os.makedirs(run, exist_ok=True)
    os.makedirs(state, exist_ok=True)
    dataplane = subprocess.Popen(["sleep", "1000"])
    with open(os.path.join(run, "dataplane.pid"), "w") as f:
        f.write("%d\n" % dataplane.pid)
    path = os.path.join(run, "control.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    def stop(*_):
        print("fake daemon stopping", flush=True)
        os.unlink(path)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    while True:
        c, _ = s.accept()
        c.close()
run, rest = flag("--run-dir"), args[2:]
if rest[:1] == ["fail"]:
    print("boom", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"args": rest, "run_dir": run, "netns": os.readlink("/proc/self/ns/net")}))
"#;

#[test]
fn daemon_guard_starts_restarts_and_cleans_up_a_fake_tweed() {
    if !require_root() {
        return;
    }
    let fake = FakeBin::new("hd");
    let ns = Netns::new("hd", "n0");
    let args = vec![
        "--etcd-endpoints".to_owned(),
        "http://10.0.0.1:2379".to_owned(),
    ];
    let mut daemon = Daemon::start_binary(fake.path(), &ns, "node0", &args);
    let dir = daemon.dir().to_path_buf();
    assert_eq!(
        dir,
        PathBuf::from(format!("/tmp/tw-hd-node0-{}", std::process::id()))
    );
    assert!(daemon.state_dir().is_dir(), "the daemon got --state-dir");
    let first_dp = daemon.dataplane_pid().expect("dataplane.pid is written");
    assert!(
        netns::pids(ns.name()).contains(&first_dp),
        "the dataplane runs in the node's netns"
    );

    // The CLI runs in the node's netns against the daemon's run dir.
    let json = daemon.cli_json(&["status"]);
    assert_eq!(json["args"], serde_json::json!(["status", "-o", "json"]));
    assert_eq!(json["run_dir"], daemon.run_dir().display().to_string());
    let inode = std::fs::metadata(ns.path()).expect("the netns file").ino();
    assert_eq!(
        json["netns"],
        format!("net:[{inode}]"),
        "the CLI ran in {}",
        ns.name()
    );
    let failed = daemon.cli(&["fail"]);
    assert!(!failed.status.success(), "a failing CLI command reports it");
    assert!(String::from_utf8_lossy(&failed.stderr).contains("boom"));

    // A crash leaves the dataplane running; a restart comes back up.
    let first = daemon.pid().expect("the daemon runs");
    daemon.kill9();
    assert!(!alive(first), "the daemon ({first}) is dead after kill -9");
    assert!(alive(first_dp), "its dataplane ({first_dp}) outlives it");
    daemon.restart();
    assert_ne!(daemon.pid(), Some(first), "a new daemon process");
    let second_dp = daemon.dataplane_pid().expect("dataplane.pid is rewritten");
    assert!(daemon.stop(), "the daemon exits on SIGTERM");
    assert!(
        daemon.log().contains("fake daemon stopping"),
        "{}",
        daemon.log()
    );
    daemon.restart();
    assert_eq!(
        daemon.log().matches("fake daemon node0 starting").count(),
        3,
        "three starts in one log: {}",
        daemon.log()
    );

    // Drop: the daemon and both orphaned dataplanes are gone, DIR too; the
    // netns (the caller's) stays.
    let last = daemon.pid().expect("the daemon runs");
    drop(daemon);
    for pid in [last, first_dp, second_dp] {
        assert!(!alive(pid), "{pid} is gone after the daemon's drop");
    }
    assert!(
        netns::pids(ns.name()).is_empty(),
        "nothing runs in {}",
        ns.name()
    );
    assert!(!dir.exists(), "{} is removed", dir.display());
    let name = ns.name().to_owned();
    drop(ns);
    assert_no_netns(&[name]);
}

#[test]
fn daemon_guard_reports_a_daemon_that_exits_during_start_up() {
    if !require_root() {
        return;
    }
    let fake = FakeBin::new("hx");
    let ns = Netns::new("hx", "n0");
    let args = vec!["--exit-now".to_owned()];
    let panic = std::panic::catch_unwind(|| {
        Daemon::start_binary(fake.path(), &ns, "node0", &args);
    })
    .expect_err("start-up fails");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("exited during start-up") && message.contains("bye"),
        "the panic names the exit and carries the log: {message}"
    );
    let dir = PathBuf::from(format!("/tmp/tw-hx-node0-{}", std::process::id()));
    assert!(!dir.exists(), "{} is removed", dir.display());
}

/// The fake `tweed` in its own directory, removed on drop.
struct FakeBin(PathBuf);

impl FakeBin {
    fn new(prefix: &str) -> Self {
        let dir = PathBuf::from(format!("/tmp/tw-{prefix}-fake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the fake's dir");
        let path = dir.join("tweed");
        std::fs::write(&path, FAKE_TWEED).expect("write the fake tweed");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the fake executable");
        Self(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("tweed")
    }
}

impl Drop for FakeBin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes or reads one key through etcd's v3 JSON gateway. Args: URL put
/// KEY VALUE, or URL get KEY (prints the value).
const KV: &str = r#"
import base64, json, sys, urllib.request
url, op, key = sys.argv[1], sys.argv[2], sys.argv[3]
b64 = lambda s: base64.b64encode(s.encode()).decode()
body = {"key": b64(key)}
if op == "put":
    body["value"] = b64(sys.argv[4])
req = urllib.request.Request(url + ("/v3/kv/put" if op == "put" else "/v3/kv/range"),
                             data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=5) as r:
    reply = json.load(r)
if op == "get":
    kvs = reply.get("kvs", [])
    print(base64.b64decode(kvs[0]["value"]).decode() if kvs else "")
"#;

/// Runs [`KV`] in `ns`; panics with its output if it fails.
fn kv(ns: &Netns, endpoint: &str, args: &[&str]) -> String {
    let mut full = vec!["-c", KV, endpoint];
    full.extend_from_slice(args);
    let out = ns.exec("python3", &full);
    assert!(
        out.status.success(),
        "etcd {args:?} from {}: {}",
        ns.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP connection from `ns` to `ip:port` is accepted.
fn tcp_open(ns: &Netns, ip: IpAddr, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}");
    ns.exec_bounded("bash", &["-c", &script], Duration::from_secs(10))
        .success()
}

/// The namespaces of an underlay: the switch and every node.
fn names(underlay: &Underlay) -> Vec<String> {
    let mut names = vec![underlay.switch().name().to_owned()];
    names.extend((0..underlay.len()).map(|i| underlay.node(i).name().to_owned()));
    names
}

/// None of `names` is in `ip netns list`.
fn assert_no_netns(names: &[String]) {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&out.stdout);
    for name in names {
        assert!(
            !list.split_whitespace().any(|w| w == name),
            "{name} is still listed:\n{list}"
        );
    }
}

/// `pid` is a live process (not gone, not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) STATE ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

//! Faults that must not wedge a node, with `tweed daemon` and its embedded
//! store: a dataplane that hangs (SIGSTOP) is replaced as one that died is,
//! and `status` answers meanwhile; a full disk under the store fails ADDs
//! with a clear error, shows in `status` and the metrics, and heals by
//! itself when space returns; a dataplane restarted from a stale state file
//! adopts the tap its lost port had, so the pod talks again, DEL removes it
//! and a new ADD works; the node's state files are private.
//!
//! Each test has its own prefix and underlay (10.97.61-64); every namespace,
//! process, mount and directory goes with its guard, also on failure.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tweed_control::api::ErrorKind;
use tweed_suite::control::{
    self, ControlPod, SingleNode, metric_values, pod_add, pod_del, refusal, settled_links, status,
};
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::tmpfs::Tmpfs;
use tweed_suite::traffic::wait_ping;

const FIRST: Duration = Duration::from_secs(15);
/// How long the node may take to heal: generous, the test only cares that
/// it happens unattended.
const HEAL: Duration = Duration::from_secs(45);
const METRICS: &str = "127.0.0.1:9101";

fn signal(signal: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {signal} {pid}");
}

fn pods_ping(a: &ControlPod, b: &ControlPod, timeout: Duration) -> bool {
    wait_ping(&a.netns, b.ipv4(), timeout) && wait_ping(&b.netns, a.ipv4(), timeout)
}

/// `GET /metrics` from inside the node.
fn metrics(node: &SingleNode) -> String {
    let url = format!("http://{METRICS}/metrics");
    let out = node.node().exec("curl", &["-sS", "--max-time", "10", &url]);
    assert!(
        out.status.success(),
        "curl the metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `status` as JSON: read field by field, so that the test reads any
/// daemon's answer (and fails on what it says, not on how).
fn status_json(client: &mut tweed_control::api::Client) -> serde_json::Value {
    let line = client
        .call_raw(r#"{"version":1,"request":{"status":{}}}"#)
        .expect("status answers");
    let reply: serde_json::Value = serde_json::from_str(&line).expect("a JSON reply");
    reply["ok"].clone()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_stopped_dataplane_is_replaced_and_status_answers_meanwhile() {
    if !require_root() {
        return;
    }
    let prefix = "cfs";
    let node = SingleNode::start(prefix, "10.97.61", &[]);
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let b = ControlPod::attach(&mut client, prefix, "b");
    assert!(pods_ping(&a, &b, FIRST), "a ↔ b before");
    let old = node.daemon().dataplane_pid().expect("the dataplane's pid");

    signal("-STOP", old);
    let stopped = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut saw_down = false;
    let mut last = serde_json::Value::Null;
    let replaced = poll::wait(HEAL, || {
        let asked = Instant::now();
        let st = status_json(&mut client);
        slowest = slowest.max(asked.elapsed());
        let dp = &st["dataplane"];
        saw_down |= dp["up"] == false;
        let done = dp["up"] == true
            && dp["restarts"].as_u64().is_some_and(|r| r >= 1)
            && dp["pid"].as_u64().is_some_and(|p| p != u64::from(old));
        last = st;
        done
    });
    assert!(
        replaced,
        "a stopped dataplane is replaced by a new one: {last}"
    );
    eprintln!(
        "SIGSTOP → status up with a new pid after {:?}; the slowest status meanwhile took {slowest:?}",
        stopped.elapsed()
    );
    assert!(saw_down, "status said down while it hung");
    assert_eq!(last["dataplane"]["ports"], 2, "both ports are back: {last}");
    let gone = poll::wait(FIRST, || {
        std::fs::read_to_string(format!("/proc/{old}/stat")).map_or(true, |s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    });
    assert!(gone, "the stopped dataplane {old} was killed");
    assert!(pods_ping(&a, &b, HEAL), "a ↔ b through the new dataplane");
}

#[test]
fn a_full_store_disk_fails_adds_clearly_and_heals_when_space_returns() {
    if !require_root() {
        return;
    }
    let prefix = "cfd";
    let disk = Tmpfs::mount(prefix, 8 << 20);
    let node = SingleNode::start_with_state(
        prefix,
        "10.97.62",
        disk.path(),
        &["--metrics-addr", METRICS],
    );
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");

    disk.fill();
    // Records grow the database until a write needs space it cannot get
    // (redb may first reuse pages freed inside its file).
    let netns: Vec<Netns> = (0..20)
        .map(|i| Netns::new(prefix, &format!("b{i}")))
        .collect();
    let labels: Vec<(String, String)> = (0..60)
        .map(|i| (format!("label-{i:02}"), "v".repeat(60)))
        .collect();
    let mut refused = None;
    for (i, ns) in netns.iter().enumerate() {
        let mut add = control::add_request(&format!("{prefix}-b{i}"), ns, &format!("b{i}"));
        add.labels = labels.iter().cloned().collect();
        match pod_add(&mut client, &add) {
            Ok(_) => continue,
            Err(e) => {
                refused = Some(refusal(Err::<(), _>(e)));
                break;
            }
        }
    }
    let refused = refused.expect("an ADD fails once the disk is full");
    assert_eq!(refused.kind, ErrorKind::Unavailable, "{refused:?}");
    assert!(
        refused.message.contains("No space left on device"),
        "the error carries its cause: {}",
        refused.message
    );
    let st = status(&mut client);
    assert!(!st.store_health.up, "status: the store fails: {st:?}");
    let why = st.store_health.error.clone().unwrap_or_default();
    assert!(
        why.contains("No space left on device"),
        "status says why: {why}"
    );
    let text = node.daemon().cli(&["status"]);
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(
        table.contains("failing") && table.contains("store error:"),
        "tweed status shows it:\n{table}"
    );
    assert_eq!(
        metric_values(&metrics(&node), "tweed_store_up"),
        vec![0.0],
        "the metric says so"
    );

    disk.free();
    let last = netns.last().expect("a netns");
    let add = control::add_request(&format!("{prefix}-again"), last, "again");
    let again = pod_add(&mut client, &add).expect("the first ADD after space returns works");
    let st = status(&mut client);
    assert!(st.store_health.up, "the store works again: {st:?}");
    assert!(st.store_health.failures >= 1, "{st:?}");
    assert_eq!(metric_values(&metrics(&node), "tweed_store_up"), vec![1.0]);
    let released = pod_del(&mut client, &again.container_id, None);
    assert_eq!(released.len(), 1, "DEL works too");
    assert!(wait_ping(
        &a.netns,
        control::node_address(&st.node.subnets[0]),
        FIRST
    ));
}

#[test]
fn the_nodes_state_files_and_sockets_are_private() {
    if !require_root() {
        return;
    }
    let prefix = "cfp";
    let node = SingleNode::start(prefix, "10.97.64", &[]);
    let mut client = node.client();
    let _a = ControlPod::attach(&mut client, prefix, "a");
    let state = node.daemon().state_dir();
    let run = node.daemon().run_dir();
    for path in [
        state.join("state.redb"),
        state.join("node.json"),
        state.join("dataplane-state.json"),
        run.join("control.sock"),
        run.join("dataplane.sock"),
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn a_dataplane_restarted_from_a_stale_state_file_adopts_the_lost_tap() {
    if !require_root() {
        return;
    }
    let prefix = "cfa";
    let node = SingleNode::start(prefix, "10.97.63", &[]);
    let mut client = node.client();
    let a = ControlPod::attach(&mut client, prefix, "a");
    let state_file = node.daemon().state_dir().join("dataplane-state.json");
    let stale = std::fs::read(&state_file).expect("the dataplane's state file");
    let b = ControlPod::attach(&mut client, prefix, "b");
    assert!(pods_ping(&a, &b, FIRST), "a ↔ b before");

    // What a crash between creating b's tap and saving would leave.
    std::fs::write(&state_file, &stale).expect("put the stale file back");
    let old = node.daemon().dataplane_pid().expect("the dataplane's pid");
    signal("-KILL", old);

    // The daemon starts a new dataplane, which does not know b's port; its
    // resync asks for it, and the new dataplane adopts b's tap.
    assert!(pods_ping(&a, &b, HEAL), "a ↔ b again, nobody acting");
    assert_eq!(
        control::links(&b.netns),
        [control::IFNAME],
        "one interface in b"
    );

    let released = pod_del(&mut client, &b.info.container_id, None);
    assert_eq!(released.len(), 1);
    assert!(
        settled_links(&b.netns, &[]).is_empty(),
        "DEL removes the adopted tap"
    );
    let add = control::add_request(&b.info.container_id, &b.netns, "b");
    let again = pod_add(&mut client, &add).expect("a new ADD in that netns works");
    control::wait_addresses(&b.netns, &again);
    assert!(
        wait_ping(&a.netns, again.ipv4.expect("an address").into(), FIRST),
        "a → the new b"
    );
}

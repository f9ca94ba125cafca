//! tweed under containerd (Debian 12's 1.6) with `ctr run --cni`: the
//! conflist `tweed install-cni` writes, an imported busybox image, ADD,
//! traffic (container <-> node, container <-> container, a checked TCP
//! transfer), and DEL when the task exits (ctr runs it after a foreground
//! `run`). containerd's root, state, config and sockets are the test's own
//! (`tweed_suite::containerd`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use tweed_suite::containerd::{Containerd, IMAGE, NAMESPACE};
use tweed_suite::daemon::Daemon;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::process;
use tweed_suite::underlay::Underlay;

/// Removes the test's directory (plugin, conflist) last.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A foreground `ctr run --cni`, killed (and its task with it) on drop.
struct Run<'a> {
    ctr: &'a Containerd,
    name: &'static str,
    child: Option<Child>,
}

impl Run<'_> {
    /// Kills the task and waits for ctr to exit (after its CNI DEL).
    fn stop(&mut self) -> process::Bounded {
        let _ = self.ctr.run(&["tasks", "kill", "-s", "KILL", self.name]);
        process::finish(self.child.take().expect("running"), Duration::from_secs(60))
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A killed task's `ctr run` exits 137; only a hung one is news.
            let out = self.stop();
            if out.timed_out() {
                eprintln!("cleanup: ctr run {}: {out}", self.name);
            }
        }
    }
}

/// A container serving a 1 MiB random `/www/blob` over HTTP.
fn web<'a>(ctr: &'a Containerd, name: &'static str) -> Run<'a> {
    let child = ctr.spawn(&[
        "run",
        "--cni",
        "--rm",
        IMAGE,
        name,
        "sh",
        "-c",
        "dd if=/dev/urandom of=/www/blob bs=1024 count=1024 2>/dev/null; \
         exec httpd -f -p 80 -h /www",
    ]);
    Run {
        ctr,
        name,
        child: Some(child),
    }
}

/// The pod of container `name` in `tweed pods -o json`: its address.
fn pod_ip(daemon: &Daemon, name: &str) -> Option<IpAddr> {
    let id = format!("{NAMESPACE}-{name}");
    let pods = daemon.cli_json(&["pods"]);
    let list = pods.as_array().or_else(|| pods["pods"].as_array())?.clone();
    list.iter()
        .find(|p| p["container_id"] == id.as_str())
        .and_then(|p| p["ipv4"].as_str()?.parse().ok())
}

fn exec(ctr: &Containerd, name: &str, id: &str, cmd: &[&str]) -> String {
    let mut args = vec!["tasks", "exec", "--exec-id", id, name];
    args.extend(cmd);
    ctr.ok(&args)
}

#[test]
fn containerd_ctr_run_cni_attaches_and_detaches() {
    if !require_root() {
        return;
    }
    for (bin, package) in [
        ("/usr/bin/containerd", "containerd"),
        ("/usr/bin/ctr", "containerd"),
        ("/usr/sbin/runc", "runc"),
        ("/bin/busybox", "busybox-static"),
        ("/usr/bin/curl", "curl"),
    ] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install {package} (.ci/install-deps does)"
        );
    }
    let underlay = Underlay::new("cr", "10.98.72", 1);
    let node = underlay.node(0);
    let daemon = Daemon::start(node, "node0", &[]);
    let dir = PathBuf::from(format!("/tmp/tw-cr-containerd-{}", std::process::id()));
    let _dir = RemoveDir(dir.clone());
    let (bin_dir, conf_dir) = daemon.install_cni(&dir);
    let ctr = Containerd::new(&dir.join("containerd"), node, &conf_dir, &bin_dir);

    let mut a = web(&ctr, "ct-a");
    let b = web(&ctr, "ct-b");
    let ip = |name| {
        poll::until(Duration::from_secs(60), || pod_ip(&daemon, name))
            .unwrap_or_else(|| panic!("{name} never got a pod: {:?}", daemon.cli_json(&["pods"])))
    };
    let (ip_a, ip_b) = (ip("ct-a"), ip("ct-b"));
    let ready = poll::wait(Duration::from_secs(20), || {
        ctr.run(&[
            "tasks",
            "exec",
            "--exec-id",
            "t",
            "ct-a",
            "test",
            "-s",
            "/www/blob",
        ])
        .success()
    });
    assert!(ready, "ct-a never wrote its blob");

    // container -> node, container <-> container, node -> container (checked).
    let node_ip = underlay.node_ip(0).to_string();
    exec(
        &ctr,
        "ct-a",
        "p1",
        &["ping", "-c", "2", "-W", "5", &node_ip],
    );
    exec(
        &ctr,
        "ct-b",
        "p2",
        &["ping", "-c", "2", "-W", "5", &ip_a.to_string()],
    );
    let want = exec(&ctr, "ct-a", "m1", &["md5sum", "/www/blob"]);
    let want = want
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let got = exec(
        &ctr,
        "ct-b",
        "w1",
        &[
            "sh",
            "-c",
            &format!("wget -q -O - http://{ip_a}/blob | md5sum"),
        ],
    );
    assert_eq!(got.split_whitespace().next(), Some(want.as_str()), "b <- a");
    let out = process::run(
        &mut node.command(
            "sh",
            &[
                "-c",
                &format!("curl -sf --max-time 20 http://{ip_b}/blob | md5sum"),
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(out.success(), "curl from the node: {out}");

    // DEL when the task ends: no pod, no libcni cache entry.
    let out = a.stop();
    assert!(
        out.status.is_some(),
        "ctr run ct-a did not exit after its task was killed: {out}"
    );
    assert_eq!(pod_ip(&daemon, "ct-a"), None, "ct-a's pod is released");
    drop(b);
    assert_eq!(pod_ip(&daemon, "ct-b"), None, "ct-b's pod is released");
    let cache = ctr.cni_cache().join("results");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "libcni cache entries left: {left:?}");
}

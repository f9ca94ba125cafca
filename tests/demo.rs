//! `tweed demo` end to end, run as a user runs it: the whole two-node demo
//! on etcd, `--keep` then `--down` on the embedded store (etcd "missing"),
//! and a Ctrl-C in the middle. After each, nothing of the demo may be left:
//! no namespace, no process, no file.
//!
//! Each test gives the demo a name of its own (`--name`), so its namespaces
//! (`NAME-*`) and files (`/run/NAME`) never meet another test's. A guard
//! runs `tweed demo --down --name NAME` on drop, so a failing test cleans up
//! too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tweed_suite::bins;
use tweed_suite::privileged::require_root;
use tweed_suite::process;

/// How long one demo may take (it takes seconds; the machine may be busy).
const DEMO_TIMEOUT: Duration = Duration::from_secs(300);

/// Removes demo `name` on drop, whatever the test did.
struct DownOnDrop(&'static str);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = process::run(
            Command::new(bins::bin("tweed")).args(["demo", "--down", "--name", self.0]),
            DEMO_TIMEOUT,
        );
    }
}

fn demo(args: &[&str]) -> process::Bounded {
    process::run(
        Command::new(bins::bin("tweed")).arg("demo").args(args),
        DEMO_TIMEOUT,
    )
}

/// Panics if anything of demo `name` is left: a namespace, its directory,
/// or a process whose command line names it.
fn assert_nothing_left(name: &str) {
    let prefix = format!("{name}-");
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(namespaces.is_empty(), "namespaces left: {namespaces:?}");
    let dir = Path::new("/run").join(name);
    assert!(!dir.exists(), "{} is left", dir.display());
    let marker = format!("/run/{name}/");
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(procs.is_empty(), "processes left: {procs:?}");
}

/// The matrix rows (lines with a pod key or a node name in front) of the
/// section that starts with `heading`.
fn matrix_rows<'a>(stdout: &'a str, heading: &str) -> Vec<&'a str> {
    stdout
        .split("\n==> ")
        .find(|section| section.starts_with(heading))
        .unwrap_or_else(|| panic!("no section {heading:?} in:\n{stdout}"))
        .lines()
        .skip(2)
        .take_while(|l| !l.trim_start().starts_with("pod→"))
        .collect()
}

#[test]
fn the_two_node_demo_shows_what_the_policy_blocks_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    assert!(
        Path::new("/usr/bin/etcd").is_file(),
        "/usr/bin/etcd is not installed (apt-get install etcd-server)"
    );
    const NAME: &str = "twt-demo-full";
    let _down = DownOnDrop(NAME);
    let run = demo(&["--name", NAME]);
    assert!(run.success(), "the demo failed: {run}");
    let out = &run.stdout;
    assert!(!out.contains("UNEXPECTED"), "{out}");
    assert_eq!(out.matches("every probe as expected").count(), 2, "{out}");
    assert!(
        out.contains("store:         etcd http://10.99.0.1:2379"),
        "{out}"
    );
    assert!(
        out.contains("node-a reaches node-b over the overlay"),
        "{out}"
    );
    assert_eq!(out.matches("(ADD took").count(), 4, "{out}");

    let before = matrix_rows(out, "Connectivity before any policy");
    assert_eq!(before.len(), 6, "4 pods and 2 nodes: {before:?}");
    assert!(before.iter().all(|r| !r.contains("blocked")), "{before:?}");
    let after = matrix_rows(out, "Connectivity with the policy");
    let blocked: Vec<&str> = after
        .iter()
        .filter(|r| r.contains("blocked"))
        .map(|r| r.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        blocked,
        ["frontend/web-1", "frontend/web-2", "node-a"],
        "{after:?}"
    );
    assert!(
        out.contains("across nodes    8 probes: 7 open, 1 blocked"),
        "{out}"
    );
    assert!(
        out.contains("verdict: dropped (policy_ingress)"),
        "the trace shows the drop: {out}"
    );
    assert!(
        out.contains("isolated for ingress by networkpolicy backend/db-from-api-only"),
        "explain names the policy: {out}"
    );
    assert!(
        out.contains("detached 4 pods (CNI DEL), stopped 5 processes"),
        "{out}"
    );
    assert_nothing_left(NAME);
}

#[test]
fn without_etcd_the_demo_runs_one_node_and_keep_then_down_removes_it() {
    if !require_root() {
        return;
    }
    const NAME: &str = "twt-demo-keep";
    let _down = DownOnDrop(NAME);
    let run = demo(&["--name", NAME, "--keep", "--etcd", "/nonexistent/etcd"]);
    assert!(run.success(), "the demo failed: {run}");
    assert!(
        run.stdout.contains("apt-get install etcd-server"),
        "says how to get the two-node demo: {run}"
    );
    assert!(
        run.stdout
            .contains("tweed demo --down --name twt-demo-keep"),
        "{run}"
    );
    assert!(!run.stdout.contains("Tearing down"), "{run}");

    // It is still there, and the printed commands work.
    let pods = process::run(
        Command::new(bins::bin("tweed")).args([
            "--run-dir",
            &format!("/run/{NAME}/node-a"),
            "pods",
            "-o",
            "json",
        ]),
        Duration::from_secs(30),
    );
    assert!(pods.success(), "{pods}");
    let json: serde_json::Value = serde_json::from_str(&pods.stdout).expect("pods JSON");
    assert_eq!(json["pods"].as_array().map(Vec::len), Some(4), "{json}");
    assert!(Path::new(&format!("/run/netns/{NAME}-backend-db-1")).exists());

    let down = demo(&["--down", "--name", NAME]);
    assert!(down.success(), "{down}");
    assert!(
        down.stdout.contains("detached 4 pods (CNI DEL)")
            && down.stdout.contains("removed 5 network namespaces"),
        "{down}"
    );
    assert_nothing_left(NAME);
    let again = demo(&["--down", "--name", NAME]);
    assert!(
        again.success() && again.stdout.contains("no demo named"),
        "{again}"
    );
}

#[test]
fn ctrl_c_in_the_middle_tears_everything_down() {
    if !require_root() {
        return;
    }
    const NAME: &str = "twt-demo-int";
    let _down = DownOnDrop(NAME);
    let mut child = Command::new(bins::bin("tweed"))
        .args(["demo", "--name", NAME, "--single-node"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    // Interrupt once the pods are being attached: daemons, dataplanes and
    // namespaces all exist then.
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read the demo's output");
        assert!(n > 0, "the demo ended before attaching pods:\n{seen}");
        seen.push_str(&line);
        if line.contains("ADD took") {
            break;
        }
    }
    let pid = i32::try_from(child.id()).expect("pid");
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let mut rest = String::new();
    for line in stdout.lines() {
        rest.push_str(&line.expect("read"));
        rest.push('\n');
    }
    let status = process::wait_deadline(&mut child, DEMO_TIMEOUT).expect("the demo exits");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(!status.success(), "an interrupted demo fails: {seen}{rest}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(rest.contains("Tearing down"), "{seen}{rest}");
    assert!(
        !rest.contains("Connectivity with the policy"),
        "{seen}{rest}"
    );
    assert_nothing_left(NAME);
}

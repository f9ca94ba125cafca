//! `tweed bench` end to end, on its cheapest lines: one node, TCP with one
//! stream, the connection rate to one of 1,000 Services (against kube-proxy's
//! nftables rules, loaded with `nft -f`) and the 1,000-rule connection rate,
//! one run of one second. It
//! checks the output has those lines with positive numbers for tweed and
//! the kernel, and that nothing of the bench is left: no `tb-PID-`
//! namespace, no work directory, no process. No timing thresholds: the
//! figures are the lead's to read on a quiet machine.

use std::process::{Command, Stdio};
use std::time::Duration;

use tweed_suite::bins;
use tweed_suite::privileged::require_root;
use tweed_suite::process;

/// How long the bench may take (seconds of traffic, plus set-up).
const TIMEOUT: Duration = Duration::from_secs(300);

fn leftovers(prefix: &str) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    let dir = std::env::temp_dir().join(prefix.trim_end_matches('-'));
    if dir.exists() {
        left.push(dir.display().to_string());
    }
    // Every process the bench starts names its work directory or runs in
    // its namespaces; the dataplanes name the directory in their flags.
    let marker = format!("{}/", dir.display());
    left.extend(
        std::fs::read_dir("/proc")
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
            .filter(|c| c.contains(&marker) || c.contains("bench-conn serve")),
    );
    left
}

#[test]
fn the_quick_bench_prints_its_lines_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let child = Command::new(bins::bin("tweed"))
        .args([
            "bench",
            "--quick",
            "--topology",
            "one",
            "--lines",
            "tcp1,svc1k-nft,conn1k",
            "--seconds",
            "1",
            "-o",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tweed bench");
    let prefix = format!("tb-{}-", child.id());
    let run = process::finish(child, TIMEOUT);
    let left = leftovers(&prefix);
    assert!(run.success(), "tweed bench failed: {run}");
    assert!(left.is_empty(), "left behind: {left:?}");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout));
    let lines = doc["lines"].as_array().expect("lines");
    let metrics: Vec<&str> = lines.iter().filter_map(|l| l["metric"].as_str()).collect();
    assert_eq!(
        metrics,
        ["tcp1", "conn1k", "svc1k_nft", "svc_connect1k_nft"],
        "{doc}"
    );
    for l in lines {
        assert_eq!(l["topology"], "one", "{l}");
        for side in ["tweed", "kernel", "ratio"] {
            assert!(l[side].as_f64().is_some_and(|v| v > 0.0), "{side} in {l}");
        }
    }
    assert!(
        run.stderr.contains("[1/6] one node TCP 1 stream: tweed"),
        "{}",
        run.stderr
    );
}

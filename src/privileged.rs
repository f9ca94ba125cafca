//! Whether this process may run the privileged integration tests.
//!
//! The tests create network namespaces, veths and taps, which needs root and
//! `ip` (iproute2). Outside CI a test without them is skipped (it returns
//! early and says so); in CI (`CI=true`) it fails, because a privileged test
//! that silently does not run proves nothing.

use std::path::Path;
use std::process::Command;

/// True when the caller is root and `ip` is installed. Otherwise panics when
/// `CI=true` and returns false elsewhere (after printing why), so a test can
/// start with `if !require_root() { return; }`.
pub fn require_root() -> bool {
    let root = euid_is_root();
    let ip = has_ip();
    if root && ip {
        return true;
    }
    let why = match (root, ip) {
        (false, false) => "needs root and iproute2's `ip`",
        (false, true) => "needs root",
        _ => "needs iproute2's `ip`",
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "this privileged integration test cannot run: it {why}; \
             in CI (CI=true) that is a failure, not a skip"
        );
    }
    eprintln!("skipping: {why}");
    false
}

/// The effective uid is 0, read from `/proc/self/status` (no libc needed).
fn euid_is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    // "Uid:\treal\teffective\tsaved\tfs"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// `ip` runs.
fn has_ip() -> bool {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .any(|p| Path::new(p).exists())
        || Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

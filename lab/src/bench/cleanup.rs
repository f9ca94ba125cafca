//! Removing what a bench made, found from its prefix alone (`tb-PID-`):
//! every process inside its namespaces (the dataplanes, servers and
//! clients all run inside them), the namespaces (their links go with
//! them), and its work directory.

use std::path::Path;
use std::time::Duration;

use crate::netns;

/// How long processes get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The namespaces whose names start with `prefix`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir(netns::NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Removes everything; returns what could not be removed.
pub fn remove(prefix: &str, dir: &Path) -> Vec<String> {
    let names = namespaces(prefix);
    netns::stop_processes(&names, STOP_GRACE);
    let mut problems = Vec::new();
    for n in &names {
        if let Err(e) = netns::remove(n) {
            problems.push(format!("remove namespace {n}: {e}"));
        }
    }
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        problems.push(format!("remove {}: {e}", dir.display()));
    }
    let left = namespaces(prefix);
    if !left.is_empty() {
        problems.push(format!("namespaces left: {}", left.join(" ")));
    }
    problems
}

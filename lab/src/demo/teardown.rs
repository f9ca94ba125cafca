//! Removing a demo: found from its name alone, so the same code cleans up
//! after a finished demo, an interrupted one, one left by `--keep`, and one
//! whose process was killed.

use std::path::Path;
use std::time::Duration;

use super::cni::{self, Sandbox};
use super::topology::Topology;
use crate::netns;

/// How long the daemons and etcd get to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a teardown removed.
#[derive(Debug, Default)]
pub struct Removed {
    /// Pods detached with CNI DEL.
    pub detached: usize,
    /// Processes stopped (SIGTERM).
    pub stopped: usize,
    /// Of those, how many needed SIGKILL.
    pub killed: usize,
    /// Network namespaces removed.
    pub namespaces: usize,
    /// Whether the demo's directory was there and is gone.
    pub dir: bool,
    /// What could not be removed (a leftover).
    pub problems: Vec<String>,
    /// Pods whose CNI DEL failed (their taps and addresses go with their
    /// namespaces and the demo's store all the same).
    pub warnings: Vec<String>,
}

impl Removed {
    /// Whether there was anything to remove.
    pub fn anything(&self) -> bool {
        self.detached + self.stopped + self.namespaces > 0 || self.dir
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        format!(
            "detached {} pods (CNI DEL), stopped {} processes{}, removed {} network namespaces{}",
            self.detached,
            self.stopped,
            if self.killed > 0 {
                format!(" ({} with SIGKILL)", self.killed)
            } else {
                String::new()
            },
            self.namespaces,
            if self.dir { " and its directory" } else { "" },
        )
    }
}

/// Removes everything demo `name` made: detaches its pods through the
/// plugin while their daemons still run, stops every process in its
/// namespaces, removes the namespaces and its directory.
pub fn teardown(name: &str, plugin: &Path) -> Removed {
    let mut removed = Removed::default();
    let two_nodes = netns::path(&Topology::new(name, true).node_netns(1)).exists();
    let t = Topology::new(name, two_nodes);
    for (i, pod) in t.pods.iter().enumerate() {
        let pod_netns = netns::path(&t.pod_netns(i));
        let socket = tweed_api::socket_path(&t.run_dir(pod.node));
        if !pod_netns.exists() || !socket.exists() {
            continue;
        }
        let sandbox = Sandbox {
            container_id: &t.container_id(i),
            netns: &pod_netns,
            namespace: pod.namespace,
            name: pod.name,
            app: pod.app,
        };
        match cni::del(plugin, &socket, sandbox) {
            Ok(()) => removed.detached += 1,
            Err(e) => removed.warnings.push(e),
        }
    }
    // Only the names a demo of this name makes (the two-node set holds the
    // one-node one), never anything else that merely shares the prefix.
    let names: Vec<String> = Topology::new(name, true)
        .all_netns()
        .into_iter()
        .filter(|n| netns::path(n).exists())
        .collect();
    removed.stopped = names.iter().map(|n| netns::pids_in(n).len()).sum();
    removed.killed = netns::stop_processes(&names, STOP_GRACE);
    for n in &names {
        match netns::remove(n) {
            Ok(()) => removed.namespaces += 1,
            Err(e) => removed.problems.push(format!("remove namespace {n}: {e}")),
        }
    }
    let dir = t.dir();
    if dir.exists() {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed.dir = true,
            Err(e) => removed
                .problems
                .push(format!("remove {}: {e}", dir.display())),
        }
    }
    removed
}

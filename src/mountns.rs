//! A private mount namespace kept alive by a holder process, for a runtime
//! whose paths must not touch the machine's (libcni's cache, `/etc/cni/net.d`,
//! `/opt/cni/bin` bind-mounted from a test directory), and whose netns bind
//! mounts stay invisible outside, as under `ip netns exec`.
//!
//! Commands join it with `nsenter --mount=/proc/HOLDER/ns/mnt`. Drop kills
//! the holder; the namespace and its mounts go with the last process in it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll;
use crate::process;

/// The holder of a private mount namespace.
#[derive(Debug)]
pub struct MountNs {
    holder: Child,
}

impl MountNs {
    /// Starts the holder (`unshare --mount --propagation private sleep`).
    pub fn new() -> Self {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let pid = holder.id();
        let ns = MountNs { holder };
        let own = std::fs::read_link("/proc/self/ns/mnt").ok();
        let moved = poll::wait(Duration::from_secs(10), || {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            theirs.is_some() && theirs != own && exe.is_some_and(|e| e.ends_with("sleep"))
        });
        assert!(
            moved,
            "the holder {pid} did not get a mount namespace of its own"
        );
        ns
    }

    /// `--mount=/proc/HOLDER/ns/mnt`, for `nsenter`.
    pub fn nsenter_arg(&self) -> String {
        format!("--mount=/proc/{}/ns/mnt", self.holder.id())
    }

    /// Bind-mounts `source` on `target` inside the namespace (`target` is
    /// created on the machine's filesystem if missing: an empty directory).
    pub fn bind(&self, source: &Path, target: &str) {
        std::fs::create_dir_all(target).unwrap_or_else(|e| panic!("create {target}: {e}"));
        let out = process::run(
            Command::new("nsenter")
                .arg(self.nsenter_arg())
                .args(["mount", "--bind"])
                .arg(source)
                .arg(target),
            Duration::from_secs(10),
        );
        assert!(
            out.success(),
            "bind {} on {target}: {out}",
            source.display()
        );
    }
}

impl Default for MountNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

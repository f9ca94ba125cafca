//! Podman (Debian 12's 4.3, CNI backend) with everything of its own under a
//! test directory, so the machine's podman state is untouched.
//!
//! [`Podman::new`] writes `containers.conf` (runc with the cgroupfs manager:
//! crun refuses this VM's hybrid cgroup layout; low default ulimits: root
//! cannot raise RLIMIT_NOFILE/NPROC here; the CNI backend with the test's
//! config and plugin directories) and `storage.conf` (vfs, root and runroot
//! in the directory), imports a busybox image, and starts a *holder*: a
//! process in a private mount namespace that every podman command joins
//! (`nsenter --mount --net`), with the test's own directory bind-mounted on
//! libcni's cache, `/var/lib/cni`. Podman's netns bind mounts
//! (`/run/netns/netns-…`) live only in that mount namespace, as with podman
//! under `ip netns exec`: the daemon cannot open them by path, which is what
//! the plugin's descriptor handoff is for.
//!
//! Drop removes every container (`rm -af -t 0`), kills the holder (which
//! takes its mount namespace and mounts with it) and removes the directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::image;
use crate::mountns::MountNs;
use crate::netns::Netns;
use crate::process::{self, Bounded};

/// The image every container runs.
pub const IMAGE: &str = "localhost/tweed-busybox:latest";
/// How long one podman command may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A private podman, run in a node's netns.
#[derive(Debug)]
pub struct Podman {
    dir: PathBuf,
    node_netns: String,
    holder: Option<MountNs>,
}

impl Podman {
    /// Sets podman up in `dir` (created; removed on drop) to run in `node`'s
    /// netns, with network configurations in `conf_dir` and plugins in
    /// `bin_dir` (then `/usr/lib/cni` for portmap).
    pub fn new(dir: &Path, node: &Netns, conf_dir: &Path, bin_dir: &Path) -> Self {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("cni-cache"))
            .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let d = dir.display();
        let containers = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\n\
             runtime = \"runc\"\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             [network]\n\
             network_backend = \"cni\"\n\
             cni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\n\
             network_config_dir = \"{}\"\n\
             default_network = \"tweed\"\n",
            bin_dir.display(),
            conf_dir.display()
        );
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{d}/runroot\"\ngraphroot = \"{d}/root\"\n"
        );
        std::fs::write(dir.join("containers.conf"), containers).expect("write containers.conf");
        std::fs::write(dir.join("storage.conf"), storage).expect("write storage.conf");
        let mut podman = Podman {
            dir: dir.to_owned(),
            node_netns: node.path(),
            holder: None,
        };
        let holder = MountNs::new();
        holder.bind(&dir.join("cni-cache"), "/var/lib/cni");
        podman.holder = Some(holder);
        let tar = image::busybox_rootfs_tar(dir);
        podman.ok(&["import", &tar.display().to_string(), IMAGE]);
        podman
    }

    /// The private mount namespace podman runs in.
    pub fn mount_ns(&self) -> &MountNs {
        self.holder.as_ref().expect("the holder runs")
    }

    /// libcni's cache as podman sees it (`/var/lib/cni` in its mount namespace).
    pub fn cni_cache(&self) -> PathBuf {
        self.dir.join("cni-cache")
    }

    /// `podman ARGS` in the node's netns and the holder's mount namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let d = &self.dir;
        let mut cmd = Command::new("nsenter");
        cmd.arg(self.mount_ns().nsenter_arg())
            .arg(format!("--net={}", self.node_netns))
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"));
        cmd
    }

    /// Runs `podman ARGS`.
    pub fn run(&self, args: &[&str]) -> Bounded {
        process::run(&mut self.command(args), TIMEOUT)
    }

    /// Runs `podman ARGS`, panics unless it succeeds; its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.success(), "podman {}: {out}", args.join(" "));
        out.stdout.trim().to_owned()
    }

    /// Runs `podman ARGS`, panics if it succeeds; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.success(),
            "podman {} should have failed: {out}",
            args.join(" ")
        );
        out.stderr
    }

    /// `podman inspect --format FORMAT NAME`.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if self.holder.is_some() {
            let out = self.run(&["rm", "-af", "-t", "0"]);
            if !out.success() {
                eprintln!("cleanup: podman rm -af: {out}");
            }
        }
        self.holder = None;
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: remove {}: {e}", self.dir.display());
        }
    }
}

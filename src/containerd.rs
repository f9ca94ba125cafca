//! containerd (Debian 12's 1.6) started by the test, with its root, state,
//! config and sockets under a test directory, and `ctr` to drive it.
//!
//! `ctr run --cni` runs the CNI plugins itself, from the fixed paths of
//! go-cni (`/etc/cni/net.d`, `/opt/cni/bin`) with libcni's cache in
//! `/var/lib/cni`; so containerd and ctr run in a private mount namespace
//! ([`MountNs`]) where those three are the test's directories, and in the
//! node's netns. The CRI plugin is disabled: only ctr uses this containerd.
//!
//! Drop kills every task of the test's namespace, stops containerd, kills
//! the holder and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::image;
use crate::mountns::MountNs;
use crate::netns::Netns;
use crate::poll;
use crate::process::{self, Bounded};

/// The image every container runs.
pub const IMAGE: &str = "docker.io/library/tweed-busybox:latest";
/// The containerd namespace of the test's containers.
pub const NAMESPACE: &str = "tweedtest";
/// How long one ctr command may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A private containerd.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    node_netns: String,
    daemon: Option<Child>,
    mount_ns: Option<MountNs>,
}

impl Containerd {
    /// Starts containerd in `dir` (created; removed on drop), in `node`'s
    /// netns, with the CNI configuration directory `conf_dir` and plugin
    /// directory `bin_dir` (portmap is copied in from `/usr/lib/cni`), and
    /// imports the busybox image.
    pub fn new(dir: &Path, node: &Netns, conf_dir: &Path, bin_dir: &Path) -> Self {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("cni-cache"))
            .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::copy("/usr/lib/cni/portmap", bin_dir.join("portmap"))
            .expect("copy portmap (containernetworking-plugins)");
        let d = dir.display();
        let config = format!(
            "version = 2\n\
             root = \"{d}/root\"\n\
             state = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n"
        );
        std::fs::write(dir.join("config.toml"), config).expect("write config.toml");
        let mount_ns = MountNs::new();
        mount_ns.bind(conf_dir, "/etc/cni/net.d");
        mount_ns.bind(bin_dir, "/opt/cni/bin");
        mount_ns.bind(&dir.join("cni-cache"), "/var/lib/cni");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("create the log");
        let daemon = Command::new("nsenter")
            .arg(mount_ns.nsenter_arg())
            .arg(format!("--net={}", node.path()))
            .arg("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd {
            dir: dir.to_owned(),
            node_netns: node.path(),
            daemon: Some(daemon),
            mount_ns: Some(mount_ns),
        };
        let up = poll::wait(Duration::from_secs(30), || c.run(&["version"]).success());
        assert!(up, "containerd did not start: {}", c.log());
        let archive = image::busybox_oci_archive(dir, IMAGE);
        c.ok(&["images", "import", &archive.display().to_string()]);
        let images = c.ok(&["images", "ls", "-q"]);
        assert!(images.lines().any(|i| i == IMAGE), "imported: {images}");
        c
    }

    /// containerd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// libcni's cache as ctr sees it.
    pub fn cni_cache(&self) -> PathBuf {
        self.dir.join("cni-cache")
    }

    /// `ctr --address SOCK -n NAMESPACE ARGS` in the node's netns and the
    /// private mount namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(
            self.mount_ns
                .as_ref()
                .expect("the holder runs")
                .nsenter_arg(),
        )
        .arg(format!("--net={}", self.node_netns))
        .arg("ctr")
        .arg("--address")
        .arg(self.dir.join("containerd.sock"))
        .args(["-n", NAMESPACE])
        .args(args);
        cmd
    }

    /// Runs `ctr ARGS`.
    pub fn run(&self, args: &[&str]) -> Bounded {
        process::run(&mut self.command(args), TIMEOUT)
    }

    /// Runs `ctr ARGS`, panics unless it succeeds; its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.success(),
            "ctr {}: {out}\ncontainerd log:\n{}",
            args.join(" "),
            self.log()
        );
        out.stdout.trim().to_owned()
    }

    /// Spawns `ctr ARGS` (e.g. a foreground `run --cni`, which runs DEL when
    /// the task exits), with piped output.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ctr")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.mount_ns.is_some() {
            let tasks = self.run(&["tasks", "ls", "-q"]).stdout;
            for task in tasks.lines().filter(|t| !t.is_empty()) {
                let _ = self.run(&["tasks", "kill", "-s", "KILL", task]);
                let _ = poll::wait(Duration::from_secs(10), || {
                    self.run(&["tasks", "delete", task]).success()
                });
            }
            let containers = self.run(&["containers", "ls", "-q"]).stdout;
            for c in containers.lines().filter(|c| !c.is_empty()) {
                let _ = self.run(&["containers", "delete", c]);
            }
        }
        if let Some(daemon) = self.daemon.take()
            && !process::terminate(daemon, Duration::from_secs(10))
        {
            eprintln!("cleanup: containerd did not stop on SIGTERM");
        }
        self.mount_ns = None;
        // containerd's overlay snapshots are mounted only while a task runs;
        // what is left is plain files.
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup: remove {}: {e}", self.dir.display());
        }
    }
}

//! A node: a network namespace running its own `tweed-dataplane`.
//!
//! The dataplane runs as `ip netns exec NODE tweed-dataplane --socket
//! DIR/dp.sock --state-dir DIR --underlay-ip IP --workers 2 ...`, where DIR is
//! a fresh directory `/tmp/tw-<prefix>-<pid>`; its stdout and stderr go to
//! `DIR/dataplane.log`, which is printed when a test fails. [`Node::start`]
//! returns once the API answers. Drop stops the process (SIGTERM, then
//! SIGKILL after a grace period), prints the log if the test is failing,
//! removes DIR and then the namespace.
//!
//! The tap I/O back end follows `TWEED_DATAPLANE_IO` (`auto`, `uring`,
//! `epoll`), which the dataplane inherits, so a whole run can be forced onto
//! one back end; a test forces its own with `extra = ["--io", "epoll"]`
//! (the flag wins over the variable).

use std::fs::OpenOptions;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tweed_api::dataplane::client::Client;

use crate::api::Api;
use crate::bins;
use crate::netns::Netns;
use crate::process;

/// How long a starting dataplane may take to answer its API.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a dataplane may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Worker threads per dataplane (the machine the tests run on is small).
pub const WORKERS: &str = "2";

/// A netns with a running dataplane.
#[derive(Debug)]
pub struct Node {
    /// The node's API.
    pub api: Api,
    /// The node's underlay address (what peers send to).
    pub underlay_ip: IpAddr,
    /// The state and log directory.
    pub dir: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
    // Dropped after `Drop::drop` ran, i.e. after the process has stopped.
    netns: Netns,
}

impl Node {
    /// Starts a dataplane in `netns`, whose underlay address `underlay_ip` must
    /// already be configured there, with `extra` flags appended (e.g.
    /// `["--vxlan-port", "8472"]`). Returns once the API answers.
    pub fn start(netns: Netns, prefix: &str, underlay_ip: IpAddr, extra: &[&str]) -> Self {
        Self::start_with_state(netns, prefix, underlay_ip, None, extra)
    }

    /// [`Node::start`] with the state file in `state_dir` (e.g. a small
    /// tmpfs) instead of DIR.
    pub fn start_with_state(
        netns: Netns,
        prefix: &str,
        underlay_ip: IpAddr,
        state_dir: Option<&Path>,
        extra: &[&str],
    ) -> Self {
        let dir = PathBuf::from(format!("/tmp/tw-{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let socket = dir.join("dp.sock");
        let mut args: Vec<String> = vec![
            "--socket".into(),
            socket.display().to_string(),
            "--state-dir".into(),
            state_dir.unwrap_or(&dir).display().to_string(),
            "--underlay-ip".into(),
            underlay_ip.to_string(),
            "--workers".into(),
            WORKERS.into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut node = Self {
            api: Api::new(socket),
            underlay_ip,
            dir,
            child: None,
            args,
            netns,
        };
        node.spawn();
        node
    }

    /// A node without a real underlay: its underlay address `underlay` (e.g.
    /// `192.168.250.1`) lives on the node's loopback as a /32 (not every
    /// kernel has the `dummy` link type), and the dataplane binds it.
    pub fn standalone(prefix: &str, underlay: &str, extra: &[&str]) -> Self {
        Self::standalone_with_state(prefix, underlay, None, extra)
    }

    /// [`Node::standalone`] with the state file in `state_dir`.
    pub fn standalone_with_state(
        prefix: &str,
        underlay: &str,
        state_dir: Option<&Path>,
        extra: &[&str],
    ) -> Self {
        let netns = Netns::new(prefix, "node");
        let ip: IpAddr = underlay.parse().expect("underlay is an address");
        let len = if ip.is_ipv4() { "32" } else { "128" };
        netns.ip(&["addr", "add", &format!("{ip}/{len}"), "dev", "lo"]);
        Self::start_with_state(netns, prefix, ip, state_dir, extra)
    }

    /// The state file (`dataplane-state.json` in the state directory).
    pub fn state_file(&self) -> PathBuf {
        let at = self.args.iter().position(|a| a == "--state-dir");
        let dir = at
            .and_then(|i| self.args.get(i + 1))
            .map_or(self.dir.clone(), PathBuf::from);
        dir.join("dataplane-state.json")
    }

    /// A connection through the dataplane crate's own API client (bounded by
    /// a 15 s timeout per call).
    pub fn client(&self) -> Client {
        let client = Client::connect(self.api.socket())
            .unwrap_or_else(|e| panic!("connect the API client: {e}"));
        client
            .set_timeout(Some(Duration::from_secs(15)))
            .expect("set the client's timeout");
        client
    }

    /// The node's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The dataplane's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("dataplane.log")
    }

    /// The dataplane's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the dataplane with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the dataplane again with the same flags and state directory
    /// (killing it first if it still runs); returns once the API answers.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the dataplane with SIGTERM and waits for it to exit (SIGKILL
    /// after a grace period). Returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if process::wait_deadline(&mut child, STOP_GRACE).is_some() {
            return true;
        }
        eprintln!("the dataplane ignored SIGTERM for {STOP_GRACE:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path().display()));
        let err = log.try_clone().expect("dup the log fd");
        let bin = bins::bin(bins::DATAPLANE);
        let child = Command::new("ip")
            .args(["netns", "exec", self.netns.name()])
            .arg(&bin)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the API answers `stats`, failing early if the process exits.
    fn wait_ready(&mut self) {
        let api = &self.api;
        let startup = process::wait_answering(&mut self.child, START_TIMEOUT, || {
            api.raw(r#"{"version":1,"request":{"stats":{}}}"#)
                .is_ok_and(|reply| reply.contains("\"ok\""))
        });
        if let process::Startup::Exited(status) = startup {
            panic!(
                "tweed-dataplane {} exited during start-up ({status}); its log:\n{}",
                self.args.join(" "),
                self.log()
            );
        }
        assert!(
            matches!(startup, process::Startup::Answered),
            "tweed-dataplane {} did not answer on {} within {START_TIMEOUT:?}; its log:\n{}",
            self.args.join(" "),
            self.api.socket().display(),
            self.log()
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "==== tweed-dataplane log ({}) ====\n{}==== end of log ====",
                self.netns.name(),
                self.log()
            );
        }
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("cleanup: remove {}: {e}", dir.display());
    }
}

//! A control daemon: one `tweed daemon` process in a node's namespace.
//!
//! [`Daemon::start`] runs `ip netns exec NS tweed daemon --node-name NAME
//! --run-dir DIR/run --state-dir DIR/state ARGS...`, where DIR is a fresh
//! `/tmp/tw-<prefix>-<name>-<pid>` (prefix from the namespace), with stdout
//! and stderr appended to `DIR/daemon.log`, and returns once
//! `DIR/run/control.sock` accepts a connection. The daemon spawns its own
//! `tweed-dataplane` (found next to `tweed`), which writes
//! `DIR/run/dataplane.pid`.
//!
//! Drop stops the daemon (SIGTERM, SIGKILL after a grace period), then kills
//! every process still in the namespace: after a `kill -9` of the daemon its
//! dataplane child lives on. It prints every `*.log` under DIR when the test
//! is failing and removes DIR. The namespace itself is the caller's (e.g. an
//! [`crate::underlay::Underlay`] node) and must outlive the daemon.

use std::fs::OpenOptions;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::bins;
use crate::netns::{self, Netns};
use crate::process;

/// The control binary's name.
pub const TWEED: &str = "tweed";
/// How long a starting daemon may take to accept on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long one CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped, restartable) control daemon in a node namespace.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    bin: PathBuf,
    netns: String,
    name: String,
    dir: PathBuf,
    /// Everything after the binary: `daemon --node-name ... ARGS`.
    args: Vec<String>,
}

impl Daemon {
    /// Starts `tweed daemon` (the workspace's binary) in `netns` as node
    /// `name`, with `args` appended; returns once its control socket accepts.
    pub fn start(netns: &Netns, name: &str, args: &[String]) -> Self {
        Self::start_binary(bins::bin(TWEED), netns, name, args)
    }

    /// [`Daemon::start`] with another binary standing in for `tweed` (the
    /// harness's own tests use a fake one); the CLI runs it too.
    pub fn start_binary(bin: PathBuf, netns: &Netns, name: &str, args: &[String]) -> Self {
        Self::start_full(bin, netns, name, None, args)
    }

    /// [`Daemon::start`] with `--state-dir STATE` (e.g. a small tmpfs)
    /// instead of DIR/state.
    pub fn start_with_state(netns: &Netns, name: &str, state: &Path, args: &[String]) -> Self {
        Self::start_full(bins::bin(TWEED), netns, name, Some(state), args)
    }

    fn start_full(
        bin: PathBuf,
        netns: &Netns,
        name: &str,
        state: Option<&Path>,
        args: &[String],
    ) -> Self {
        assert!(
            !name.is_empty() && !name.contains('/'),
            "node name {name:?} must be a non-empty file name"
        );
        let dir = PathBuf::from(format!(
            "/tmp/tw-{}-{name}-{}",
            netns.prefix(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let state = state.map_or_else(|| dir.join("state"), Path::to_path_buf);
        let args = daemon_args(name, &dir, &state, args);
        let mut daemon = Self {
            child: None,
            bin,
            netns: netns.name().to_owned(),
            name: name.to_owned(),
            dir,
            args,
        };
        daemon.spawn();
        daemon
    }

    /// The node name it runs as.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the namespace it runs in.
    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    /// DIR: holds `run/`, `state/` and `daemon.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `--run-dir`: sockets and pid files.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// `--state-dir`: what survives a restart.
    pub fn state_dir(&self) -> PathBuf {
        let at = self.args.iter().position(|a| a == "--state-dir");
        at.and_then(|i| self.args.get(i + 1))
            .map_or_else(|| self.dir.join("state"), PathBuf::from)
    }

    /// The control socket, `run/control.sock`.
    pub fn control_socket(&self) -> PathBuf {
        self.run_dir().join("control.sock")
    }

    /// The daemon's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The dataplane's pid from `run/dataplane.pid`, if the file exists and
    /// holds one (it may be stale after a crash).
    pub fn dataplane_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.run_dir().join("dataplane.pid")).ok()?;
        text.trim().parse().ok()
    }

    /// Kills the daemon with SIGKILL (a crash) and reaps it; its dataplane
    /// child keeps running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the daemon with SIGTERM and waits for it, SIGKILL after 10 s.
    /// Returns whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        let Some(child) = self.child.take() else {
            return true;
        };
        process::terminate(child, STOP_GRACE)
    }

    /// Starts the daemon again with the same flags and directories (stopping
    /// it first if it runs); returns once its control socket accepts.
    pub fn restart(&mut self) {
        if !self.stop() {
            eprintln!("daemon {} ignored SIGTERM; killed it", self.name);
        }
        self.spawn();
    }

    /// Runs `tweed --run-dir DIR/run ARGS...` in the node's namespace
    /// (killed after 30 s) and returns what it did.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.run_cli(&cli_args(&self.run_dir(), args, false))
    }

    /// Runs `tweed <what> apply -f` (`policy`, `service`) with `text` in a
    /// file of the daemon's directory; panics if it fails. Returns stdout.
    pub fn apply(&self, what: &str, text: &str) -> String {
        let path = self.dir.join(format!("{what}-manifest.yaml"));
        std::fs::write(&path, text).expect("write the manifest");
        let out = self.cli(&[what, "apply", "-f", &path.display().to_string()]);
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{what} apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `tweed install-cni` into `dir`/cni-bin (the built `tweed-cni`)
    /// and `dir`/net.d, as a user would for a runtime; panics if it fails.
    /// Returns (plugin directory, configuration directory).
    pub fn install_cni(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (bin_dir, conf_dir) = (dir.join("cni-bin"), dir.join("net.d"));
        let plugin = bins::bin("tweed-cni").display().to_string();
        let out = self.cli(&[
            "install-cni",
            "--bin-dir",
            &bin_dir.display().to_string(),
            "--conf-dir",
            &conf_dir.display().to_string(),
            "--plugin",
            &plugin,
        ]);
        assert!(out.status.success(), "install-cni: {out:?}");
        (bin_dir, conf_dir)
    }

    /// Runs `tweed --run-dir DIR/run ARGS... -o json` and parses its stdout;
    /// panics with its stderr if it fails or prints no JSON.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let full = cli_args(&self.run_dir(), args, true);
        let out = self.run_cli(&full);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "`tweed {}` on {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
            full.join(" "),
            self.name,
            out.status
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "`tweed {}` on {} printed no JSON ({e}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
                full.join(" "),
                self.name
            )
        })
    }

    fn run_cli(&self, args: &[String]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(&self.bin)
            .args(args);
        let out = process::run(&mut cmd, CLI_TIMEOUT);
        assert!(
            !out.timed_out(),
            "`tweed {}` on {} did not finish in {CLI_TIMEOUT:?}: {out}",
            args.join(" "),
            self.name
        );
        Output {
            status: out.status.expect("exited"),
            stdout: out.stdout.into_bytes(),
            stderr: out.stderr.into_bytes(),
        }
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path().display()));
        let err = log.try_clone().expect("dup the log fd");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(&self.bin)
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
            .unwrap_or_else(|e| panic!("spawn {} in {}: {e}", self.bin.display(), self.netns));
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the control socket accepts, failing early if the process
    /// exits.
    fn wait_ready(&mut self) {
        let socket = self.control_socket();
        let startup = process::wait_answering(&mut self.child, START_TIMEOUT, || {
            UnixStream::connect(&socket).is_ok()
        });
        if let process::Startup::Exited(status) = startup {
            panic!(
                "`tweed {}` in {} exited during start-up ({status}); its log:\n{}",
                self.args.join(" "),
                self.netns,
                self.log()
            );
        }
        assert!(
            matches!(startup, process::Startup::Answered),
            "`tweed {}` in {} did not accept on {} within {START_TIMEOUT:?}; its log:\n{}",
            self.args.join(" "),
            self.netns,
            socket.display(),
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("daemon {} ignored SIGTERM; killed it", self.name);
        }
        // The dataplane (and anything else) the daemon left behind.
        netns::kill_all(&self.netns);
        if std::thread::panicking() {
            for (path, text) in logs(&self.dir) {
                eprintln!(
                    "==== {} ({}) ====\n{text}==== end of log ====",
                    path.display(),
                    self.netns
                );
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cleanup: remove {}: {e}", self.dir.display());
        }
    }
}

/// `daemon --node-name NAME --run-dir DIR/run --state-dir STATE EXTRA...`.
fn daemon_args(name: &str, dir: &Path, state: &Path, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "daemon".to_owned(),
        "--node-name".to_owned(),
        name.to_owned(),
        "--run-dir".to_owned(),
        dir.join("run").display().to_string(),
        "--state-dir".to_owned(),
        state.display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// `--run-dir RUN ARGS...`, with `-o json` last when `json` (after the
/// subcommand, where both a global and a subcommand flag are accepted).
fn cli_args(run_dir: &Path, args: &[&str], json: bool) -> Vec<String> {
    let mut full = vec!["--run-dir".to_owned(), run_dir.display().to_string()];
    full.extend(args.iter().map(|a| (*a).to_owned()));
    if json {
        full.extend(["-o".to_owned(), "json".to_owned()]);
    }
    full
}

/// Every `*.log` file in `dir` and its direct subdirectories, with its text.
fn logs(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "log"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            found.push((path, text));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{cli_args, daemon_args};

    #[test]
    fn daemon_args_put_the_harness_flags_before_the_callers() {
        let args = daemon_args(
            "node0",
            Path::new("/tmp/d"),
            Path::new("/tmp/d/state"),
            &["--x".to_owned()],
        );
        assert_eq!(
            args,
            [
                "daemon",
                "--node-name",
                "node0",
                "--run-dir",
                "/tmp/d/run",
                "--state-dir",
                "/tmp/d/state",
                "--x"
            ]
        );
    }

    #[test]
    fn cli_args_add_the_run_dir_first_and_json_last() {
        assert_eq!(
            cli_args(Path::new("/r"), &["pods", "list"], true),
            ["--run-dir", "/r", "pods", "list", "-o", "json"]
        );
        assert_eq!(
            cli_args(Path::new("/r"), &["status"], false),
            ["--run-dir", "/r", "status"]
        );
    }
}

//! The demo's processes: etcd and one `tweed daemon` per node, each started
//! inside its node's namespace, in a process group of its own (a Ctrl-C in
//! the terminal reaches the demo, which tears down in order, not them), with
//! its output in a log file; and the waits for them to be ready.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tweed_sys::netns::run_in_netns;

use tweed_api::node::StatusReply;
use tweed_api::proto::{Empty, Request, ResponseBody};

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// A process the demo started.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages (`etcd`, `daemon node-a`).
    pub what: String,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `program ARGS` inside namespace `netns`, its stdout and stderr
    /// appended to `log`.
    pub fn spawn(
        what: &str,
        netns: &Path,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Self, String> {
        let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("open {}: {e}", log.display()))?;
        let program = program.to_path_buf();
        let args = args.to_vec();
        let child = run_in_netns(netns, move || {
            Command::new(&program)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .map_err(|e| format!("start {}: {e}", program.display()))
        })
        .map_err(|e| format!("enter {}: {e}", netns.display()))??;
        Ok(Proc {
            what: what.to_owned(),
            log: log.to_path_buf(),
            child,
        })
    }

    /// An error if it has exited, with the end of its log.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); the end of {}:\n{}",
                self.what,
                self.log.display(),
                log_tail(&self.log, 15)
            )),
            Err(e) => Err(format!("wait for {}: {e}", self.what)),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until it exits, for at most `timeout` (then kills it) or
    /// until `interrupted` (then leaves it to the teardown); an error unless
    /// it exited with status 0.
    pub fn wait_exit(
        &mut self,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "{} exited ({status}); the end of {}:\n{}",
                        self.what,
                        self.log.display(),
                        log_tail(&self.log, 15)
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("wait for {}: {e}", self.what)),
            }
            if interrupted() {
                return Err("interrupted".to_owned());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!(
                    "{} did not finish within {}s; the end of {}:\n{}",
                    self.what,
                    timeout.as_secs(),
                    self.log.display(),
                    log_tail(&self.log, 15)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reaps it if it has exited (the teardown stops it by namespace).
    pub fn reap(&mut self) {
        let _ = self.child.try_wait();
    }
}

/// Waits for `child` to exit, up to `timeout`; `None` if it is still running.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return None,
        }
    }
}

/// Stops `child` with SIGTERM and reaps it, sending SIGKILL if it is still
/// running after `grace`. Returns whether it exited by itself.
pub fn terminate(mut child: Child, grace: Duration) -> bool {
    tweed_sys::process::terminate(child.id());
    if wait_deadline(&mut child, grace).is_some() {
        return true;
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Polls `ready` until it says yes, `proc` exits, `interrupted` or `timeout`.
pub fn wait_ready(
    proc: &mut Proc,
    timeout: Duration,
    interrupted: &dyn Fn() -> bool,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        proc.check_running()?;
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if interrupted() {
            return Err("interrupted".to_owned());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} was not ready after {}s{}; the end of {}:\n{}",
                proc.what,
                timeout.as_secs(),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(" ({last})")
                },
                proc.log.display(),
                log_tail(&proc.log, 15)
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Whether etcd at `addr` answers `GET /health` with `"health":"true"`,
/// asked from inside `netns`.
pub fn etcd_healthy(netns: &Path, addr: SocketAddr) -> Result<bool, String> {
    run_in_netns(netns, move || -> Result<bool, String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n")
            .map_err(|e| format!("ask {addr}: {e}"))?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .map_err(|e| format!("read {addr}: {e}"))?;
        Ok(reply.contains("\"health\":\"true\""))
    })
    .map_err(|e| format!("enter {}: {e}", netns.display()))?
}

/// The daemon's `status`, if its control socket answers.
pub fn status(socket: &Path) -> Result<StatusReply, String> {
    match tweed_api::client::call(socket, Request::Status(Empty {})) {
        Ok(ResponseBody::Status(s)) => Ok(s),
        Ok(other) => Err(format!("status answered {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

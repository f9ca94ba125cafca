//! Running a command with a deadline: a test never hangs on a peer that does
//! not answer. A command still running at its deadline is killed (SIGKILL).
//! Waiting for a child with a deadline and stopping one (SIGTERM, then
//! SIGKILL) are the lab's (`tweed_lab::procs`), as `tweed demo` and `tweed
//! bench` do it; re-exported here.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

pub use tweed_lab::procs::{terminate, wait_deadline};

/// What a bounded command did.
#[derive(Debug)]
pub struct Bounded {
    /// Its exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Bounded {
    /// It exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// It was killed at its deadline.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

impl std::fmt::Display for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "{status}")?,
            None => write!(f, "killed at its deadline")?,
        }
        write!(
            f,
            "\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with piped output and kills it if it is still running after
/// `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Bounded {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    finish(child, timeout)
}

/// Waits for `child` (spawned with piped stdout and stderr) until `timeout`,
/// killing it then, and collects its output.
pub fn finish(mut child: Child, timeout: Duration) -> Bounded {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_deadline(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Bounded {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// How the wait for a started process to answer ended.
#[derive(Debug)]
pub enum Startup {
    /// It answered.
    Answered,
    /// It exited first (reaped; the `Option` it was in is now empty).
    Exited(ExitStatus),
    /// It neither answered nor exited within the timeout.
    Silent,
}

/// Polls `answers` until it says yes or `timeout` passes, stopping early
/// when the process in `child` exits: a start-up that fails shows at once,
/// not at the deadline.
pub fn wait_answering(
    child: &mut Option<Child>,
    timeout: Duration,
    mut answers: impl FnMut() -> bool,
) -> Startup {
    let mut exited = None;
    let answered = crate::poll::wait(timeout, || {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            exited = Some(status);
            return true;
        }
        answers()
    });
    match exited {
        Some(status) => {
            *child = None;
            Startup::Exited(status)
        }
        None if answered => Startup::Answered,
        None => Startup::Silent,
    }
}

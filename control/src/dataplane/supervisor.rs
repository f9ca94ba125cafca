//! Keeps one `tweed-dataplane` running for the daemon.
//!
//! At start the daemon attaches to a dataplane that already answers on the
//! socket (one a previous daemon left running: the dataplane outlives a daemon
//! crash or upgrade, so pod traffic does not stop), or spawns its own. From then
//! on a monitor looks every [`CHECK_EVERY`]: a dataplane that exited (its own
//! child: the exit; an attached one: its pid is gone) is started again at once;
//! one that is alive but does not answer its API within [`PROBE_TIMEOUT`]
//! [`HUNG_MISSES`] times in a row (stopped, deadlocked, stuck in the kernel) is
//! killed (SIGKILL) and replaced, the same for a child and an attached one. A
//! new one is started with a back-off, and the *generation* bumped: every change
//! of generation makes the daemon push its whole state again (resync).
//!
//! The state `status` shows is kept here, so `status` (and CNI STATUS) answers
//! from it at once while the dataplane does not: `up` is false from the first
//! missed check.
//!
//! The child's pid is written to `RUN_DIR/dataplane.pid`, so a restarted daemon
//! (or an operator) can find the dataplane it attached to. A clean daemon stop
//! sends the dataplane SIGTERM; pod interfaces stay (the taps are persistent).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::client::{Dataplane, DataplaneError};
use crate::config::DaemonConfig;

/// How long a new dataplane may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the monitor looks.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long a health check waits for the API's answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Missed health checks in a row before a live dataplane counts as hung.
pub const HUNG_MISSES: u32 = 3;
/// How long a killed dataplane may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The longest pause between restart attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why the dataplane could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The executable could not be run.
    #[error(
        "start {bin}: {source} (install tweed-dataplane next to tweed or pass --dataplane-bin)"
    )]
    Spawn {
        /// The executable.
        bin: String,
        /// Why.
        source: std::io::Error,
    },
    /// It started but exited or never answered.
    #[error("the dataplane {0}; see its log lines above")]
    NotReady(String),
}

/// What `status` shows about the dataplane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataplaneState {
    /// Whether its API answered at the last check.
    pub up: bool,
    /// Its pid, when known.
    pub pid: Option<u32>,
    /// How many times it was (re)started after the first start.
    pub restarts: u64,
    /// The last failure, if any.
    pub error: Option<String>,
}

/// The supervisor. Share it in an `Arc`.
#[derive(Debug)]
pub struct Supervisor {
    args: Vec<String>,
    bin: PathBuf,
    pid_file: PathBuf,
    dataplane: Dataplane,
    child: tokio::sync::Mutex<Option<Child>>,
    state: Mutex<DataplaneState>,
    generation: watch::Sender<u64>,
}

impl Supervisor {
    /// A supervisor for the dataplane `config` describes (not started yet).
    pub fn new(config: &DaemonConfig) -> Self {
        let vtep = tweed_dataplane::daemon::config::vtep_mac_for(config.underlay_ip);
        let vtep = tweed_api::dataplane::proto::MacAddr(vtep).to_string();
        let args = [
            ("--socket", config.dataplane_socket().display().to_string()),
            ("--state-dir", config.state_dir.display().to_string()),
            ("--underlay-ip", config.underlay_ip.to_string()),
            ("--workers", config.workers.to_string()),
            ("--vxlan-port", config.vxlan_port.to_string()),
            (
                "--vxlan-source-ports",
                config.vxlan_source_ports.to_string(),
            ),
            ("--udp-port", config.udp_port.to_string()),
            ("--vni", config.vni.to_string()),
            ("--mtu", config.mtu.to_string()),
            ("--vtep-mac", vtep),
        ]
        .into_iter()
        .chain(
            config
                .service_cidrs
                .iter()
                .map(|cidr| ("--service-cidr", cidr.to_string())),
        )
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
        Supervisor {
            args,
            bin: config.dataplane_bin.clone(),
            pid_file: config.dataplane_pid_file(),
            dataplane: Dataplane::new(&config.dataplane_socket()),
            child: tokio::sync::Mutex::new(None),
            state: Mutex::new(DataplaneState::default()),
            generation: watch::channel(0).0,
        }
    }

    /// The dataplane's API.
    pub fn dataplane(&self) -> &Dataplane {
        &self.dataplane
    }

    /// Changes every time a dataplane (re)starts; the value is the count.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// A copy of the current state.
    pub fn state(&self) -> DataplaneState {
        self.state.lock().expect("state lock").clone()
    }

    /// Attaches to a running dataplane or spawns one; returns once it answers.
    pub async fn start(&self) -> Result<(), SupervisorError> {
        if self.dataplane.within(PROBE_TIMEOUT).alive().await {
            let pid = std::fs::read_to_string(&self.pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            tracing::info!(socket = %self.dataplane.socket().display(), ?pid, "attached to a running dataplane");
            self.mark_up(pid);
        } else {
            self.spawn().await?;
        }
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    async fn spawn(&self) -> Result<(), SupervisorError> {
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .kill_on_drop(false)
            .spawn()
            .map_err(|source| SupervisorError::Spawn {
                bin: self.bin.display().to_string(),
                source,
            })?;
        let pid = child.id();
        if let Some(pid) = pid {
            let _ = std::fs::write(&self.pid_file, format!("{pid}\n"));
        }
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(SupervisorError::NotReady(format!(
                    "exited at start ({status})"
                )));
            }
            if self.dataplane.within(PROBE_TIMEOUT).alive().await {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(SupervisorError::NotReady(format!(
                    "did not answer on {} within {START_TIMEOUT:?}",
                    self.dataplane.socket().display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(?pid, bin = %self.bin.display(), "dataplane started");
        *self.child.lock().await = Some(child);
        self.mark_up(pid);
        Ok(())
    }

    fn mark_up(&self, pid: Option<u32>) {
        let mut state = self.state.lock().expect("state lock");
        state.up = true;
        state.pid = pid;
        state.error = None;
    }

    fn mark_down(&self, error: String) {
        let mut state = self.state.lock().expect("state lock");
        state.up = false;
        state.error = Some(error);
    }

    /// Watches the dataplane until `shutdown` fires, restarting it when it
    /// dies or hangs.
    pub async fn monitor(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut misses = 0u32;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            let why = match self.exited().await {
                Some(why) => why,
                None => match self.dataplane.within(PROBE_TIMEOUT).ports().await {
                    // A refusal (too many connections, say) is an answer too.
                    Ok(_) | Err(DataplaneError::Refused { .. }) => {
                        misses = 0;
                        self.mark_up_again();
                        continue;
                    }
                    Err(e) => {
                        misses += 1;
                        let error = format!(
                            "the dataplane did not answer a health check ({misses} of {HUNG_MISSES} in a row): {e}"
                        );
                        tracing::warn!("{error}");
                        self.mark_down(error);
                        if misses < HUNG_MISSES {
                            continue;
                        }
                        self.kill().await;
                        format!("stopped answering ({HUNG_MISSES} health checks missed; killed it)")
                    }
                },
            };
            misses = 0;
            tracing::error!(reason = %why, "the dataplane is gone; starting a new one");
            self.mark_down(format!("the dataplane {why}"));
            self.restart_until_up(&mut shutdown).await;
        }
    }

    /// Why the dataplane is no longer running, if it is not: our child
    /// exited, or the attached one's pid is gone.
    async fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().await;
        if let Some(running) = child.as_mut() {
            return match running.try_wait() {
                Ok(Some(status)) => {
                    *child = None;
                    Some(format!("exited ({status})"))
                }
                _ => None,
            };
        }
        drop(child);
        let pid = self.state().pid?;
        (!is_dataplane(pid)).then(|| format!("(pid {pid}) exited"))
    }

    /// Kills a dataplane that does not answer (SIGKILL: a stopped process
    /// would never handle SIGTERM) and waits until it is gone, so that the
    /// next one can bind its sockets.
    async fn kill(&self) {
        let mut child = self.child.lock().await;
        if let Some(mut running) = child.take() {
            let _ = running.start_kill();
            if tokio::time::timeout(KILL_WAIT, running.wait())
                .await
                .is_err()
            {
                tracing::error!("the killed dataplane did not exit in {KILL_WAIT:?}");
            }
            return;
        }
        drop(child);
        let Some(pid) = self.state().pid.filter(|pid| is_dataplane(*pid)) else {
            return;
        };
        tweed_sys::process::kill(pid);
        let deadline = tokio::time::Instant::now() + KILL_WAIT;
        while is_dataplane(pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn mark_up_again(&self) {
        let mut state = self.state.lock().expect("state lock");
        state.up = true;
        state.error = None;
    }

    async fn restart_until_up(&self, shutdown: &mut watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(250);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.spawn().await {
                Ok(()) => {
                    self.state.lock().expect("state lock").restarts += 1;
                    self.generation.send_modify(|g| *g += 1);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "restarting the dataplane");
                    self.mark_down(e.to_string());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Stops the dataplane this daemon spawned or attached to (SIGTERM, then
    /// SIGKILL after 10 s) and removes the pid file.
    pub async fn stop(&self) {
        // A pid from the pid file may be stale and reused: signal it only while
        // it still names a dataplane.
        let pid = self.state().pid.filter(|pid| is_dataplane(*pid));
        let mut child = self.child.lock().await.take();
        if let Some(pid) = pid {
            tweed_sys::process::terminate(pid);
        }
        if let Some(child) = child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        } else if let Some(pid) = pid {
            for _ in 0..100 {
                if !tweed_sys::process::alive(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
        self.mark_down("stopped".into());
    }
}

/// Whether process `pid` runs `tweed-dataplane` (its `comm`, at most 15
/// bytes) and has not exited (a zombie has exited).
fn is_dataplane(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end() == "tweed-dataplane");
    comm && !is_zombie(pid)
}

/// Whether process `pid` is a zombie (state `Z` in `/proc/PID/stat`).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "PID (COMM) STATE ...": the state follows the last ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

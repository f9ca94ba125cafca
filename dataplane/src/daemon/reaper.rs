//! Deleting the taps of removed ports after `port_remove` has answered.
//!
//! The kernel takes most of a `port_remove` (15 to 20 ms on a loaded machine)
//! to unregister a tap: it waits for RCU grace periods. Nobody needs to wait
//! for that. `port_remove` takes the port out of the tables (its name and
//! addresses are free at once), lists the tap as being removed in the same
//! atomic save of the state file that drops the port, answers, and hands the
//! tap to the one reaper thread here. The reaper deletes it, then tells the
//! control side, which drops it from the list and saves. A process killed in
//! between leaves the tap listed, and the next start deletes it before it
//! serves the API. So every removal finishes: in the background, at the next
//! start, or, for a tap whose persist flag was already cleared, when the
//! killed process's fds close.
//!
//! The reaper closes the tap through its queues once it holds them alone
//! (the workers drop theirs within a batch of the publish), so the kernel
//! deletes exactly that device, wherever it is, and never a newer tap that
//! took the name. A `port_add` that finds its interface name still taken
//! waits for pending removals of that name (see [`Reaper::may_hold`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::shared::TapHandles;

/// How long the reaper waits for the workers to let go of a tap's queues
/// before it deletes the link by name instead.
const QUEUE_PATIENCE: Duration = Duration::from_secs(2);

/// One tap to delete.
#[derive(Debug)]
pub struct Job {
    /// Its key in the control side's list of removals.
    pub id: u64,
    /// The removed port's name (for logs).
    pub port: String,
    /// The pod's netns.
    pub netns: PathBuf,
    /// The tap's name in the pod.
    pub ifname: String,
    /// Its queues (the workers may still hold clones for a moment).
    pub handles: Arc<TapHandles>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Submitted and not finished: id → ifname.
    jobs: BTreeMap<u64, String>,
    /// How many removals have finished, ever.
    finished: u64,
}

/// The queue of tap removals and what is pending in it.
#[derive(Debug)]
pub struct Reaper {
    tx: Sender<Job>,
    rx: Mutex<Option<Receiver<Job>>>,
    pending: Mutex<Pending>,
    changed: Condvar,
}

impl Default for Reaper {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: Mutex::new(Pending::default()),
            changed: Condvar::new(),
        }
    }
}

impl Reaper {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the reaper thread; `done(id, deleted)` is called after each job
    /// (`deleted` false: the tap could not be deleted and stays listed for
    /// the next start). Only the first call starts a thread.
    pub fn start(&self, done: impl Fn(u64, bool) + Send + 'static) -> std::io::Result<()> {
        let Some(rx) = self.rx.lock().ok().and_then(|mut rx| rx.take()) else {
            return Ok(());
        };
        std::thread::Builder::new()
            .name("tweed-reaper".into())
            .spawn(move || {
                for job in rx {
                    let id = job.id;
                    done(id, delete(job));
                }
            })?;
        Ok(())
    }

    /// Queues a removal. Gives the job back if the reaper thread is gone.
    pub fn submit(&self, job: Job) -> Result<(), Box<Job>> {
        let (id, ifname) = (job.id, job.ifname.clone());
        self.pending().jobs.insert(id, ifname);
        self.tx.send(job).map_err(|e| {
            self.pending().jobs.remove(&id);
            Box::new(e.0)
        })
    }

    /// Marks job `id` finished and wakes the waiters.
    pub fn finish(&self, id: u64) {
        let mut pending = self.pending();
        pending.jobs.remove(&id);
        pending.finished += 1;
        self.changed.notify_all();
    }

    /// How many removals have finished so far (a generation to compare
    /// with [`Reaper::may_hold`]).
    pub fn finished(&self) -> u64 {
        self.pending().finished
    }

    /// Whether a removal may be what holds the name `ifname`: one for that
    /// name is pending, or one finished since `finished` was read.
    pub fn may_hold(&self, ifname: &str, finished: u64) -> bool {
        let pending = self.pending();
        pending.finished != finished || pending.jobs.values().any(|n| n == ifname)
    }

    /// Waits until no removal of `ifname` is pending, at most `timeout`;
    /// false if one still is.
    pub fn wait_for(&self, ifname: &str, timeout: Duration) -> bool {
        self.wait_until(timeout, |p| p.jobs.values().all(|n| n != ifname))
    }

    /// Waits until nothing is pending, at most `timeout`; false if something
    /// still is.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, |p| p.jobs.is_empty())
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&Pending) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut pending = self.pending();
        while !done(&pending) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            pending = match self.changed.wait_timeout(pending, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// Deletes one tap; false if it could not be.
fn delete(job: Job) -> bool {
    let started = Instant::now();
    let Job {
        port,
        netns,
        ifname,
        handles,
        ..
    } = job;
    let result = match alone(handles) {
        Ok(handles) => crate::port::tap::close_pod_tap(&netns, &ifname, handles.queues),
        Err(shared) => {
            tracing::warn!(%port, "the workers still hold the tap's queues; deleting it by name");
            crate::port::tap::delete_pod_tap(&netns, &ifname, &shared.queues)
        }
    };
    match result {
        Ok(()) => {
            tracing::debug!(%port, elapsed_ms = started.elapsed().as_millis() as u64, "tap deleted");
            true
        }
        Err(e) => {
            tracing::error!(%port, error = %e, "could not delete the tap of a removed port; the next start tries again");
            false
        }
    }
}

/// The handles once nobody else holds them, or back after [`QUEUE_PATIENCE`].
fn alone(mut handles: Arc<TapHandles>) -> Result<TapHandles, Arc<TapHandles>> {
    let deadline = Instant::now() + QUEUE_PATIENCE;
    loop {
        match Arc::try_unwrap(handles) {
            Ok(handles) => return Ok(handles),
            Err(shared) if Instant::now() >= deadline => return Err(shared),
            Err(shared) => {
                handles = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, ifname: &str) -> Job {
        Job {
            id,
            port: format!("ns/p{id}"),
            netns: PathBuf::from("/nonexistent-tweed-netns"),
            ifname: ifname.into(),
            handles: Arc::new(TapHandles { queues: Vec::new() }),
        }
    }

    #[test]
    fn pending_names_and_generations_decide_who_waits() {
        let reaper = Reaper::default();
        let seen = reaper.finished();
        assert!(!reaper.may_hold("eth0", seen), "nothing pending");
        reaper.submit(job(1, "eth0")).expect("queued");
        assert!(reaper.may_hold("eth0", seen));
        assert!(!reaper.may_hold("eth1", seen), "another name");
        assert!(!reaper.wait_for("eth0", Duration::from_millis(10)));
        assert!(reaper.wait_for("eth1", Duration::ZERO));
        reaper.finish(1);
        assert!(reaper.may_hold("eth1", seen), "one finished since");
        assert!(!reaper.may_hold("eth1", reaper.finished()));
        assert!(reaper.wait_for("eth0", Duration::ZERO));
        assert!(reaper.wait_idle(Duration::ZERO));
    }

    #[test]
    fn the_thread_deletes_and_reports_each_job() {
        let reaper = Reaper::default();
        let (tx, rx) = std::sync::mpsc::channel();
        reaper
            .start(move |id, deleted| tx.send((id, deleted)).expect("report"))
            .expect("start");
        // No queues and no netns: the tap is already gone, which is success.
        reaper.submit(job(7, "eth0")).expect("queued");
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("done");
        assert_eq!(got, (7, true));
    }
}

//! The workers' I/O back end, chosen once at start: io_uring (multishot
//! readiness polls, batched tap reads and writes) where the kernel has it,
//! epoll (one syscall per frame) otherwise or when asked.
//!
//! The control side reaches each worker's set of sources through a
//! [`Registrar`]: with epoll it adds and deletes tap queues in the worker's
//! epoll set; with io_uring the worker owns its ring and follows the
//! published port handles itself, and the registrar only wakes it.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use super::idle::IdlePolicy;
use tweed_sys::epoll::Epoll;
use tweed_sys::eventfd::EventFd;
use tweed_sys::uring::{Ring, Unavailable};

/// What the `--io` flag asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IoMode {
    /// io_uring if the kernel has what the workers need, else epoll.
    #[default]
    Auto,
    /// io_uring or fail to start.
    Uring,
    /// epoll.
    Epoll,
}

/// The back end the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoBackend {
    /// epoll readiness, a syscall per read and write.
    Epoll,
    /// io_uring readiness polls and batches.
    Uring,
}

impl IoBackend {
    /// Its name in logs and status replies.
    pub fn name(self) -> &'static str {
        match self {
            IoBackend::Epoll => "epoll",
            IoBackend::Uring => "io_uring",
        }
    }
}

/// The back end chosen for `mode` and, for epoll chosen by `auto`, why
/// io_uring was not.
#[derive(Debug)]
pub struct Choice {
    /// The back end.
    pub backend: IoBackend,
    /// Why io_uring is not used, when `auto` fell back.
    pub fallback: Option<String>,
    /// How workers wait when idle (`--busy-poll`, `--linger-us`).
    pub idle: IdlePolicy,
}

impl Choice {
    /// How the choice is shown: `io_uring`, `epoll` or `epoll (io_uring
    /// unavailable: ...)`, followed by how workers wait when idle
    /// ([`IdlePolicy::suffix`]: `, linger 50 µs`, `, busy-poll`).
    pub fn describe(&self) -> String {
        let idle = self.idle.suffix();
        match &self.fallback {
            Some(why) => format!(
                "{}{idle} (io_uring unavailable: {why})",
                self.backend.name()
            ),
            None => format!("{}{idle}", self.backend.name()),
        }
    }
}

/// Chooses the back end: `auto` tries a ring (and the probe of the
/// operations the workers use) and falls back to epoll; `uring` fails
/// instead.
pub fn choose(mode: IoMode) -> Result<Choice, Unavailable> {
    decide(mode, || Ring::new().map(drop))
}

/// [`choose`] over a given io_uring check (pure, for tests).
fn decide(
    mode: IoMode,
    check: impl FnOnce() -> Result<(), Unavailable>,
) -> Result<Choice, Unavailable> {
    match mode {
        IoMode::Epoll => Ok(Choice {
            backend: IoBackend::Epoll,
            fallback: None,
            idle: IdlePolicy::Sleep,
        }),
        IoMode::Uring => check().map(|()| Choice {
            backend: IoBackend::Uring,
            fallback: None,
            idle: IdlePolicy::Sleep,
        }),
        IoMode::Auto => Ok(match check() {
            Ok(()) => Choice {
                backend: IoBackend::Uring,
                fallback: None,
                idle: IdlePolicy::Sleep,
            },
            Err(e) => Choice {
                backend: IoBackend::Epoll,
                fallback: Some(e.to_string()),
                idle: IdlePolicy::Sleep,
            },
        }),
    }
}

/// The control side's handle on one worker's sources.
#[derive(Debug, Clone)]
pub enum Registrar {
    /// The worker's epoll set.
    Epoll(Arc<Epoll>),
    /// Wakes the worker, which then follows the published port handles.
    Uring(Arc<EventFd>),
}

impl Registrar {
    /// Makes the worker watch a tap queue (published before this call).
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        match self {
            Registrar::Epoll(epoll) => epoll.add(fd, token),
            Registrar::Uring(wake) => wake.wake(),
        }
    }

    /// Makes the worker stop watching a tap queue (unpublished before this
    /// call): with io_uring the worker cancels its poll and lets the queue
    /// go once the cancellation completed.
    pub fn delete(&self, fd: RawFd) {
        match self {
            Registrar::Epoll(epoll) => {
                let _ = epoll.delete(fd);
            }
            Registrar::Uring(wake) => {
                let _ = wake.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> Result<(), Unavailable> {
        Err(Unavailable::Missing("POLL_ADD"))
    }

    #[test]
    fn auto_falls_back_to_epoll_and_says_why() {
        let choice = decide(IoMode::Auto, missing).expect("auto never fails");
        assert_eq!(choice.backend, IoBackend::Epoll);
        assert_eq!(
            choice.describe(),
            "epoll (io_uring unavailable: operation POLL_ADD not supported by this kernel)"
        );
        let choice = decide(IoMode::Auto, || Ok(())).expect("auto");
        assert_eq!(choice.backend, IoBackend::Uring);
        assert_eq!(choice.describe(), "io_uring");
    }

    #[test]
    fn forced_modes_do_not_fall_back() {
        assert!(decide(IoMode::Uring, missing).is_err());
        let choice = decide(IoMode::Epoll, || panic!("not checked")).expect("epoll");
        assert_eq!(choice.describe(), "epoll");
    }

    #[test]
    fn the_idle_policy_is_shown_after_the_back_end() {
        let mut choice = decide(IoMode::Auto, missing).expect("auto never fails");
        choice.idle = IdlePolicy::BusyPoll;
        assert_eq!(
            choice.describe(),
            "epoll, busy-poll (io_uring unavailable: operation POLL_ADD not supported by this kernel)"
        );
        let mut choice = decide(IoMode::Uring, || Ok(())).expect("uring");
        choice.idle = IdlePolicy::Linger(std::time::Duration::from_micros(50));
        assert_eq!(choice.describe(), "io_uring, linger 50 µs");
    }
}

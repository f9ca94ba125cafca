//! [`HealthBook`]: what the probes found, per peer (pure: no I/O, no clock; the
//! caller passes the time of each result in).
//!
//! A peer is *up* after one successful probe and *down* after
//! [`failure_threshold`](HealthBook::new) consecutive failures (3 by default): one lost
//! probe on a busy node must not flap the peer. Until either happens after the peer is
//! added, its reachability is unknown (`None`). Results carry the target they probed;
//! one for a target that has since changed or been removed is ignored, so a probe in
//! flight during [`set_targets`](HealthBook::set_targets) cannot mark the new address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::peer::PeerHealth;

/// Consecutive failures after which a peer is down, unless configured otherwise.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;

/// A change of a peer's reachability, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It became reachable.
    Up,
    /// It became unreachable.
    Down,
}

/// One peer's record.
#[derive(Debug, Clone)]
struct Entry {
    target: SocketAddr,
    reachable: Option<bool>,
    consecutive_failures: u32,
    last_rtt: Option<Duration>,
    last_success: Option<Instant>,
    last_error: Option<String>,
}

impl Entry {
    fn new(target: SocketAddr) -> Self {
        Self {
            target,
            reachable: None,
            consecutive_failures: 0,
            last_rtt: None,
            last_success: None,
            last_error: None,
        }
    }
}

/// Per peer name, the probe history that decides reachability.
#[derive(Debug, Clone)]
pub struct HealthBook {
    failure_threshold: u32,
    peers: BTreeMap<String, Entry>,
}

impl Default for HealthBook {
    fn default() -> Self {
        Self::new(DEFAULT_FAILURE_THRESHOLD)
    }
}

impl HealthBook {
    /// An empty book; a peer is down after `failure_threshold` failures (at least 1).
    pub fn new(failure_threshold: u32) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            peers: BTreeMap::new(),
        }
    }

    /// Makes `targets` the peers to probe. A peer whose target is unchanged keeps its
    /// history; a new peer or a changed target starts unknown; peers not listed are
    /// dropped. With a name listed twice, the last entry counts.
    pub fn set_targets(&mut self, targets: &[(String, SocketAddr)]) {
        let wanted: BTreeMap<&str, SocketAddr> = targets
            .iter()
            .map(|(name, addr)| (name.as_str(), *addr))
            .collect();
        self.peers
            .retain(|name, entry| wanted.get(name.as_str()) == Some(&entry.target));
        for (name, target) in wanted {
            self.peers
                .entry(name.to_owned())
                .or_insert_with(|| Entry::new(target));
        }
    }

    /// The peers to probe, by name.
    pub fn targets(&self) -> Vec<(String, SocketAddr)> {
        self.peers
            .iter()
            .map(|(name, entry)| (name.clone(), entry.target))
            .collect()
    }

    /// Records the outcome of probing `name` at `target` (the RTT, or why it failed),
    /// finished at `at`. Returns the reachability change it caused, if any. A result
    /// for a peer or target no longer in the book is ignored.
    pub fn record(
        &mut self,
        name: &str,
        target: SocketAddr,
        outcome: Result<Duration, String>,
        at: Instant,
    ) -> Option<Transition> {
        let entry = self.peers.get_mut(name).filter(|e| e.target == target)?;
        let before = entry.reachable;
        match outcome {
            Ok(rtt) => {
                entry.consecutive_failures = 0;
                entry.last_rtt = Some(rtt);
                entry.last_success = Some(at);
                entry.last_error = None;
                entry.reachable = Some(true);
            }
            Err(error) => {
                entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
                entry.last_error = Some(error);
                if entry.consecutive_failures >= self.failure_threshold {
                    entry.reachable = Some(false);
                }
            }
        }
        match (before, entry.reachable) {
            (Some(true), Some(true)) | (Some(false), Some(false)) => None,
            (_, Some(true)) => Some(Transition::Up),
            (_, Some(false)) => Some(Transition::Down),
            (_, None) => None,
        }
    }

    /// Every peer's read model, by name.
    pub fn peers(&self) -> Vec<PeerHealth> {
        self.peers
            .iter()
            .map(|(name, entry)| read_model(name, entry))
            .collect()
    }

    /// One peer's read model.
    pub fn peer(&self, name: &str) -> Option<PeerHealth> {
        self.peers.get(name).map(|entry| read_model(name, entry))
    }

    /// When `name` last answered a probe.
    pub fn last_success(&self, name: &str) -> Option<Instant> {
        self.peers.get(name)?.last_success
    }

    /// How many probes of `name` failed since its last success (or since it was added).
    pub fn consecutive_failures(&self, name: &str) -> Option<u32> {
        Some(self.peers.get(name)?.consecutive_failures)
    }
}

/// The public view of one entry: the RTT only while the peer counts as up.
fn read_model(name: &str, entry: &Entry) -> PeerHealth {
    PeerHealth {
        name: name.to_owned(),
        target: entry.target,
        reachable: entry.reachable,
        rtt: entry.last_rtt.filter(|_| entry.reachable == Some(true)),
        last_error: entry.last_error.clone(),
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;

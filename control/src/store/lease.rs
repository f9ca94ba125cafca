//! Leases: the clock and the embedded store's lease table (pure, no I/O).
//!
//! A lease is an id with a TTL; keys written with it are deleted when it expires or is
//! revoked. Its holder refreshes it with `keep_alive` more often than the TTL (a third
//! of it is customary). TTLs are whole seconds on both backends, as in etcd: a requested
//! TTL is rounded up, with a minimum of one second (etcd may grant more than asked; its
//! minimum is about two seconds).
//!
//! Deadlines are measured on a [`Clock`] that is monotonic and injectable: the embedded
//! store takes one so that tests can move time by hand ([`ManualClock`]). Deadlines are
//! *not* persisted: what survives a restart is each lease's id and TTL, and reopening a
//! store gives every lease a fresh full TTL. This is what etcd itself does when a leader
//! takes over (its lessor "promotes" all leases to a full TTL), and it is the only honest
//! choice: while the process was down nobody could renew a lease, so expiring it on
//! restart would punish its holder for our outage, and a persisted wall-clock deadline
//! would also be at the mercy of clock steps (NTP, a VM resume).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::LeaseId;

/// A monotonic clock: the time elapsed since an arbitrary, fixed origin.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, as a duration since the clock's origin. Never goes backwards.
    fn now(&self) -> Duration;
}

/// The real monotonic clock ([`Instant`]), origin at construction.
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock starting now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The TTL a lease gets for a requested `ttl`: whole seconds, rounded up, at least one.
pub fn granted_ttl(ttl: Duration) -> Duration {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// One live lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// Its TTL.
    pub ttl: Duration,
    /// When it expires, on the store's [`Clock`].
    pub deadline: Duration,
}

/// The live leases and their deadlines (the embedded store keeps this in memory and the
/// ids and TTLs on disk).
#[derive(Clone, Debug, Default)]
pub struct Leases {
    leases: BTreeMap<LeaseId, LeaseState>,
}

impl Leases {
    /// No leases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or restarts) lease `id` with `ttl`, expiring at `now + ttl`.
    pub fn insert(&mut self, id: LeaseId, ttl: Duration, now: Duration) {
        self.leases.insert(
            id,
            LeaseState {
                ttl,
                deadline: now + ttl,
            },
        );
    }

    /// True if `id` exists and has not expired at `now`.
    pub fn is_alive(&self, id: LeaseId, now: Duration) -> bool {
        self.leases.get(&id).is_some_and(|l| now < l.deadline)
    }

    /// Pushes the deadline of a live lease to `now + ttl`; false if it is gone or expired.
    pub fn refresh(&mut self, id: LeaseId, now: Duration) -> bool {
        match self.leases.get_mut(&id) {
            Some(l) if now < l.deadline => {
                l.deadline = now + l.ttl;
                true
            }
            _ => false,
        }
    }

    /// Forgets `id`; true if it was known (expired or not).
    pub fn remove(&mut self, id: LeaseId) -> bool {
        self.leases.remove(&id).is_some()
    }

    /// True if `id` is known, expired or not.
    pub fn contains(&self, id: LeaseId) -> bool {
        self.leases.contains_key(&id)
    }

    /// The leases whose deadline is at or before `now`, in id order.
    pub fn expired(&self, now: Duration) -> Vec<LeaseId> {
        self.leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The state of lease `id`.
    pub fn get(&self, id: LeaseId) -> Option<LeaseState> {
        self.leases.get(&id).copied()
    }

    /// How many leases are known.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True if there are no leases.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(granted_ttl(Duration::ZERO), S);
        assert_eq!(granted_ttl(Duration::from_millis(1)), S);
        assert_eq!(granted_ttl(S), S);
        assert_eq!(granted_ttl(Duration::from_millis(1001)), 2 * S);
        assert_eq!(granted_ttl(10 * S), 10 * S);
    }

    #[test]
    fn lease_expires_at_its_deadline_not_before() {
        let mut leases = Leases::new();
        let id = LeaseId(7);
        leases.insert(id, 2 * S, 10 * S);
        assert!(leases.is_alive(id, 11 * S));
        assert!(leases.expired(11 * S).is_empty());
        assert!(!leases.is_alive(id, 12 * S));
        assert_eq!(leases.expired(12 * S), vec![id]);
    }

    #[test]
    fn refresh_extends_a_live_lease_only() {
        let mut leases = Leases::new();
        let id = LeaseId(1);
        leases.insert(id, 2 * S, Duration::ZERO);
        assert!(leases.refresh(id, S));
        assert_eq!(leases.get(id).map(|l| l.deadline), Some(3 * S));
        // Too late: an expired lease cannot be revived.
        assert!(!leases.refresh(id, 3 * S));
        assert!(!leases.refresh(LeaseId(2), Duration::ZERO));
    }

    #[test]
    fn remove_forgets() {
        let mut leases = Leases::new();
        leases.insert(LeaseId(1), S, Duration::ZERO);
        assert!(leases.contains(LeaseId(1)));
        assert!(leases.remove(LeaseId(1)));
        assert!(!leases.remove(LeaseId(1)));
        assert!(leases.is_empty());
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        assert_eq!(clock.now(), Duration::ZERO);
        clock.advance(3 * S);
        assert_eq!(clock.now(), 3 * S);
    }
}

//! What a worker does when a round leaves it nothing to do: sleep until
//! traffic comes, keep looking (`--busy-poll`), or linger (the default):
//! keep looking for a short while after its last traffic, giving the CPU
//! to any thread that wants it before each look, then sleep.
//!
//! Lingering is for request and response. A worker that sleeps pays a
//! wake-up (on a VM an interrupt to another CPU, often a VM exit) for every
//! packet that finds it asleep, and a round trip through two nodes passes
//! four workers besides the two pods the kernel's own path wakes too. A
//! reply that comes back within the linger finds its worker awake. Under load the
//! worker is awake anyway; idle, it sleeps as before, so the cost is at most
//! one linger of polling per burst of traffic, and what it polls with it
//! yields to anything runnable.
//!
//! Pure: the caller passes how long ago its last traffic was.

use std::time::Duration;

/// How a worker waits when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Sleep until traffic comes.
    Sleep,
    /// Keep looking for this long after the last traffic, yielding the CPU
    /// before each look; then sleep.
    Linger(Duration),
    /// Never sleep (`--busy-poll`): a core per worker.
    BusyPoll,
}

/// The next wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Look without sleeping, first yielding the CPU if asked.
    Look {
        /// Give the CPU to a runnable thread before looking.
        yield_first: bool,
    },
    /// Sleep until traffic (or the worker's periodic wake-up).
    Sleep,
}

impl IdlePolicy {
    /// The policy of the dataplane's flags: `--busy-poll` wins; a linger of
    /// zero is no linger.
    pub fn from_flags(busy_poll: bool, linger: Duration) -> IdlePolicy {
        if busy_poll {
            IdlePolicy::BusyPoll
        } else if linger.is_zero() {
            IdlePolicy::Sleep
        } else {
            IdlePolicy::Linger(linger)
        }
    }

    /// How to wait, `since_traffic` after the last round that found
    /// traffic (`None`: none yet).
    pub fn wait(self, since_traffic: Option<Duration>) -> Wait {
        match self {
            IdlePolicy::BusyPoll => Wait::Look { yield_first: false },
            IdlePolicy::Linger(linger) if since_traffic.is_some_and(|t| t < linger) => {
                Wait::Look { yield_first: true }
            }
            IdlePolicy::Linger(_) | IdlePolicy::Sleep => Wait::Sleep,
        }
    }

    /// What `tweed status` and the log add after the I/O back end:
    /// `, busy-poll`, `, linger 50 µs` or nothing.
    pub fn suffix(self) -> String {
        match self {
            IdlePolicy::Sleep => String::new(),
            IdlePolicy::Linger(d) => format!(", linger {} µs", d.as_micros()),
            IdlePolicy::BusyPoll => ", busy-poll".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: fn(u64) -> Duration = Duration::from_micros;

    #[test]
    fn busy_poll_wins_over_a_linger_and_a_zero_linger_is_none() {
        assert_eq!(IdlePolicy::from_flags(true, US(50)), IdlePolicy::BusyPoll);
        assert_eq!(IdlePolicy::from_flags(false, US(0)), IdlePolicy::Sleep);
        assert_eq!(
            IdlePolicy::from_flags(false, US(50)),
            IdlePolicy::Linger(US(50))
        );
    }

    #[test]
    fn a_lingering_worker_looks_until_the_linger_is_over_then_sleeps() {
        let policy = IdlePolicy::Linger(US(50));
        let look = Wait::Look { yield_first: true };
        assert_eq!(policy.wait(Some(US(0))), look);
        assert_eq!(policy.wait(Some(US(49))), look);
        assert_eq!(policy.wait(Some(US(50))), Wait::Sleep);
        assert_eq!(policy.wait(Some(US(10_000))), Wait::Sleep);
        // No traffic yet: nothing to linger after.
        assert_eq!(policy.wait(None), Wait::Sleep);
    }

    #[test]
    fn busy_poll_never_sleeps_nor_yields_and_sleep_always_sleeps() {
        for since in [None, Some(US(0)), Some(US(1_000_000))] {
            assert_eq!(
                IdlePolicy::BusyPoll.wait(since),
                Wait::Look { yield_first: false }
            );
            assert_eq!(IdlePolicy::Sleep.wait(since), Wait::Sleep);
        }
    }

    #[test]
    fn the_suffix_names_the_policy() {
        assert_eq!(IdlePolicy::Sleep.suffix(), "");
        assert_eq!(IdlePolicy::Linger(US(50)).suffix(), ", linger 50 µs");
        assert_eq!(IdlePolicy::BusyPoll.suffix(), ", busy-poll");
    }
}

//! How long a watch loop waits before it tries the API server again:
//! doubling from [`FIRST`] up to [`MOST`], back to the start after a
//! success. Pure.

use std::time::Duration;

/// The first wait after a success.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest wait.
pub const MOST: Duration = Duration::from_secs(8);

/// The backoff of one loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next try, and the one after it doubles.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MOST);
        wait
    }

    /// The API server answered: the next failure waits [`FIRST`] again.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        b.reset();
        assert_eq!(b.next_wait(), FIRST);
    }
}

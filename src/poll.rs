//! Waiting for a condition with a deadline, instead of sleeping a guessed time.

use std::time::{Duration, Instant};

/// How often a condition is re-checked.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Some`, or `None` once `timeout` has passed.
/// `check` runs at least once.
pub fn until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(INTERVAL);
    }
}

/// Calls `check` until it returns true; false once `timeout` has passed.
pub fn wait(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    until(timeout, || check().then_some(())).is_some()
}

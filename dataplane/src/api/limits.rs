//! What one API server lets its clients take: connections, time and
//! memory. Shared by both servers (this dataplane's, std threads, and the
//! control daemon's, tokio tasks); no I/O here.
//!
//! - At most [`Limits::max_connections`] connections are served at once;
//!   one more is answered with an error and closed, so a client that opens
//!   thousands (or leaves them open) costs a bounded number of threads.
//! - A request line must arrive whole within [`Limits::request_timeout`] of
//!   its first byte, and a connection with no request in progress is closed
//!   after [`Limits::idle_timeout`]: a half-sent request cannot hold a
//!   connection forever.
//! - A line longer than [`Limits::max_line`] is refused.
//! - All connections' partial lines together may hold at most
//!   [`Limits::buffer_budget`] bytes beyond [`FREE_BYTES`] each: a line
//!   that would pass it is refused as "busy", so the memory the servers
//!   spend on requests is bounded whatever the number of clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The bytes of a partial line each connection may hold without drawing on
/// the shared budget (most requests are a few hundred bytes).
pub const FREE_BYTES: usize = 64 << 10;

/// One server's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line, in bytes.
    pub max_line: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a request line may take to arrive, from its first byte.
    pub request_timeout: Duration,
    /// How long a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// The bytes all partial lines together may hold beyond [`FREE_BYTES`]
    /// each.
    pub buffer_budget: usize,
}

/// Counts the connections and buffered bytes of one server.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    connections: AtomicUsize,
    buffered: AtomicUsize,
}

impl Gate {
    /// A gate for `limits`, with nothing admitted yet.
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            connections: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
        })
    }

    /// The bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections admitted now.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Bytes charged to the budget now.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::SeqCst)
    }

    /// Admits one more connection, or `None` at the cap. The admission is
    /// given back when dropped.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let max = self.limits.max_connections;
        self.connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Admission {
            gate: Arc::clone(self),
            charged: 0,
        })
    }
}

/// One admitted connection: its place under the cap and what its partial
/// line has drawn from the budget.
#[derive(Debug)]
pub struct Admission {
    gate: Arc<Gate>,
    charged: usize,
}

impl Admission {
    /// Accounts this connection's partial line growing to `len` bytes; false
    /// (nothing charged) if the budget cannot take it.
    pub fn charge(&mut self, len: usize) -> bool {
        let want = len.saturating_sub(FREE_BYTES);
        if want <= self.charged {
            return true;
        }
        let more = want - self.charged;
        let budget = self.gate.limits.buffer_budget;
        let charged = self
            .gate
            .buffered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                n.checked_add(more).filter(|&total| total <= budget)
            });
        if charged.is_err() {
            return false;
        }
        self.charged = want;
        true
    }

    /// The line was handled (or dropped): gives its bytes back.
    pub fn release(&mut self) {
        self.gate.buffered.fetch_sub(self.charged, Ordering::SeqCst);
        self.charged = 0;
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.release();
        self.gate.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The answer to a connection over the cap.
pub fn too_many(max: usize, speaker: &str) -> String {
    format!(
        "the {speaker} serves at most {max} connections at once; close idle connections or try again"
    )
}

/// The answer to a line the budget cannot take.
pub fn busy(budget: usize, speaker: &str) -> String {
    format!(
        "the {speaker} is busy reading other large requests ({} MiB in all at most); try again",
        budget >> 20
    )
}

/// The answer to a request line that did not arrive in time.
pub fn too_slow(timeout: Duration) -> String {
    format!(
        "the request line did not arrive whole within {}s of its first byte; closing the connection",
        timeout.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, buffer_budget: usize) -> Limits {
        Limits {
            max_line: 1 << 20,
            max_connections,
            request_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            buffer_budget,
        }
    }

    #[test]
    fn admissions_stop_at_the_cap_and_come_back_when_dropped() {
        let gate = Gate::new(limits(2, 0));
        let a = gate.admit().expect("first");
        let b = gate.admit().expect("second");
        assert!(gate.admit().is_none(), "over the cap");
        assert_eq!(gate.connections(), 2);
        drop(a);
        let c = gate.admit().expect("a place came back");
        drop((b, c));
        assert_eq!(gate.connections(), 0);
    }

    #[test]
    fn lines_draw_on_the_budget_beyond_their_free_bytes() {
        let gate = Gate::new(limits(4, 100));
        let mut a = gate.admit().expect("a");
        let mut b = gate.admit().expect("b");
        assert!(a.charge(FREE_BYTES), "free");
        assert_eq!(gate.buffered(), 0);
        assert!(a.charge(FREE_BYTES + 60));
        assert!(a.charge(FREE_BYTES + 30), "shrinking charges nothing");
        assert_eq!(gate.buffered(), 60);
        assert!(!b.charge(FREE_BYTES + 50), "60 + 50 > 100");
        assert_eq!(gate.buffered(), 60, "a refusal charges nothing");
        assert!(b.charge(FREE_BYTES + 40));
        a.release();
        assert_eq!(gate.buffered(), 40);
        drop(b);
        assert_eq!(gate.buffered(), 0, "dropping gives the charge back");
    }
}

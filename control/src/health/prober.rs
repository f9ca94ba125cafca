//! Probing peers' health ports: [`probe`] one target, [`run`] all targets of a
//! [`HealthBook`] every interval.
//!
//! A probe is a TCP connect to the peer's overlay address followed by reading its
//! greeting (`tweed <name>\n`, see [`super::responder`]). The RTT is the time the
//! connect took: one round trip of SYN and SYN-ACK through the overlay, not skewed by
//! the peer's scheduling of its accept loop. The greeting must arrive within the same
//! overall timeout; it proves the far end is tweed and not a stray listener.

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;

use super::book::{HealthBook, Transition};

/// The longest greeting read, in bytes.
const MAX_GREETING: usize = 256;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connect was refused or failed (no route, reset).
    #[error("connecting to the health port {target} failed")]
    Connect {
        /// The probed address.
        target: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The connect did not complete in time (packets lost on the way or back).
    #[error("connecting to the health port {target} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The probed address.
        target: SocketAddr,
        /// The probe's timeout.
        timeout: Duration,
    },
    /// Reading the greeting failed.
    #[error("reading the greeting of the health port {target} failed")]
    Read {
        /// The probed address.
        target: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The connection opened but no greeting arrived in time.
    #[error("the health port {target} sent no greeting within {timeout:?}")]
    GreetingTimeout {
        /// The probed address.
        target: SocketAddr,
        /// The probe's timeout.
        timeout: Duration,
    },
    /// Something answered, but not tweed's greeting.
    #[error("the health port {target} answered {answer:?}, not `tweed <node>`")]
    NotTweed {
        /// The probed address.
        target: SocketAddr,
        /// What it sent (at most the first line, lossily decoded).
        answer: String,
    },
}

/// The node name in a greeting, if `bytes` (up to its first line feed) is one.
pub fn parse_greeting(bytes: &[u8]) -> Option<&str> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let name = line.strip_prefix("tweed ")?;
    (!name.is_empty()).then_some(name)
}

/// Connects to `target`, reads its greeting, and returns the time the connect took.
/// The whole probe is bounded by `timeout`.
pub async fn probe(target: SocketAddr, timeout: Duration) -> Result<Duration, ProbeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let start = Instant::now();
    let mut stream = tokio::time::timeout_at(deadline, TcpStream::connect(target))
        .await
        .map_err(|_| ProbeError::ConnectTimeout { target, timeout })?
        .map_err(|source| ProbeError::Connect { target, source })?;
    let rtt = start.elapsed();
    let answer = tokio::time::timeout_at(deadline, read_line(&mut stream))
        .await
        .map_err(|_| ProbeError::GreetingTimeout { target, timeout })?
        .map_err(|source| ProbeError::Read { target, source })?;
    match parse_greeting(&answer) {
        Some(_) => Ok(rtt),
        None => {
            let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
            let answer = String::from_utf8_lossy(line).into_owned();
            Err(ProbeError::NotTweed { target, answer })
        }
    }
}

/// Reads until a line feed, the end of the stream or [`MAX_GREETING`] bytes.
async fn read_line(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; MAX_GREETING];
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    Ok(buf)
}

/// `error` and its causes, joined by `: `, for a one-line report.
pub fn describe(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Probes every target of `book` concurrently, every `interval`, each bounded by
/// `timeout`, recording results as they arrive, until `shutdown` completes.
/// Reachability changes are logged.
pub async fn run(
    book: Arc<Mutex<HealthBook>>,
    interval: Duration,
    timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        let targets = lock(&book).targets();
        let mut round: FuturesUnordered<_> = targets
            .into_iter()
            .map(|(name, target)| async move {
                let outcome = probe(target, timeout).await;
                (name, target, outcome)
            })
            .collect();
        loop {
            let (name, target, outcome) = tokio::select! {
                () = &mut shutdown => return,
                next = round.next() => match next {
                    Some(result) => result,
                    None => break,
                },
            };
            let outcome = outcome.map_err(|e| describe(&e));
            let error = outcome.as_ref().err().cloned();
            match lock(&book).record(&name, target, outcome, Instant::now()) {
                Some(Transition::Up) => {
                    tracing::info!(peer = %name, %target, "health: peer is reachable")
                }
                Some(Transition::Down) => tracing::warn!(
                    peer = %name, %target, error = error.as_deref().unwrap_or_default(),
                    "health: peer is unreachable"
                ),
                None => {}
            }
        }
    }
}

/// The book, also after a panic elsewhere poisoned it (its state stays consistent:
/// every method finishes its update before returning).
fn lock(book: &Mutex<HealthBook>) -> MutexGuard<'_, HealthBook> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[path = "prober_tests.rs"]
mod tests;

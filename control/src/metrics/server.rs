//! The metrics endpoint: a minimal HTTP/1.1 server over tokio (I/O only; the
//! decisions are in [`super::request`]).
//!
//! Each connection gets one answer and is closed. A client that sends a head over
//! [`MAX_HEAD`](super::request::MAX_HEAD) bytes, or does not finish it within
//! [`Limits::head_timeout`], is dropped without an answer, so slow or hostile clients
//! cannot pin tasks or memory. The exposition is produced on demand by the caller's
//! [`MetricsSource`] (typically: ask the dataplane, lock the health book, render).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::request::{self, Head, METRICS_CONTENT_TYPE, Route};

/// Produces the exposition text for one scrape.
pub type MetricsSource = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// How long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send the whole request head.
    pub head_timeout: Duration,
    /// Time to take the whole response.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves `/metrics` on `listener` until `shutdown` completes, with default [`Limits`].
pub async fn serve(
    listener: TcpListener,
    source: MetricsSource,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, source, Limits::default(), shutdown).await;
}

/// [`serve`] with explicit limits. Connections already accepted finish on their own.
pub async fn serve_with(
    listener: TcpListener,
    source: MetricsSource,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let source = source.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, source, limits).await {
                            tracing::debug!(%peer, error = %e, "metrics: connection dropped");
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "metrics: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Why a connection got no answer.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    /// Reading the request head failed.
    #[error("reading the request head failed")]
    Read(#[source] io::Error),
    /// The client closed before the head was complete.
    #[error("the client closed before the end of the request head")]
    Closed,
    /// The head grew past the limit.
    #[error("the request head is over {} bytes", request::MAX_HEAD)]
    TooLarge,
    /// The head did not arrive in time.
    #[error("the request head did not arrive within {0:?}")]
    HeadTimeout(Duration),
    /// Writing the response failed.
    #[error("writing the response failed")]
    Write(#[source] io::Error),
    /// The client did not take the response in time.
    #[error("the client did not take the response within {0:?}")]
    WriteTimeout(Duration),
}

/// Reads one request head from `stream` and answers it.
async fn answer(
    mut stream: TcpStream,
    source: MetricsSource,
    limits: Limits,
) -> Result<(), ConnectionError> {
    let head = tokio::time::timeout(limits.head_timeout, read_head(&mut stream))
        .await
        .map_err(|_| ConnectionError::HeadTimeout(limits.head_timeout))??;
    let bytes = match request::route(&head) {
        Route::Metrics => {
            let body = source().await;
            request::response(200, "OK", METRICS_CONTENT_TYPE, &body)
        }
        Route::Index => request::response(200, "OK", "text/plain", request::INDEX_BODY),
        Route::NotFound => request::response(404, "Not Found", "text/plain", "not found\n"),
        Route::MethodNotAllowed => {
            request::response(405, "Method Not Allowed", "text/plain", "only GET\n")
        }
        Route::BadRequest => request::response(400, "Bad Request", "text/plain", "bad request\n"),
    };
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(limits.write_timeout, write)
        .await
        .map_err(|_| ConnectionError::WriteTimeout(limits.write_timeout))?
        .map_err(ConnectionError::Write)
}

/// Reads until the request head is complete; returns the head.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, ConnectionError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(ConnectionError::Read)?;
        if n == 0 {
            return Err(ConnectionError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match request::head_status(&buf) {
            Head::Complete(end) => {
                buf.truncate(end);
                return Ok(buf);
            }
            Head::TooLarge => return Err(ConnectionError::TooLarge),
            Head::Incomplete => {}
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

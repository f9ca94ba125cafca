//! The metrics endpoint: hyper's HTTP/1.1 server over tokio (I/O only; which
//! answer a request gets is decided in [`super::request`]). Its serving loop,
//! [`serve_http`], also serves native Services' health check node ports.
//!
//! Each connection gets one answer and is closed (no keep-alive). A client
//! whose request head is over [`MAX_HEAD`] bytes gets 431; one that does not
//! finish its head within [`Limits::head_timeout`], or does not take the
//! answer within [`Limits::write_timeout`] after that, is dropped, so slow or
//! hostile clients cannot pin tasks or memory. The exposition is produced on
//! demand by the caller's [`MetricsSource`] (typically: ask the dataplane, lock
//! the health book, render).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::render::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use super::request::{self, Route};

/// The longest request head (request line and headers) read, in bytes
/// (hyper's smallest read buffer).
pub const MAX_HEAD: usize = 8 * 1024;

/// Produces the exposition text for one scrape.
pub type MetricsSource = Arc<dyn Fn() -> BoxFuture<'static, String> + Send + Sync>;

/// How long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send the whole request head.
    pub head_timeout: Duration,
    /// Time to take the whole response, after the head's time.
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
    let handler = move |req| answer(req, source.clone());
    serve_http(listener, limits, "metrics", handler, shutdown).await;
}

/// One answer.
pub type Answer = Result<Response<Full<Bytes>>, Infallible>;

/// Serves HTTP/1.1 on `listener` until `shutdown` completes: each connection
/// gets one answer from `handler` and is closed, within `limits`; `what`
/// names the server in the log.
pub async fn serve_http<H, F>(
    listener: TcpListener,
    limits: Limits,
    what: &'static str,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let service = service_fn(handler);
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(limits.head_timeout)
                            .max_buf_size(MAX_HEAD)
                            .keep_alive(false)
                            .serve_connection(TokioIo::new(stream), service);
                        let deadline = limits.head_timeout + limits.write_timeout;
                        match tokio::time::timeout(deadline, connection).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "{what}: connection failed");
                            }
                            Err(_) => {
                                tracing::debug!(%peer, ?deadline, "{what}: connection over its time, dropped");
                            }
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "{what}: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The answer to `req`.
async fn answer(req: Request<Incoming>, source: MetricsSource) -> Answer {
    let route = request::route(req.method().as_str(), req.uri().path());
    let (status, content_type, body) = match route.fixed() {
        None => (StatusCode::OK, METRICS_CONTENT_TYPE, source().await),
        Some(fixed) => (
            StatusCode::from_u16(fixed.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            fixed.content_type,
            fixed.body.to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if route == Route::MethodNotAllowed {
        headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    Ok(response)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

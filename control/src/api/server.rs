//! The control socket: accepts connections, authorises the peer by uid,
//! reads request lines, checks them and hands them to a [`Handler`], writes
//! one reply line per request, in order.
//!
//! Tokio, because the daemon is async: one accept task, one task per
//! connection, owned by a [`JoinSet`] inside the accept task so that stopping
//! the accept task (dropping the [`ServerHandle`]) ends every connection too.
//! A connection handles one request at a time, so its replies come back in
//! the order of its requests.
//!
//! [`LIMITS`] bound what clients can take (see
//! `tweed_dataplane::api::limits`): 256 connections at once, a request line
//! of at most 16 MiB that must arrive within 10 s of its first byte, idle
//! connections closed after 5 minutes, and 64 MiB for all partial lines
//! together. The socket file is created with mode 0600 (no window in which
//! others may connect).
//!
//! A request reaches the handler only if the peer is root or the server's
//! own uid, the line is JSON of the right version and shape, and
//! [`validate::request`] passes; everything else is answered here.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tweed_api::envelope;
use tweed_api::line::{self, Line};
use tweed_dataplane::api::limits::{self, Admission, Gate, Limits};
use tweed_sys::cred::{peer_pid, peer_uid};
use tweed_sys::umask::bind_owner_only;

use super::codec::encode_response;
use super::proto::{ApiError, Request, ResponseBody, SPEAKER};
use super::validate;

/// The longest request line accepted; a longer one is answered with an
/// error and the connection closed.
pub const MAX_LINE: usize = 16 << 20;

/// The control socket's bounds.
pub const LIMITS: Limits = Limits {
    max_line: MAX_LINE,
    max_connections: 256,
    request_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(300),
    buffer_budget: 64 << 20,
};

/// A client that does not read its reply for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Carries out requests that passed every stateless check.
pub trait Handler: Send + Sync + 'static {
    /// Does what `request` asks; on error changes nothing.
    fn handle(&self, request: Request) -> BoxFuture<'_, Result<ResponseBody, ApiError>>;

    /// [`handle`](Self::handle), knowing who asked (for what refers to the
    /// peer's own resources, like `pod_add.netns_fd`).
    fn handle_from(
        &self,
        request: Request,
        peer: Peer,
    ) -> BoxFuture<'_, Result<ResponseBody, ApiError>> {
        let _ = peer;
        self.handle(request)
    }
}

/// The process at the other end of a connection, as the kernel recorded it
/// at `connect` (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its pid in the server's pid namespace; `None` if the kernel gave none
    /// (the peer's pid namespace does not show in ours).
    pub pid: Option<u32>,
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another server answers on the socket.
    #[error("another server is listening on {}; stop it first", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something other than a socket is in the way.
    #[error("{} exists and is not a socket; remove it or choose another run directory", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A step of setting up the socket failed.
    #[error("{step} {}: {source}", path.display())]
    Io {
        /// What was being done.
        step: &'static str,
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A running server. Dropping it stops the accept task and every
/// connection (at their next await point) and removes the socket file.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the server, waits until its listener is closed and removes the
    /// socket file.
    pub async fn stop(mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            // The result is the cancellation (or a panic, already reported).
            let _ = accept.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `path` (replacing a stale socket file,
/// refusing if another server answers there), makes it mode 0600 and serves
/// it on the current tokio runtime until the handle is dropped.
pub async fn serve(path: &Path, handler: Arc<dyn Handler>) -> Result<ServerHandle, ServeError> {
    serve_with(path, handler, LIMITS).await
}

/// [`serve`] with other bounds than [`LIMITS`] (tests use small ones).
pub async fn serve_with(
    path: &Path,
    handler: Arc<dyn Handler>,
    limits: Limits,
) -> Result<ServerHandle, ServeError> {
    let step = |step: &'static str| {
        move |source: io::Error| ServeError::Io {
            step,
            path: path.to_owned(),
            source,
        }
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(ServeError::InUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(step("removing the stale socket"))?;
        }
        Ok(_) => {
            return Err(ServeError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(step("inspecting")(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(step("creating the directory of"))?;
    }
    let listener = bind_owner_only(path)
        .and_then(|l| {
            l.set_nonblocking(true)?;
            UnixListener::from_std(l)
        })
        .map_err(step("binding"))?;
    // The socket file is created with the effective uid: ours.
    let own_uid = std::fs::metadata(path).map_err(step("inspecting"))?.uid();
    let accept = tokio::spawn(accept_loop(listener, handler, Gate::new(limits), own_uid));
    Ok(ServerHandle {
        path: path.to_owned(),
        accept: Some(accept),
    })
}

async fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn Handler>,
    gate: Arc<Gate>,
    own_uid: u32,
) {
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(admission) = gate.admit() else {
                        let max = gate.limits().max_connections;
                        refused += 1;
                        // A flood is logged, not every connection of it.
                        if refused.is_power_of_two() {
                            tracing::warn!(max, refused, "control api: refused connections over the cap");
                        }
                        refuse(stream, &limits::too_many(max, "daemon"));
                        continue;
                    };
                    let handler = Arc::clone(&handler);
                    let limits = *gate.limits();
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, &*handler, admission, &limits, own_uid).await {
                            tracing::debug!("control api: connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of fds or memory: back off rather than spin.
                    tracing::warn!("control api: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers a connection that will not be served with one error line and
/// closes it, without waiting on the client.
fn refuse(stream: UnixStream, message: &str) {
    let mut line = encode_response(&Err(ApiError::unavailable("connect", message)));
    line.push('\n');
    let _ = stream.try_write(line.as_bytes());
}

/// How reading a request line ended.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// As [`line::feed`] says.
    Line(Line),
    /// No request began within the idle timeout.
    Idle,
    /// A request began and did not end within the request timeout.
    TooSlow,
    /// The line would pass the shared buffer budget.
    Busy,
}

/// Reads one line into `buf` (cleared first), without its newline or a
/// trailing `\r`, within the bounds of `limits` and the budget of
/// `admission`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    admission: &mut Admission,
    limits: &Limits,
) -> io::Result<Read> {
    buf.clear();
    // The first bytes may take the idle timeout; the rest of the line, the
    // request timeout from there.
    let mut deadline = tokio::time::Instant::now() + limits.idle_timeout;
    let mut started = false;
    loop {
        let available = match tokio::time::timeout_at(deadline, reader.fill_buf()).await {
            Ok(available) => available?,
            Err(_) if started => return Ok(Read::TooSlow),
            Err(_) => return Ok(Read::Idle),
        };
        if !started && !available.is_empty() {
            started = true;
            deadline = tokio::time::Instant::now() + limits.request_timeout;
        }
        let (used, end) = line::feed(buf, available, limits.max_line);
        reader.consume(used);
        if !admission.charge(buf.len()) {
            return Ok(Read::Busy);
        }
        if let Some(end) = end {
            return Ok(Read::Line(end));
        }
    }
}

async fn connection(
    stream: UnixStream,
    handler: &dyn Handler,
    mut admission: Admission,
    limits: &Limits,
    own_uid: u32,
) -> io::Result<()> {
    let allowed: Result<(), ApiError> = envelope::authorise(peer_uid(stream.as_raw_fd()), own_uid);
    let peer = Peer {
        pid: peer_pid(stream.as_raw_fd())
            .ok()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0),
    };
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        let read = read_line(&mut reader, &mut buf, &mut admission, limits).await?;
        let reply = match read {
            Read::Idle | Read::Line(Line::Eof) => return Ok(()),
            Read::TooSlow => {
                let error = ApiError::invalid(limits::too_slow(limits.request_timeout));
                return write_reply(&mut writer, &Err(error)).await;
            }
            Read::Busy => {
                let busy = limits::busy(limits.buffer_budget, "daemon");
                let error = ApiError::unavailable("read the request", busy);
                return write_reply(&mut writer, &Err(error)).await;
            }
            Read::Line(Line::TooLong) => {
                return write_reply(&mut writer, &Err(envelope::too_long(limits.max_line))).await;
            }
            Read::Line(Line::Complete) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Read::Line(Line::Complete) => {
                if let Err(error) = &allowed {
                    tracing::warn!("control api: refused a request: {error}");
                    return write_reply(&mut writer, &Err(error.clone())).await;
                }
                answer(&buf, handler, peer).await
            }
        };
        // A large line's buffer is not kept while the connection idles.
        if buf.capacity() > limits::FREE_BYTES {
            buf = Vec::new();
        }
        admission.release();
        write_reply(&mut writer, &reply).await?;
    }
}

/// Decodes, checks and carries out one request line.
async fn answer(line: &[u8], handler: &dyn Handler, peer: Peer) -> Result<ResponseBody, ApiError> {
    let request: Request = envelope::decode_request_bytes(line, SPEAKER)?;
    validate::request(&request)?;
    let op = request.op();
    let handled = AssertUnwindSafe(async move { handler.handle_from(request, peer).await })
        .catch_unwind()
        .await;
    handled.unwrap_or_else(|_| {
        tracing::error!("control api: the handler panicked on {}", op.name());
        Err(envelope::handler_panicked(op.name(), SPEAKER))
    })
}

async fn write_reply(
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Result<ResponseBody, ApiError>,
) -> io::Result<()> {
    let mut line = encode_response(reply);
    line.push('\n');
    let write = async {
        writer.write_all(line.as_bytes()).await?;
        writer.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client did not read its reply"))?
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

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
//! A request reaches the handler only if the peer is root or the server's
//! own uid, the line is JSON of the right version and shape, and
//! [`validate::request`] passes; everything else is answered here.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tweed_dataplane::api::envelope;
use tweed_dataplane::api::line::{self, Line};
use tweed_dataplane::sys::cred::peer_uid;

use super::codec::encode_response;
use super::proto::{ApiError, Request, ResponseBody, VERSION};
use super::validate;

/// The longest request line accepted; a longer one is answered with an
/// error and the connection closed.
pub const MAX_LINE: usize = 16 << 20;

/// A client that does not read its reply for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Carries out requests that passed every stateless check.
pub trait Handler: Send + Sync + 'static {
    /// Does what `request` asks; on error changes nothing.
    fn handle(&self, request: Request) -> BoxFuture<'_, Result<ResponseBody, ApiError>>;
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
    let listener = UnixListener::bind(path).map_err(step("binding"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(step("setting mode 0600 on"))?;
    // The socket file is created with the effective uid: ours.
    let own_uid = std::fs::metadata(path).map_err(step("inspecting"))?.uid();
    let accept = tokio::spawn(accept_loop(listener, handler, own_uid));
    Ok(ServerHandle {
        path: path.to_owned(),
        accept: Some(accept),
    })
}

async fn accept_loop(listener: UnixListener, handler: Arc<dyn Handler>, own_uid: u32) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handler = Arc::clone(&handler);
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, &*handler, own_uid).await {
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

/// Reads one line into `buf` (cleared first), at most [`MAX_LINE`] bytes,
/// without its newline or a trailing `\r`.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    loop {
        let (used, end) = line::feed(buf, reader.fill_buf().await?, MAX_LINE);
        reader.consume(used);
        if let Some(end) = end {
            return Ok(end);
        }
    }
}

async fn connection(stream: UnixStream, handler: &dyn Handler, own_uid: u32) -> io::Result<()> {
    let allowed: Result<(), ApiError> = envelope::authorise(peer_uid(stream.as_raw_fd()), own_uid);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        let reply = match read_line(&mut reader, &mut buf).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                return write_reply(&mut writer, &Err(envelope::too_long(MAX_LINE))).await;
            }
            Line::Complete if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Complete => {
                if let Err(error) = &allowed {
                    tracing::warn!("control api: refused a request: {error}");
                    return write_reply(&mut writer, &Err(error.clone())).await;
                }
                answer(&buf, handler).await
            }
        };
        write_reply(&mut writer, &reply).await?;
    }
}

/// Decodes, checks and carries out one request line.
async fn answer(line: &[u8], handler: &dyn Handler) -> Result<ResponseBody, ApiError> {
    let request: Request = envelope::decode_request_bytes(line, VERSION)?;
    validate::request(&request)?;
    let op = request.op();
    let handled = AssertUnwindSafe(async move { handler.handle(request).await })
        .catch_unwind()
        .await;
    handled.unwrap_or_else(|_| {
        tracing::error!("control api: the handler panicked on {}", op.name());
        Err(envelope::handler_panicked(op.name()))
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

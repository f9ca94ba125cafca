//! The API's Unix socket: accepts connections, authorises the peer by uid,
//! reads request lines, checks them and hands them to a [`Handler`], writes
//! one reply line per request, in order.
//!
//! Plain std threads: one accepting, one per connection. The API is a
//! control path with a handful of clients, so a thread per connection is
//! simpler than an event loop and costs nothing that matters.
//!
//! A request reaches the handler only if the peer is root or the server's
//! own uid, the line is JSON of the right version and shape, and
//! [`validate::request`] passes; everything else is answered here.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::codec::encode_response;
use super::envelope;
use super::line::{self, Line};
use super::proto::{ApiError, Request, ResponseBody, VERSION};
use super::validate;
use crate::sys::cred::peer_uid;

/// The longest request line accepted; a longer one is answered with an
/// error and the connection closed.
pub const MAX_LINE: usize = 16 << 20;

/// How often a connection blocked on reading looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// A client that does not read its replies for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Carries out requests that passed every stateless check.
pub trait Handler: Send + Sync + 'static {
    /// Does what `request` asks; on error changes nothing.
    fn handle(&self, request: Request) -> Result<ResponseBody, ApiError>;
}

/// A running server. Dropping it (or [`ServerHandle::shutdown`]) stops
/// accepting, lets open connections finish within [`POLL`] and removes the
/// socket file.
#[derive(Debug)]
pub struct ServerHandle {
    path: PathBuf,
    shutdown: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the server and removes the socket file.
    pub fn shutdown(self) {}
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// Binds the API socket at `path` (replacing a stale socket file, refusing
/// if another server answers there), makes it mode 0600 and serves it until
/// `shutdown` is set and the accept loop is woken, or the handle is dropped.
pub fn serve(
    path: &Path,
    handler: Arc<dyn Handler>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<ServerHandle> {
    let step = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another server is listening on {}", path.display()),
                ));
            }
            fs::remove_file(path).map_err(|e| step("removing the stale socket", e))?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(step("inspecting", e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| step("creating the directory of", e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| step("binding", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| step("setting mode 0600 on", e))?;
    // The socket file is created with the effective uid: ours.
    let own_uid = fs::metadata(path).map_err(|e| step("inspecting", e))?.uid();

    let flag = Arc::clone(&shutdown);
    let accept = std::thread::Builder::new()
        .name("api-accept".into())
        .spawn(move || accept_loop(&listener, &handler, &flag, own_uid))
        .map_err(|e| step("starting the accept thread for", e))?;
    Ok(ServerHandle {
        path: path.to_owned(),
        shutdown,
        accept: Some(accept),
    })
}

fn accept_loop(
    listener: &UnixListener,
    handler: &Arc<dyn Handler>,
    shutdown: &Arc<AtomicBool>,
    own_uid: u32,
) {
    loop {
        let accepted = listener.accept();
        if shutdown.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let handler = Arc::clone(handler);
                let shutdown = Arc::clone(shutdown);
                let spawned =
                    std::thread::Builder::new()
                        .name("api-conn".into())
                        .spawn(move || {
                            if let Err(e) = connection(stream, &*handler, &shutdown, own_uid) {
                                tracing::debug!("api connection ended: {e}");
                            }
                        });
                if let Err(e) = spawned {
                    tracing::warn!("api: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of fds or memory: back off rather than spin.
                tracing::warn!("api: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Reads one line into `buf` (cleared first), at most [`MAX_LINE`] bytes;
/// `None` if the server is shutting down.
fn read_line(
    reader: &mut BufReader<UnixStream>,
    buf: &mut Vec<u8>,
    shutdown: &AtomicBool,
) -> io::Result<Option<Line>> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if shutdown.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (used, end) = line::feed(buf, available, MAX_LINE);
        reader.consume(used);
        if end.is_some() {
            return Ok(end);
        }
    }
}

fn connection(
    stream: UnixStream,
    handler: &dyn Handler,
    shutdown: &AtomicBool,
    own_uid: u32,
) -> io::Result<()> {
    let allowed: Result<(), ApiError> = envelope::authorise(peer_uid(stream.as_raw_fd()), own_uid);
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        let reply = match read_line(&mut reader, &mut buf, shutdown)? {
            None | Some(Line::Eof) => return Ok(()),
            Some(Line::TooLong) => {
                return write_reply(&mut writer, &Err(envelope::too_long(MAX_LINE)));
            }
            Some(Line::Complete) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Some(Line::Complete) => {
                if let Err(error) = &allowed {
                    tracing::warn!("api: refused a request: {error}");
                    return write_reply(&mut writer, &Err(error.clone()));
                }
                answer(&buf, handler)
            }
        };
        write_reply(&mut writer, &reply)?;
    }
}

/// Decodes, checks and carries out one request line.
fn answer(line: &[u8], handler: &dyn Handler) -> Result<ResponseBody, ApiError> {
    let request: Request = envelope::decode_request_bytes(line, VERSION)?;
    validate::request(&request)?;
    let op = request.op();
    catch_unwind(AssertUnwindSafe(|| handler.handle(request))).unwrap_or_else(|_| {
        tracing::error!("api: the handler panicked on {}", op.name());
        Err(envelope::handler_panicked(op.name()))
    })
}

fn write_reply(writer: &mut UnixStream, reply: &Result<ResponseBody, ApiError>) -> io::Result<()> {
    let mut line = encode_response(reply);
    line.push('\n');
    writer.write_all(line.as_bytes())?;
    writer.flush()
}

//! The API's Unix socket: accepts connections, authorises the peer by uid,
//! reads request lines, checks them and hands them to a [`Handler`], writes
//! one reply line per request, in order.
//!
//! Plain std threads: one accepting, one per connection. The API is a
//! control path with a handful of clients, so a thread per connection is
//! simpler than an event loop, and [`LIMITS`] bound what that costs: at
//! most 64 connections (so 64 threads) at once, a request line of at most
//! 4 MiB that must arrive within 10 s of its first byte, idle connections
//! closed after 5 minutes, and 64 MiB for all partial lines together (see
//! [`super::limits`]).
//!
//! A request reaches the handler only if the peer is root or the server's
//! own uid, the line is JSON of the right version and shape, and
//! [`validate::request`] passes; everything else is answered here.

use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::limits::{self, Admission, Gate, Limits};
use super::validate;
use tweed_api::dataplane::codec::encode_response;
use tweed_api::dataplane::proto::{ApiError, Request, ResponseBody, SPEAKER};
use tweed_api::envelope;
use tweed_api::line::{self, Line};
use tweed_sys::cred::peer_uid;
use tweed_sys::umask::bind_owner_only;

/// The longest request line accepted; a longer one is answered with an
/// error and the connection closed. The largest requests are the daemon's
/// `policy_set_many`, which it cuts into batches well below this.
pub const MAX_LINE: usize = 4 << 20;

/// The dataplane API's bounds.
pub const LIMITS: Limits = Limits {
    max_line: MAX_LINE,
    max_connections: 64,
    request_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(300),
    buffer_budget: 64 << 20,
};

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
    serve_with(path, handler, shutdown, LIMITS)
}

/// [`serve`] with other bounds than [`LIMITS`] (tests use small ones).
pub fn serve_with(
    path: &Path,
    handler: Arc<dyn Handler>,
    shutdown: Arc<AtomicBool>,
    limits: Limits,
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
    // Mode 0600 from the start: no window in which others may connect.
    let listener = bind_owner_only(path).map_err(|e| step("binding", e))?;
    // The socket file is created with the effective uid: ours.
    let own_uid = fs::metadata(path).map_err(|e| step("inspecting", e))?.uid();

    let flag = Arc::clone(&shutdown);
    let gate = Gate::new(limits);
    let accept = std::thread::Builder::new()
        .name("api-accept".into())
        .spawn(move || accept_loop(&listener, &handler, &flag, &gate, own_uid))
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
    gate: &Arc<Gate>,
    own_uid: u32,
) {
    let mut refused: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shutdown.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let Some(admission) = gate.admit() else {
                    let max = gate.limits().max_connections;
                    refused += 1;
                    // A flood is logged, not every connection of it.
                    if refused.is_power_of_two() {
                        tracing::warn!(max, refused, "api: refused connections over the cap");
                    }
                    refuse(stream, &limits::too_many(max, "dataplane"));
                    continue;
                };
                let handler = Arc::clone(handler);
                let shutdown = Arc::clone(shutdown);
                let limits = *gate.limits();
                let spawned =
                    std::thread::Builder::new()
                        .name("api-conn".into())
                        .spawn(move || {
                            let ended = connection(
                                stream, &*handler, &shutdown, admission, &limits, own_uid,
                            );
                            if let Err(e) = ended {
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

/// Answers a connection that will not be served with one error line and
/// closes it, without ever blocking the accept loop.
fn refuse(mut stream: UnixStream, message: &str) {
    let mut line = encode_response(&Err(ApiError::io("connect", message)));
    line.push('\n');
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write_all(line.as_bytes());
    }
}

/// How reading a request line ended.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// As [`line::feed`] says.
    Line(Line),
    /// The server is shutting down.
    Stopped,
    /// No request began within the idle timeout.
    Idle,
    /// A request began and did not end within the request timeout.
    TooSlow,
    /// The line would pass the shared buffer budget.
    Busy,
}

/// Reads one line into `buf` (cleared first), within the bounds of `limits`
/// and the budget of `admission`.
fn read_line(
    reader: &mut BufReader<UnixStream>,
    buf: &mut Vec<u8>,
    shutdown: &AtomicBool,
    admission: &mut Admission,
    limits: &Limits,
) -> io::Result<Read> {
    buf.clear();
    let waiting = Instant::now();
    let mut started: Option<Instant> = None;
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return Ok(Read::Stopped);
        }
        match started {
            Some(at) if at.elapsed() > limits.request_timeout => return Ok(Read::TooSlow),
            None if waiting.elapsed() > limits.idle_timeout => return Ok(Read::Idle),
            _ => {}
        }
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        if !available.is_empty() {
            started.get_or_insert_with(Instant::now);
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

fn connection(
    stream: UnixStream,
    handler: &dyn Handler,
    shutdown: &AtomicBool,
    mut admission: Admission,
    limits: &Limits,
    own_uid: u32,
) -> io::Result<()> {
    let allowed: Result<(), ApiError> = envelope::authorise(peer_uid(stream.as_raw_fd()), own_uid);
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        let read = read_line(&mut reader, &mut buf, shutdown, &mut admission, limits)?;
        let reply = match read {
            Read::Stopped | Read::Idle | Read::Line(Line::Eof) => return Ok(()),
            Read::TooSlow => {
                let error = ApiError::invalid(limits::too_slow(limits.request_timeout));
                return write_reply(&mut writer, &Err(error));
            }
            Read::Busy => {
                let error = ApiError::io(
                    "read the request",
                    limits::busy(limits.buffer_budget, "dataplane"),
                );
                return write_reply(&mut writer, &Err(error));
            }
            Read::Line(Line::TooLong) => {
                return write_reply(&mut writer, &Err(envelope::too_long(limits.max_line)));
            }
            Read::Line(Line::Complete) if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Read::Line(Line::Complete) => {
                if let Err(error) = &allowed {
                    tracing::warn!("api: refused a request: {error}");
                    return write_reply(&mut writer, &Err(error.clone()));
                }
                answer(&buf, handler)
            }
        };
        // A large line's buffer is not kept while the connection idles.
        if buf.capacity() > limits::FREE_BYTES {
            buf = Vec::new();
        }
        admission.release();
        write_reply(&mut writer, &reply)?;
    }
}

/// Decodes, checks and carries out one request line.
fn answer(line: &[u8], handler: &dyn Handler) -> Result<ResponseBody, ApiError> {
    let request: Request = envelope::decode_request_bytes(line, SPEAKER)?;
    validate::request(&request)?;
    let op = request.op();
    catch_unwind(AssertUnwindSafe(|| handler.handle(request))).unwrap_or_else(|_| {
        tracing::error!("api: the handler panicked on {}", op.name());
        Err(envelope::handler_panicked(op.name(), SPEAKER))
    })
}

fn write_reply(writer: &mut UnixStream, reply: &Result<ResponseBody, ApiError>) -> io::Result<()> {
    let mut line = encode_response(reply);
    line.push('\n');
    writer.write_all(line.as_bytes())?;
    writer.flush()
}

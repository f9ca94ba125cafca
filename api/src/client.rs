//! A blocking client of the control socket, for the CLI and the CNI plugin:
//! short-lived synchronous programs that send a request or two and exit.
//!
//! Errors separate the daemon's answer ([`ClientError::Api`], whose kind the
//! CNI plugin maps to a CNI error code) from failing to talk to it at all;
//! a daemon that is not running gets one sentence that says what to do.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::line_client::LineClient;

use super::codec::{decode_response, encode_request};
use super::proto::{ApiError, Request, ResponseBody};

/// How long a call waits for the daemon by default: long enough for a
/// `pod_add` that creates a tap and writes the store, short enough that a
/// wedged daemon does not hang the container runtime forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (it is missing or refuses connections).
    #[error(
        "tweed daemon is not running (no answer on {}); start it with `tweed daemon`, \
         or point --run-dir / TWEED_RUN_DIR at its run directory",
        path.display()
    )]
    NotRunning {
        /// The socket.
        path: PathBuf,
    },
    /// Connecting failed for another reason (e.g. permission denied).
    #[error("connecting to the tweed daemon at {}: {source}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("the tweed daemon at {} did not answer within {}s", path.display(), timeout.as_secs())]
    TimedOut {
        /// The socket.
        path: PathBuf,
        /// The limit that passed.
        timeout: Duration,
    },
    /// Talking to the socket failed (including the daemon closing it).
    #[error("talking to the tweed daemon at {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The daemon answered with something this client does not understand.
    #[error("the tweed daemon at {} sent a bad reply: {message}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong with the reply.
        message: String,
    },
    /// The daemon refused the request; its kind says why.
    #[error("{}", .0.message)]
    Api(ApiError),
}

/// A connection to the control socket.
#[derive(Debug)]
pub struct Client {
    line: LineClient,
    timeout: Option<Duration>,
}

impl Client {
    /// Connects to the socket at `path`, with [`DEFAULT_TIMEOUT`] per call.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let connect_error = |source: io::Error| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                path: path.to_owned(),
            },
            _ => ClientError::Connect {
                path: path.to_owned(),
                source,
            },
        };
        let line = LineClient::connect(path).map_err(connect_error)?;
        let mut client = Client {
            line,
            timeout: None,
        };
        client
            .set_timeout(Some(DEFAULT_TIMEOUT))
            .map_err(|source| ClientError::Connect {
                path: path.to_owned(),
                source,
            })?;
        Ok(client)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.line.path()
    }

    /// Bounds how long a call waits to send or to receive; `None` waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.line.set_timeout(timeout)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: Request) -> Result<ResponseBody, ClientError> {
        let op = request.op();
        let reply = self
            .line
            .call_raw(&encode_request(&request))
            .map_err(|source| self.io_error(source))?;
        match decode_response(op, &reply) {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(error)) => Err(ClientError::Api(error)),
            Err(message) => Err(ClientError::Protocol {
                path: self.path().to_owned(),
                message,
            }),
        }
    }

    /// Sends `line` as it is (a newline is added if missing) and returns the
    /// next reply line without its newline. The daemon closing the
    /// connection first is an `UnexpectedEof` error.
    pub fn call_raw(&mut self, line: &str) -> io::Result<String> {
        self.line.call_raw(line)
    }

    /// Reads the next reply line without its newline.
    pub fn read_line(&mut self) -> io::Result<String> {
        self.line.read_line()
    }

    fn io_error(&self, source: io::Error) -> ClientError {
        let path = self.path().to_owned();
        match (source.kind(), self.timeout) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some(timeout)) => {
                ClientError::TimedOut { path, timeout }
            }
            _ => ClientError::Io { path, source },
        }
    }
}

/// Connects to `path` and makes one call: what the CLI does per command.
pub fn call(path: &Path, request: Request) -> Result<ResponseBody, ClientError> {
    Client::connect(path)?.call(request)
}

//! A blocking client of the API socket, for the control daemon, the CLI and
//! tests: one request line out, one reply line back.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec::{decode_response, encode_request};
use super::proto::{ApiError, Request, ResponseBody};
use crate::line_client::LineClient;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Talking to the socket failed (including the server closing it).
    #[error("talking to the dataplane at {}: {source}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server answered with something this client does not understand.
    #[error("the dataplane at {} sent a bad reply: {message}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What was wrong with the reply.
        message: String,
    },
    /// The server refused the request.
    #[error("the dataplane refused the request ({}): {}", .0.kind.name(), .0.message)]
    Api(ApiError),
}

/// A connection to the API socket.
#[derive(Debug)]
pub struct Client {
    line: LineClient,
}

impl Client {
    /// Connects to the socket at `path`; the error names the path.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let line = LineClient::connect(path).map_err(|e| {
            io::Error::new(e.kind(), format!("connecting to {}: {e}", path.display()))
        })?;
        Ok(Client { line })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        self.line.path()
    }

    /// Bounds how long a call waits to send or to receive; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.line.set_timeout(timeout)
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: Request) -> Result<ResponseBody, ClientError> {
        let op = request.op();
        let reply = self
            .line
            .call_raw(&encode_request(&request))
            .map_err(|source| ClientError::Io {
                path: self.line.path().to_owned(),
                source,
            })?;
        match decode_response(op, &reply) {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(error)) => Err(ClientError::Api(error)),
            Err(message) => Err(ClientError::Protocol {
                path: self.line.path().to_owned(),
                message,
            }),
        }
    }

    /// Sends `line` as it is (a newline is added if missing) and returns the
    /// next reply line without its newline. The server closing the
    /// connection first is an `UnexpectedEof` error.
    pub fn call_raw(&mut self, line: &str) -> io::Result<String> {
        self.line.call_raw(line)
    }

    /// Reads the next reply line without its newline.
    pub fn read_line(&mut self) -> io::Result<String> {
        self.line.read_line()
    }

    /// Whether this idle connection is no use any more (the server closed
    /// it, e.g. because it restarted): see [`LineClient::is_stale`].
    pub fn is_stale(&mut self) -> bool {
        self.line.is_stale()
    }
}

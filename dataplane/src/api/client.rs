//! A blocking client of the API socket, for the control daemon, the CLI and
//! tests: one request line out, one reply line back.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::codec::{decode_response, encode_request};
use super::proto::{ApiError, Request, ResponseBody};

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
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`; the error names the path.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let named = |e: io::Error| {
            io::Error::new(e.kind(), format!("connecting to {}: {e}", path.display()))
        };
        let stream = UnixStream::connect(path).map_err(named)?;
        let writer = stream.try_clone().map_err(named)?;
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bounds how long a call waits to send or to receive; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)?;
        self.writer.set_write_timeout(timeout)
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: Request) -> Result<ResponseBody, ClientError> {
        let op = request.op();
        let reply = self
            .call_raw(&encode_request(&request))
            .map_err(|source| ClientError::Io {
                path: self.path.clone(),
                source,
            })?;
        match decode_response(op, &reply) {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(error)) => Err(ClientError::Api(error)),
            Err(message) => Err(ClientError::Protocol {
                path: self.path.clone(),
                message,
            }),
        }
    }

    /// Sends `line` as it is (a newline is added if missing) and returns the
    /// next reply line without its newline. The server closing the
    /// connection first is an `UnexpectedEof` error.
    pub fn call_raw(&mut self, line: &str) -> io::Result<String> {
        let mut out = line.to_owned();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        self.writer.write_all(out.as_bytes())?;
        self.writer.flush()?;
        self.read_line()
    }

    /// Reads the next reply line without its newline.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without replying",
            ));
        }
        if reply.ends_with('\n') {
            reply.pop();
        }
        Ok(reply)
    }
}

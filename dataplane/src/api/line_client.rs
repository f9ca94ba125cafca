//! A blocking line-per-request connection to a Unix socket: the transport
//! under this API's [`super::Client`] and the control daemon's client, which
//! add their own codec and errors on top.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connection that sends one line and reads one reply line.
#[derive(Debug)]
pub struct LineClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl LineClient {
    /// Connects to the socket at `path`; the error is the system's, unnamed,
    /// so that callers can tell a missing server by its kind.
    pub fn connect(path: &Path) -> io::Result<LineClient> {
        let stream = UnixStream::connect(path)?;
        let writer = stream.try_clone()?;
        Ok(LineClient {
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

//! A blocking line-per-request connection to a Unix socket: the transport
//! under both sockets' clients ([`crate::Client`], [`crate::dataplane::Client`]), which
//! add their own codec and errors on top.

use std::io::{self, BufRead, BufReader, Read, Write};
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
        let sent = self
            .writer
            .write_all(out.as_bytes())
            .and_then(|()| self.writer.flush());
        match sent {
            Ok(()) => self.read_line(),
            // The server answered and hung up before taking the whole line
            // (a refusal: too many connections, a line too long): its
            // answer is still there to read.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                self.read_line().map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether an idle connection is no use any more: the server closed it
    /// (it stopped or restarted), it broke, or it holds bytes nobody asked
    /// for. An idle connection has nothing to read, so a read that does not
    /// block tells.
    pub fn is_stale(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let stream = self.reader.get_ref();
        if stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let stale = !matches!(
            (&*stream).read(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        stale || stream.set_nonblocking(false).is_err()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn an_idle_connection_is_stale_once_the_server_closes_it_or_says_too_much() {
        let dir = std::env::temp_dir().join(format!("tweed-line-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");

        let mut client = LineClient::connect(&path).expect("connect");
        let (mut served, _) = listener.accept().expect("accept");
        assert!(!client.is_stale(), "open and quiet");
        served.write_all(b"ok\n").expect("reply");
        assert_eq!(client.read_line().expect("a line"), "ok");
        assert!(!client.is_stale(), "still usable after a call");
        client
            .writer
            .write_all(b"ping\n")
            .expect("the check left it blocking and writable");
        drop(served);
        assert!(client.is_stale(), "the server closed it");

        let mut chatty = LineClient::connect(&path).expect("connect");
        let (mut served, _) = listener.accept().expect("accept");
        served.write_all(b"unasked\n").expect("write");
        // Give the bytes a moment to be readable: they are local.
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert!(chatty.is_stale(), "bytes nobody asked for");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

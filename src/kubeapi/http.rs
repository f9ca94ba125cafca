//! The HTTP/1.1 server on std sockets: a TCP listener (for the daemons and
//! kubectl) and a unix socket (the same API plus the admin routes, for the
//! test process), one thread per connection, keep-alive.
//!
//! The TCP listener polls (non-blocking accept, 10 ms) so that "down" can
//! close it: while [`Server::down_until`] is set the listener is dropped, so
//! connecting is refused, and it is bound again afterwards.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dispatch;
use super::server::{Server, Sock};
use super::status::ApiError;
use super::wire;

/// How often the TCP accept loop polls.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Binds `addr` with a non-blocking accept.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds the unix socket at `path`, replacing a stale one.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

/// Serves the unix socket forever (on the calling thread).
pub fn serve_unix(server: Arc<Server>, listener: UnixListener) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("fake-kube-apiserver: unix accept: {e}");
                continue;
            }
        };
        let (Ok(read), Ok(keep)) = (stream.try_clone(), stream.try_clone()) else {
            continue;
        };
        let server = server.clone();
        std::thread::spawn(move || connection(&server, Sock::Unix(keep), false, read, stream));
    }
}

/// Serves TCP forever (on the calling thread), going down and up again as
/// the admin route says.
pub fn serve_tcp(server: Arc<Server>, addr: SocketAddr, listener: TcpListener) {
    let mut listener = Some(listener);
    loop {
        if let Some(until) = server.down_until() {
            if listener.take().is_some() {
                eprintln!(
                    "fake-kube-apiserver: TCP down for {:?}",
                    until - Instant::now()
                );
            }
            std::thread::sleep(ACCEPT_POLL);
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match bind_tcp(addr) {
                Ok(l) => {
                    eprintln!("fake-kube-apiserver: TCP up again on {addr}");
                    listener.insert(l)
                }
                Err(e) => {
                    eprintln!("fake-kube-apiserver: bind {addr} again: {e}");
                    std::thread::sleep(ACCEPT_POLL);
                    continue;
                }
            },
        };
        match l.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let (Ok(read), Ok(keep)) = (stream.try_clone(), stream.try_clone()) else {
                    continue;
                };
                let server = server.clone();
                std::thread::spawn(move || {
                    connection(&server, Sock::Tcp(keep), true, read, stream)
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                eprintln!("fake-kube-apiserver: TCP accept: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// One connection: requests in a row until the peer closes, asks to close,
/// sends garbage, or the server cuts it.
fn connection(server: &Server, sock: Sock, tcp: bool, read: impl Read, mut write: impl Write) {
    let Some(conn) = server.register(sock, tcp) else {
        return;
    };
    let mut read = BufReader::new(read);
    loop {
        match wire::read_request(&mut read) {
            Ok(Some(req)) => match dispatch::handle(server, &req, &conn, &mut write) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            },
            Ok(None) => break,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let body = serde_json::to_vec(&ApiError::bad_request(e.to_string()).to_status())
                    .unwrap_or_default();
                let _ = wire::write_response(&mut write, 400, "application/json", &body, true);
                break;
            }
            Err(_) => break,
        }
    }
    server.unregister(&conn);
}

//! Traffic between namespaces, every exchange bounded in time: ping, a TCP
//! transfer whose bytes are checked end to end (SHA-256 on both sides), a UDP
//! round trip, and plain TCP connects against a [`Listener`].
//!
//! The endpoints are small python3 programs run inside the namespaces, so the
//! kernel's own sockets are the peers; the harness only compares what they
//! report.

use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::process::Child;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crate::netns::Netns;
use crate::poll;
use crate::process;

/// Reads to EOF from one connection and prints the byte count and SHA-256.
/// Args: ADDR PORT TIMEOUT_S.
const TCP_SINK: &str = r#"
import hashlib, socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(1)
s.settimeout(timeout)
print("ready", flush=True)
c, peer = s.accept()
print("peer", peer[0], flush=True)
c.settimeout(timeout)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"#;

/// Sends N random bytes, waits for the sink to close, prints count and
/// SHA-256. Args: ADDR PORT N TIMEOUT_S.
const TCP_SOURCE: &str = r#"
import hashlib, os, socket, sys, time
addr, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
data = os.urandom(n)
deadline = time.monotonic() + timeout
while True:
    try:
        c = socket.create_connection((addr, port), timeout=2)
        break
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit("connect: %s" % e)
        time.sleep(0.1)
c.settimeout(timeout)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(n, hashlib.sha256(data).hexdigest(), flush=True)
"#;

/// Echoes UDP datagrams until its timeout passes without one. Args: ADDR PORT TIMEOUT_S.
const UDP_ECHO: &str = r#"
import socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
s.settimeout(timeout)
print("ready", flush=True)
try:
    while True:
        b, peer = s.recvfrom(65535)
        s.sendto(b, peer)
except socket.timeout:
    pass
"#;

/// Sends a random datagram until the same bytes come back. Args: ADDR PORT SIZE TIMEOUT_S.
const UDP_PING: &str = r#"
import os, socket, sys, time
addr, port, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
data = os.urandom(size)
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    s.sendto(data, (addr, port))
    try:
        b, peer = s.recvfrom(65535)
    except socket.timeout:
        continue
    if b == data:
        print("echoed", flush=True)
        sys.exit(0)
    sys.exit("the reply differs from what was sent (%d bytes back)" % len(b))
sys.exit("no echo before the deadline")
"#;

/// Accepts connections forever and sends each `hello` before closing it.
/// Args: ADDR PORT.
const TCP_LISTEN: &str = r#"
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    try:
        c.sendall(b"hello")
    finally:
        c.close()
"#;

/// Connects once and expects `hello`. Args: ADDR PORT TIMEOUT_S.
const TCP_CONNECT: &str = r#"
import socket, sys
addr, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = socket.create_connection((addr, port), timeout=timeout)
c.settimeout(timeout)
b = c.recv(5)
sys.exit(0 if b == b"hello" else "got %r" % b)
"#;

/// [`ping`] with `size` bytes of payload (`ping -s SIZE`): larger than the
/// MTU, the echoes go out fragmented.
pub fn ping_sized(ns: &Netns, dst: IpAddr, size: usize, count: u32, timeout: Duration) -> bool {
    let (count, size, wait) = (
        count.to_string(),
        size.to_string(),
        timeout.as_secs().max(1).to_string(),
    );
    ns.exec_bounded(
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            &count,
            "-s",
            &size,
            "-w",
            &wait,
            "-i",
            "0.2",
            &dst.to_string(),
        ],
        timeout + Duration::from_secs(2),
    )
    .success()
}

/// Pings `dst` from `ns`: true when all `count` echoes come back before
/// `timeout` (`ping -c COUNT -w TIMEOUT -i 0.2`).
pub fn ping(ns: &Netns, dst: IpAddr, count: u32, timeout: Duration) -> bool {
    let out = ns.exec_bounded(
        "ping",
        &[
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-w",
            &timeout.as_secs().max(1).to_string(),
            &dst.to_string(),
        ],
        timeout + Duration::from_secs(5),
    );
    if !out.success() {
        eprintln!("ping {dst} from {}: {out}", ns.name());
    }
    out.success()
}

/// Pings `dst` from `ns` once a short while until one echo comes back (the
/// first packets of a path may resolve neighbours); false after `timeout`.
pub fn wait_ping(ns: &Netns, dst: IpAddr, timeout: Duration) -> bool {
    poll::wait(timeout, || {
        ns.exec_bounded(
            "ping",
            &["-n", "-q", "-c", "1", "-W", "1", &dst.to_string()],
            Duration::from_secs(5),
        )
        .success()
    })
}

/// A python3 program running in a namespace, killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Child,
    lines: Receiver<String>,
    what: String,
}

impl Background {
    /// Starts `python3 -c SCRIPT args` in `ns` and waits for it to print
    /// `ready`.
    fn start(ns: &Netns, script: &str, args: &[&str], what: String) -> Self {
        let mut full = vec!["-u", "-c", script];
        full.extend_from_slice(args);
        let mut child = ns.spawn("python3", &full);
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        let mut bg = Self { child, lines, what };
        match bg.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line == "ready" => bg,
            other => {
                let _ = bg.child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = bg.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("{} did not start ({other:?}): {err}", bg.what);
            }
        }
    }

    /// Waits for the program to exit (up to `timeout`) and returns its
    /// remaining stdout lines, or why it failed.
    fn finish(mut self, timeout: Duration) -> Result<Vec<String>, String> {
        let status = process::wait_deadline(&mut self.child, timeout);
        let mut err = String::new();
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        let lines: Vec<String> = self.lines.try_iter().collect();
        match status {
            Some(s) if s.success() => Ok(lines),
            Some(s) => Err(format!("{} failed ({s}): {lines:?} {err}", self.what)),
            None => Err(format!(
                "{} still ran after {timeout:?}: {lines:?} {err}",
                self.what
            )),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stdout lines, read on a thread.
pub fn lines_of(stdout: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends `bytes` random bytes over TCP from `client` to a sink listening on
/// `server_addr:port` in `server`, and checks that both sides saw the same
/// count and SHA-256. The whole exchange is bounded by `timeout`.
pub fn tcp_transfer(
    client: &Netns,
    server: &Netns,
    server_addr: IpAddr,
    port: u16,
    bytes: usize,
    timeout: Duration,
) -> Result<(), String> {
    let at = (server_addr, port);
    tcp_transfer_via(client, at, server, at, bytes, timeout).map(|_| ())
}

/// [`tcp_transfer`] where the client dials `dial` (a Service address, a
/// NodePort) and the sink listens on `listen` in `server`; returns the
/// client address the sink saw.
pub fn tcp_transfer_via(
    client: &Netns,
    dial: (IpAddr, u16),
    server: &Netns,
    listen: (IpAddr, u16),
    bytes: usize,
    timeout: Duration,
) -> Result<IpAddr, String> {
    let secs = timeout.as_secs_f64().to_string();
    let ((dial_addr, dial_port), (server_addr, port)) = (dial, listen);
    let sink = Background::start(
        server,
        TCP_SINK,
        &[&server_addr.to_string(), &port.to_string(), &secs],
        format!("TCP sink on {server_addr}:{port} in {}", server.name()),
    );
    let sent = client.exec_bounded(
        "python3",
        &[
            "-c",
            TCP_SOURCE,
            &dial_addr.to_string(),
            &dial_port.to_string(),
            &bytes.to_string(),
            &secs,
        ],
        timeout + Duration::from_secs(2),
    );
    let received = sink.finish(Duration::from_secs(5));
    if !sent.success() {
        return Err(format!(
            "TCP source in {} → {dial_addr}:{dial_port}: {sent}\nsink: {received:?}",
            client.name()
        ));
    }
    let received = received?;
    let sent_line = sent.stdout.trim();
    let peer = received
        .iter()
        .find_map(|l| l.strip_prefix("peer ")?.parse::<IpAddr>().ok());
    match (received.last(), peer) {
        (Some(line), Some(peer)) if line == sent_line => Ok(peer),
        (other, _) => Err(format!(
            "TCP {bytes} bytes to {dial_addr}:{dial_port} (sink on {server_addr}:{port}): sent {sent_line:?}, received {other:?}"
        )),
    }
}

/// Sends a random datagram of `size` bytes from `client` to an echo server on
/// `server_addr:port` in `server` until the same bytes come back.
pub fn udp_round_trip(
    client: &Netns,
    server: &Netns,
    server_addr: IpAddr,
    port: u16,
    size: usize,
    timeout: Duration,
) -> Result<(), String> {
    let secs = timeout.as_secs_f64().to_string();
    let echo = Background::start(
        server,
        UDP_ECHO,
        &[&server_addr.to_string(), &port.to_string(), &secs],
        format!("UDP echo on {server_addr}:{port} in {}", server.name()),
    );
    let out = client.exec_bounded(
        "python3",
        &[
            "-c",
            UDP_PING,
            &server_addr.to_string(),
            &port.to_string(),
            &size.to_string(),
            &secs,
        ],
        timeout + Duration::from_secs(2),
    );
    drop(echo);
    if out.success() {
        Ok(())
    } else {
        Err(format!(
            "UDP {size} bytes {} → {server_addr}:{port}: {out}",
            client.name()
        ))
    }
}

/// A TCP listener that greets and closes every connection, running until dropped.
#[derive(Debug)]
pub struct Listener {
    _program: Background,
}

impl Listener {
    /// Listens on `addr:port` inside `ns`.
    pub fn start(ns: &Netns, addr: IpAddr, port: u16) -> Self {
        Self {
            _program: Background::start(
                ns,
                TCP_LISTEN,
                &[&addr.to_string(), &port.to_string()],
                format!("TCP listener on {addr}:{port} in {}", ns.name()),
            ),
        }
    }
}

/// Connects from `ns` to `addr:port` and reads the [`Listener`]'s greeting:
/// true if that worked within `timeout`.
pub fn tcp_connect(ns: &Netns, addr: IpAddr, port: u16, timeout: Duration) -> bool {
    ns.exec_bounded(
        "python3",
        &[
            "-c",
            TCP_CONNECT,
            &addr.to_string(),
            &port.to_string(),
            &timeout.as_secs_f64().to_string(),
        ],
        timeout + Duration::from_secs(2),
    )
    .success()
}

//! The probes: a TCP listener inside every pod's and node's namespace, and
//! TCP connects from inside a namespace, all run at once.
//!
//! A socket belongs to the namespace it was created in, whatever thread uses
//! it later, so each listener is made on a thread inside its namespace and
//! then served from an ordinary thread; each connect runs on a thread inside
//! the source's namespace. The kernel is both ends; only the pod network
//! (taps, the dataplanes, the overlay) is between them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tweed_sys::netns::run_in_netns;

/// What one TCP connect found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connection was made.
    Open,
    /// No answer before the timeout: the packets were dropped.
    TimedOut,
    /// The peer answered with a reset (nothing listens: a demo bug).
    Refused,
    /// The probe could not run (the message says why).
    Failed(String),
}

/// How long one connect may wait for an answer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Connects per probe before it counts as blocked (a first packet may meet
/// a neighbour entry still resolving).
const ATTEMPTS: usize = 2;
/// How often a listener looks for connections and for the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Listeners on one port in several namespaces, accepting until dropped.
#[derive(Debug)]
pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Listens on `0.0.0.0:port` inside each namespace.
    pub fn start(netns: &[PathBuf], port: u16) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut listeners = Listeners {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for path in netns {
            let listener = run_in_netns(path, move || {
                let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
                l.set_nonblocking(true)?;
                Ok(l)
            })
            .and_then(|made| made)
            .map_err(|e| format!("listen on port {port} in {}: {e}", path.display()))?;
            let stop = stop.clone();
            listeners
                .threads
                .push(std::thread::spawn(move || serve(&listener, &stop)));
        }
        Ok(listeners)
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Accepts and closes connections until `stop`.
fn serve(listener: &TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => drop(conn),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// One probe to run: from inside `netns`, connect to `dst:port`.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The source's namespace.
    pub netns: PathBuf,
    /// The destination address.
    pub dst: IpAddr,
    /// The destination port.
    pub port: u16,
}

/// Runs every probe at once; the outcomes come back in the same order.
pub fn connect_all(probes: &[Connect]) -> Vec<Outcome> {
    let threads: Vec<JoinHandle<Outcome>> = probes
        .iter()
        .cloned()
        .map(|p| std::thread::spawn(move || connect(&p)))
        .collect();
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| Outcome::Failed("the probe thread panicked".to_owned()))
        })
        .collect()
}

/// One probe: open if a connect succeeds, timed out if every attempt does.
fn connect(p: &Connect) -> Outcome {
    let addr = SocketAddr::new(p.dst, p.port);
    let attempts = run_in_netns(&p.netns, move || {
        let mut last = Outcome::TimedOut;
        for _ in 0..ATTEMPTS {
            last = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(_) => return Outcome::Open,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::TimedOut,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Outcome::Refused,
                Err(e) => Outcome::Failed(format!("connect {addr}: {e}")),
            };
        }
        last
    });
    attempts.unwrap_or_else(|e| Outcome::Failed(format!("enter {}: {e}", p.netns.display())))
}

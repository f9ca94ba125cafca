//! The server's shared state (store, open connections, counters, the
//! down/up switch) and the dispatch of one request. Sockets and threads are
//! [`super::http`]'s; resource requests are [`super::handlers`]' and
//! [`super::stream`]'s.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::stamp::Stamp;
use super::stats::Stats;
use super::store::Store;

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// `host:port` that `/api` advertises.
    pub advertise: String,
}

/// A connection's socket, kept to shut it down from another thread.
#[derive(Debug)]
pub enum Sock {
    /// A client on the TCP listener.
    Tcp(TcpStream),
    /// A client on the unix socket.
    Unix(UnixStream),
}

impl Sock {
    fn shutdown(&self) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(Shutdown::Both),
            Sock::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

#[derive(Debug)]
struct Conn {
    sock: Sock,
    tcp: bool,
    watching: bool,
    aborted: Arc<AtomicBool>,
}

/// A registered connection, as its thread holds it.
#[derive(Debug)]
pub struct ConnHandle {
    id: u64,
    /// On the TCP listener (admin routes are unix-socket only).
    pub tcp: bool,
    aborted: Arc<AtomicBool>,
}

impl ConnHandle {
    /// The server cut this connection (drop-watches, down).
    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// The state every connection thread shares.
#[derive(Debug)]
pub struct Server {
    store: Mutex<Store>,
    /// Signalled after every write and every abort.
    changed: Condvar,
    conns: Mutex<HashMap<u64, Conn>>,
    next_conn: AtomicU64,
    stats: Mutex<Stats>,
    down_until: Mutex<Option<Instant>>,
    config: Config,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicked handler thread must not take the whole server down.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    /// A server with the initial namespaces.
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(Store::new(Stamp::fresh)),
            changed: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            stats: Mutex::new(Stats::default()),
            down_until: Mutex::new(None),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store, locked.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Waits on the store's condition variable up to `timeout`.
    pub fn wait_change<'a>(
        &self,
        guard: MutexGuard<'a, Store>,
        timeout: Duration,
    ) -> MutexGuard<'a, Store> {
        match self.changed.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Wakes every watch (after a write).
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// The counters, locked.
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// Until when the TCP listener stays closed, if it is down.
    pub fn down_until(&self) -> Option<Instant> {
        let mut down = lock(&self.down_until);
        if down.is_some_and(|t| Instant::now() >= t) {
            *down = None;
        }
        *down
    }

    /// Registers a new connection; `None` (and the socket shut) for a TCP
    /// one while the server is down.
    pub fn register(&self, sock: Sock, tcp: bool) -> Option<ConnHandle> {
        if tcp && self.down_until().is_some() {
            sock.shutdown();
            return None;
        }
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let aborted = Arc::new(AtomicBool::new(false));
        lock(&self.conns).insert(
            id,
            Conn {
                sock,
                tcp,
                watching: false,
                aborted: aborted.clone(),
            },
        );
        Some(ConnHandle { id, tcp, aborted })
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, conn: &ConnHandle) {
        lock(&self.conns).remove(&conn.id);
    }

    /// Marks a connection as streaming a watch (or done with it).
    pub fn set_watching(&self, conn: &ConnHandle, watching: bool) {
        if let Some(c) = lock(&self.conns).get_mut(&conn.id) {
            c.watching = watching;
        }
    }

    /// Marks every connection `pick` selects as cut and shuts its socket;
    /// returns how many.
    fn cut(&self, pick: impl Fn(&Conn) -> bool) -> usize {
        let mut n = 0;
        for c in lock(&self.conns).values().filter(|c| pick(c)) {
            c.aborted.store(true, Ordering::SeqCst);
            c.sock.shutdown();
            n += 1;
        }
        n
    }

    /// Cuts every connection `pick` selects mid-stream; returns how many.
    fn abort_where(&self, pick: impl Fn(&Conn) -> bool) -> usize {
        let n = self.cut(pick);
        // Take the store lock so no watch is between its check and its wait.
        drop(self.store());
        self.notify();
        n
    }

    /// Moves the compaction point to now and cuts every open watch, in one
    /// step under the store's lock: no watch can pass on a version at or
    /// past the new point (in an event or a bookmark) before it is cut, so
    /// every client resumes from an older version and gets 410. Returns the
    /// compaction version and how many watches were cut.
    pub fn compact(&self) -> (u64, usize) {
        let mut store = self.store();
        let rv = store.compact();
        let n = self.cut(|c| c.watching);
        drop(store);
        self.notify();
        (rv, n)
    }

    /// Cuts every open watch; returns how many.
    pub fn drop_watches(&self) -> usize {
        self.abort_where(|c| c.watching)
    }

    /// Closes the TCP side for `time`: the listener (the accept loop sees
    /// [`Server::down_until`]) and every TCP connection.
    pub fn go_down(&self, time: Duration) -> usize {
        *lock(&self.down_until) = Some(Instant::now() + time);
        self.abort_where(|c| c.tcp)
    }
}

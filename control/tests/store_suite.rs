//! One behaviour suite for both cluster-state backends.
//!
//! Every scenario is an `async fn` over a [`Harness`] (a store plus a way to let time
//! pass for its leases) and runs twice, from the `suite!` macro: over the embedded store
//! (redb in a private temp dir, a manual clock) and over a real etcd (`/usr/bin/etcd`,
//! Debian's `etcd-server`) started on loopback with a private data dir and free ports,
//! killed and removed on drop, also when the test panics.
//!
//! The etcd scenarios run a third time over etcd with TLS, client certificates required
//! and authentication on (certificates from the `openssl` CLI, the user from `etcdctl`,
//! as in `src/etcd_tls.rs`, which this file includes): the store connects with a CA, a
//! client certificate and a user. That costs about a second per scenario.
//!
//! Without etcd installed the etcd half prints a skip line and passes, unless `CI=true`,
//! where it fails and says what to install.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tweed_control::store::{
    self, ClientCert, EmbeddedStore, EtcdAuth, EtcdStore, EtcdUser, LeaseId, ManualClock, Revision,
    Store, StoreConfig, StoreError, WatchEvent, WatchStream,
};

/// The harness's certificates and etcd users (std only, so it can be included).
#[path = "../../src/etcd_tls.rs"]
#[allow(dead_code)]
mod etcd_tls;

const S: Duration = Duration::from_secs(1);
/// etcd's minimum lease TTL is about 2 s with its default timing; use that everywhere.
const TTL: Duration = Duration::from_secs(2);
/// How long a test waits for something that should happen (an expiry, an event).
const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// Harnesses

/// A store under test and the means to let its lease clock run.
trait Harness {
    /// The store.
    fn store(&self) -> Arc<dyn Store>;
    /// Lets `d` pass on the store's lease clock.
    async fn elapse(&self, d: Duration);
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tweed-{what}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded store in a temp dir, on a manual clock, with its sweeper running.
struct Embedded {
    store: Arc<EmbeddedStore>,
    clock: Arc<ManualClock>,
    // Dropped last: the store's file lives here.
    dir: TempDir,
}

impl Embedded {
    fn new() -> Self {
        let dir = TempDir::new("store");
        let clock = Arc::new(ManualClock::new());
        let store = Self::open(&dir, &clock);
        Embedded { store, clock, dir }
    }

    fn open(dir: &TempDir, clock: &Arc<ManualClock>) -> Arc<EmbeddedStore> {
        let path = dir.path().join(store::EMBEDDED_FILE);
        // On a reopen, the previous store's sweeper may hold the file for a moment more.
        let deadline = Instant::now() + PATIENCE;
        let store = loop {
            match EmbeddedStore::open_with_clock(&path, clock.clone()) {
                Ok(store) => break store,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("retrying the open: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("open store: {e}"),
            }
        };
        store.spawn_sweeper(Duration::from_millis(20));
        Arc::new(store)
    }
}

impl Harness for Embedded {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn elapse(&self, d: Duration) {
        self.clock.advance(d);
    }
}

/// A private etcd server on loopback; killed and its data dir removed on drop.
struct Etcd {
    child: Child,
    endpoint: String,
    store: Arc<dyn Store>,
    /// Held for its `Drop`: removed after the child is killed (fields drop after
    /// `Drop::drop`).
    _dir: TempDir,
}

impl Etcd {
    /// Starts etcd, or returns `None` (after a skip line) if it is not installed.
    async fn start() -> Option<Self> {
        Self::start_full(false).await
    }

    /// Starts etcd with TLS, client certificates and auth on (a `tweed` user with
    /// read-write on every key), the store connected as that user; `None` as
    /// [`Etcd::start`], also when `etcdctl` is missing.
    async fn start_secure() -> Option<Self> {
        if !Path::new(etcd_tls::ETCDCTL).is_file() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("etcdctl is not installed: apt-get install etcd-client");
            }
            eprintln!("SKIP: etcdctl is not installed (apt-get install etcd-client)");
            return None;
        }
        Self::start_full(true).await
    }

    async fn start_full(secure: bool) -> Option<Self> {
        let Some(binary) = etcd_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("etcd is not installed: apt-get install etcd-server");
            }
            eprintln!("SKIP: etcd is not installed (apt-get install etcd-server)");
            return None;
        };
        // A port taken between probing and binding makes etcd exit: try again.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&binary, secure).await {
                Ok(etcd) => return Some(etcd),
                Err(e) => last_error = e,
            }
        }
        panic!("etcd did not start: {last_error}");
    }

    async fn try_start(binary: &Path, secure: bool) -> Result<Self, String> {
        let dir = TempDir::new("etcd");
        let (client, peer) = (free_port(), free_port());
        let pki =
            secure.then(|| etcd_tls::Pki::create(&dir.path().join("pki"), [127, 0, 0, 1].into()));
        let scheme = if secure { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--name", "default"])
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(pki.iter().flat_map(etcd_tls::Pki::etcd_server_args))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut starting = EtcdStarting {
            child: Some(child),
            dir: Some(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = starting.child().try_wait().map_err(|e| e.to_string())? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("etcd exited with {status}; its log:\n{log}"));
            }
            // Before auth is on, the client certificate is all it takes.
            let mut auth = EtcdAuth::default();
            if let Some(pki) = &pki {
                auth.ca = Some(pki.ca());
                auth.client_cert = Some(ClientCert {
                    cert: pki.client_cert(),
                    key: pki.client_key(),
                });
            }
            match EtcdStore::connect_with(&[&endpoint], &auth, S).await {
                Ok(store) => {
                    let store = match &pki {
                        Some(pki) => {
                            enable_auth(pki, &endpoint)?;
                            auth.user = Some(EtcdUser {
                                name: etcd_tls::USER.to_owned(),
                                password_file: pki.password_file(),
                            });
                            EtcdStore::connect_with(&[&endpoint], &auth, S)
                                .await
                                .map_err(|e| format!("connect as {}: {e}", etcd_tls::USER))?
                        }
                        None => store,
                    };
                    let (child, dir) = starting.take();
                    return Ok(Etcd {
                        child,
                        endpoint,
                        store: Arc::new(store),
                        _dir: dir,
                    });
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("etcd did not answer within 20 s: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Turns auth on with etcdctl: a `tweed` user who may read and write every key
/// (a scenario lists the whole key space).
fn enable_auth(pki: &etcd_tls::Pki, endpoint: &str) -> Result<(), String> {
    for command in etcd_tls::auth_setup("") {
        let out = Command::new(etcd_tls::ETCDCTL)
            .args(pki.etcdctl_args(endpoint))
            .args(&command)
            .output()
            .map_err(|e| format!("run etcdctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "etcdctl {command:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// An etcd child that is still starting: killed and cleaned up if starting fails.
struct EtcdStarting {
    child: Option<Child>,
    dir: Option<TempDir>,
}

impl EtcdStarting {
    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until taken")
    }

    fn take(&mut self) -> (Child, TempDir) {
        let child = self.child.take().expect("child");
        let dir = self.dir.take().expect("dir");
        (child, dir)
    }
}

impl Drop for EtcdStarting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `dir` is removed when the field drops, after this.
    }
}

impl Harness for Etcd {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn elapse(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------
// Helpers

/// Polls `check` until it is true, failing after [`PATIENCE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_event(watch: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("a watch event within the patience")
        .expect("the watch is still open")
        .expect("a watch event, not an error")
}

async fn value(store: &dyn Store, key: &str) -> Option<Vec<u8>> {
    store.get(key).await.expect("get").map(|kv| kv.value)
}

// ---------------------------------------------------------------------------------------
// Scenarios

async fn get_put_list_delete(h: &impl Harness) {
    let s = h.store();
    assert_eq!(s.get("/crud/a").await.expect("get"), None);

    let r1 = s.put("/crud/a", b"one".to_vec(), None).await.expect("put");
    let kv = s.get("/crud/a").await.expect("get").expect("present");
    assert_eq!(
        (kv.key.as_str(), kv.value.as_slice()),
        ("/crud/a", &b"one"[..])
    );
    assert_eq!(kv.revision, r1);

    let r2 = s.put("/crud/a", b"two".to_vec(), None).await.expect("put");
    assert!(r2 > r1, "revisions increase: {r1} then {r2}");
    assert_eq!(value(&*s, "/crud/a").await, Some(b"two".to_vec()));

    s.put("/crud/c", vec![], None)
        .await
        .expect("put empty value");
    s.put("/crud/b", b"b".to_vec(), None).await.expect("put");
    s.put("/crudx", b"not under /crud/".to_vec(), None)
        .await
        .expect("put");
    let listed = s.list("/crud/").await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/crud/a", "/crud/b", "/crud/c"], "in key order");
    assert_eq!(listed[2].value, Vec::<u8>::new());
    assert!(s.list("/nothing/").await.expect("list").is_empty());
    assert_eq!(s.list("").await.expect("list all").len(), 4);

    assert!(s.delete("/crud/a").await.expect("delete"));
    assert!(!s.delete("/crud/a").await.expect("delete again"));
    assert_eq!(s.get("/crud/a").await.expect("get"), None);

    let err = s.put("", vec![], None).await.expect_err("empty key");
    assert!(matches!(err, StoreError::InvalidArgument { .. }), "{err}");
}

async fn create_is_atomic_under_concurrency(h: &impl Harness) {
    let s = h.store();
    // 20 racers, one key: exactly one wins, and its value is what is stored.
    let racers: Vec<_> = (0..20u8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { (i, s.create("/race/key", vec![i], None).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (i, created) = racer.await.expect("task");
        if created.expect("create").is_some() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creator wins: {winners:?}");
    assert_eq!(value(&*s, "/race/key").await, Some(vec![winners[0]]));

    // 50 creators, 50 keys: all succeed, each at its own revision.
    let creators: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create(&format!("/many/{i:02}"), vec![], None).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for creator in creators {
        let rev = creator.await.expect("task").expect("create");
        revisions.push(rev.expect("a fresh key is created"));
    }
    revisions.sort();
    revisions.dedup();
    assert_eq!(revisions.len(), 50);
    assert_eq!(s.list("/many/").await.expect("list").len(), 50);

    // Creating an existing key changes nothing.
    let before = s.get("/many/00").await.expect("get").expect("present");
    assert_eq!(
        s.create("/many/00", b"x".to_vec(), None)
            .await
            .expect("create"),
        None
    );
    assert_eq!(s.get("/many/00").await.expect("get"), Some(before));
}

async fn compare_and_swap_semantics(h: &impl Harness) {
    let s = h.store();
    assert_eq!(
        s.compare_and_swap("/cas/k", Revision(1), b"x".to_vec(), None)
            .await
            .expect("cas on a missing key"),
        None
    );
    let r1 = s.put("/cas/k", b"1".to_vec(), None).await.expect("put");
    let r2 = s
        .compare_and_swap("/cas/k", r1, b"2".to_vec(), None)
        .await
        .expect("cas")
        .expect("swapped at the current revision");
    assert!(r2 > r1);
    assert_eq!(
        s.get("/cas/k").await.expect("get").map(|kv| kv.revision),
        Some(r2)
    );
    // A stale revision loses and changes nothing.
    let stale = s.compare_and_swap("/cas/k", r1, b"3".to_vec(), None);
    assert_eq!(stale.await.expect("cas"), None);
    assert_eq!(value(&*s, "/cas/k").await, Some(b"2".to_vec()));

    assert!(!s.delete_if("/cas/k", r1).await.expect("stale delete_if"));
    assert!(s.delete_if("/cas/k", r2).await.expect("delete_if"));
    assert!(
        !s.delete_if("/cas/k", r2)
            .await
            .expect("delete_if a missing key")
    );

    // Ten increments by read-modify-CAS, concurrently: none is lost.
    s.put("/cas/counter", b"0".to_vec(), None)
        .await
        .expect("put");
    let incrementers: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                loop {
                    let kv = s.get("/cas/counter").await?.expect("counter exists");
                    let n: u32 = String::from_utf8_lossy(&kv.value)
                        .parse()
                        .expect("a number");
                    let next = (n + 1).to_string().into_bytes();
                    let swapped = s.compare_and_swap("/cas/counter", kv.revision, next, None);
                    if swapped.await?.is_some() {
                        return Ok::<_, StoreError>(());
                    }
                }
            })
        })
        .collect();
    for task in incrementers {
        task.await.expect("task").expect("increment");
    }
    assert_eq!(value(&*s, "/cas/counter").await, Some(b"10".to_vec()));
}

async fn an_expiring_lease_removes_its_keys(h: &impl Harness) {
    let s = h.store();
    let lease = s.grant(TTL).await.expect("grant");
    s.put("/lease/exp/a", b"a".to_vec(), Some(lease))
        .await
        .expect("put");
    s.create("/lease/exp/b", b"b".to_vec(), Some(lease))
        .await
        .expect("create")
        .expect("created");
    s.put("/lease/exp/kept", b"k".to_vec(), None)
        .await
        .expect("put");
    let mut watch = s.watch("/lease/exp/").await.expect("watch");
    assert!(value(&*s, "/lease/exp/a").await.is_some());

    h.elapse(TTL + S).await;
    eventually("the leased keys to expire", || async {
        s.list("/lease/exp/").await.expect("list").len() == 1
    })
    .await;
    assert_eq!(value(&*s, "/lease/exp/kept").await, Some(b"k".to_vec()));

    let mut deleted = vec![next_event(&mut watch).await, next_event(&mut watch).await];
    deleted.sort_by(|a, b| a.key().cmp(b.key()));
    assert!(
        matches!(&deleted[..], [WatchEvent::Delete { key: a, .. }, WatchEvent::Delete { key: b, .. }]
            if a == "/lease/exp/a" && b == "/lease/exp/b"),
        "expiry is seen as deletes: {deleted:?}"
    );

    let err = s.keep_alive(lease).await.expect_err("an expired lease");
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    let err = s
        .put("/lease/exp/c", vec![], Some(lease))
        .await
        .expect_err("put with an expired lease");
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
}

async fn keep_alive_keeps_keys_past_the_ttl(h: &impl Harness) {
    let s = h.store();
    let lease = s.grant(TTL).await.expect("grant");
    s.put("/lease/ka", b"alive".to_vec(), Some(lease))
        .await
        .expect("put");
    // Three TTLs' worth of time, refreshed every 0.7 s.
    for _ in 0..9 {
        h.elapse(Duration::from_millis(700)).await;
        s.keep_alive(lease).await.expect("keep alive");
    }
    assert_eq!(value(&*s, "/lease/ka").await, Some(b"alive".to_vec()));

    // Stop refreshing: it goes.
    h.elapse(TTL + S).await;
    eventually("the key to expire", || async {
        value(&*s, "/lease/ka").await.is_none()
    })
    .await;
}

async fn revoke_removes_keys_at_once(h: &impl Harness) {
    let s = h.store();
    let lease = s.grant(Duration::from_secs(60)).await.expect("grant");
    let other = s.grant(Duration::from_secs(60)).await.expect("grant");
    assert_ne!(lease, other);
    s.put("/revoke/a", vec![1], Some(lease)).await.expect("put");
    s.put("/revoke/b", vec![2], Some(lease)).await.expect("put");
    s.put("/revoke/other", vec![3], Some(other))
        .await
        .expect("put");
    s.put("/revoke/plain", vec![4], None).await.expect("put");

    s.revoke(lease).await.expect("revoke");
    let left: Vec<String> = s
        .list("/revoke/")
        .await
        .expect("list")
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, ["/revoke/other", "/revoke/plain"]);

    s.revoke(lease).await.expect("revoking again is fine");
    let err = s.keep_alive(lease).await.expect_err("revoked");
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    let err = s
        .put("/revoke/c", vec![], Some(LeaseId(0x7eed_0000_0001)))
        .await
        .expect_err("a lease that never existed");
    assert!(matches!(err, StoreError::LeaseNotFound { .. }), "{err}");
    s.revoke(other).await.expect("revoke");
}

async fn watch_sees_changes_under_its_prefix_only(h: &impl Harness) {
    let s = h.store();
    s.put("/w/a/before", b"old".to_vec(), None)
        .await
        .expect("put");
    let mut watch = s.watch("/w/a/").await.expect("watch");

    let r1 = s.put("/w/a/1", b"1".to_vec(), None).await.expect("put");
    s.put("/w/b/1", b"elsewhere".to_vec(), None)
        .await
        .expect("put");
    s.put("/w/ab", b"not under /w/a/".to_vec(), None)
        .await
        .expect("put");
    let r2 = s.put("/w/a/2", b"2".to_vec(), None).await.expect("put");
    assert!(s.delete("/w/a/1").await.expect("delete"));
    let r3 = s
        .compare_and_swap("/w/a/2", r2, b"2b".to_vec(), None)
        .await
        .expect("cas")
        .expect("swapped");

    let expected_put = |key: &str, value: &[u8], revision| WatchEvent::Put {
        key: key.into(),
        value: value.to_vec(),
        revision,
    };
    assert_eq!(
        next_event(&mut watch).await,
        expected_put("/w/a/1", b"1", r1)
    );
    assert_eq!(
        next_event(&mut watch).await,
        expected_put("/w/a/2", b"2", r2)
    );
    let deleted = next_event(&mut watch).await;
    assert!(
        matches!(&deleted, WatchEvent::Delete { key, revision } if key == "/w/a/1" && *revision > r2),
        "{deleted:?}"
    );
    assert_eq!(
        next_event(&mut watch).await,
        expected_put("/w/a/2", b"2b", r3)
    );

    // Two watches on one prefix both see a change.
    let mut second = s.watch("/w/").await.expect("watch");
    let r4 = s.put("/w/a/3", b"3".to_vec(), None).await.expect("put");
    assert_eq!(
        next_event(&mut watch).await,
        expected_put("/w/a/3", b"3", r4)
    );
    assert_eq!(
        next_event(&mut second).await,
        expected_put("/w/a/3", b"3", r4)
    );
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let harness = super::Embedded::new();
                    super::$scenario(&harness).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(harness) = super::Etcd::start().await else { return };
                    super::$scenario(&harness).await;
                }
            )*
        }
        mod etcd_secure {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(harness) = super::Etcd::start_secure().await else { return };
                    super::$scenario(&harness).await;
                }
            )*
        }
    };
}

suite!(
    get_put_list_delete,
    create_is_atomic_under_concurrency,
    compare_and_swap_semantics,
    an_expiring_lease_removes_its_keys,
    keep_alive_keeps_keys_past_the_ttl,
    revoke_removes_keys_at_once,
    watch_sees_changes_under_its_prefix_only,
);

// ---------------------------------------------------------------------------------------
// One backend only

/// Data, revisions and leases survive a reopen; a reopened lease gets a full TTL again.
#[tokio::test]
async fn embedded_survives_reopen() {
    let h = Embedded::new();
    let s = h.store();
    let lease = s.grant(Duration::from_secs(5)).await.expect("grant");
    s.put("/re/plain", b"p".to_vec(), None).await.expect("put");
    let leased_rev = s
        .put("/re/leased", b"l".to_vec(), Some(lease))
        .await
        .expect("put");
    h.elapse(Duration::from_secs(4)).await;

    let Embedded { store, clock, dir } = h;
    drop(s);
    drop(store);
    let store = Embedded::open(&dir, &clock);
    let h = Embedded { store, clock, dir };
    let s = h.store();

    assert_eq!(value(&*s, "/re/plain").await, Some(b"p".to_vec()));
    let leased = s
        .get("/re/leased")
        .await
        .expect("get")
        .expect("leased key kept");
    assert_eq!(leased.revision, leased_rev);
    let next = s.put("/re/after", vec![], None).await.expect("put");
    assert!(next > leased_rev, "revisions continue after a reopen");
    let new_lease = s.grant(S).await.expect("grant");
    assert_ne!(new_lease, lease, "lease ids are not reused");

    // 4 s had passed of a 5 s TTL; the reopen restarted it at 5 s.
    h.elapse(Duration::from_secs(4)).await;
    assert!(value(&*s, "/re/leased").await.is_some());
    s.keep_alive(lease)
        .await
        .expect("the lease survived the reopen");
    h.elapse(Duration::from_secs(6)).await;
    assert_eq!(value(&*s, "/re/leased").await, None);
    assert_eq!(value(&*s, "/re/plain").await, Some(b"p".to_vec()));
}

/// `store::open` picks the embedded store without endpoints, and its real clock and
/// sweeper expire a lease in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_embedded_by_default_with_a_real_clock() {
    let dir = TempDir::new("open");
    let config = StoreConfig::embedded(dir.path().join("state"));
    let s = store::open(&config).await.expect("open");
    assert!(format!("{s:?}").starts_with("EmbeddedStore"), "{s:?}");
    assert!(
        dir.path()
            .join("state")
            .join(store::EMBEDDED_FILE)
            .is_file()
    );

    let lease = s.grant(S).await.expect("grant");
    s.put("/real/k", vec![1], Some(lease)).await.expect("put");
    let mut watch = s.watch("/real/").await.expect("watch");
    // Nobody touches the store: the sweeper must reap it.
    let event = next_event(&mut watch).await;
    assert!(
        matches!(event, WatchEvent::Delete { ref key, .. } if key == "/real/k"),
        "{event:?}"
    );
    assert_eq!(value(&*s, "/real/k").await, None);
}

/// `store::open` with endpoints connects to etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_etcd_when_endpoints_are_given() {
    let Some(etcd) = Etcd::start().await else {
        return;
    };
    let config = StoreConfig {
        etcd_endpoints: vec![etcd.endpoint.clone()],
        ..StoreConfig::embedded("/nonexistent/never-created")
    };
    let s = store::open(&config).await.expect("open");
    assert!(format!("{s:?}").starts_with("EtcdStore"), "{s:?}");
    s.put("/open/k", b"v".to_vec(), None).await.expect("put");
    assert_eq!(value(&*etcd.store(), "/open/k").await, Some(b"v".to_vec()));
    assert!(!Path::new("/nonexistent/never-created").exists());
}

/// Nothing listening: a prompt, distinct, one-sentence error.
#[tokio::test]
async fn etcd_unreachable_is_a_clear_error() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let err = EtcdStore::connect(&[&endpoint], S)
        .await
        .expect_err("nothing listens there");
    assert!(err.is_unreachable(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("etcd is unreachable at {endpoint}")
    );
    assert!(started.elapsed() < 5 * S, "bounded by the timeout");
}

/// Once connected, losing etcd turns requests into `Unreachable`, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_going_away_is_unreachable() {
    let Some(mut etcd) = Etcd::start().await else {
        return;
    };
    let s = etcd.store();
    s.put("/gone/k", vec![], None).await.expect("put");
    etcd.child.kill().expect("kill etcd");
    etcd.child.wait().expect("reap etcd");
    let err = s.get("/gone/k").await.expect_err("etcd is gone");
    assert!(err.is_unreachable(), "{err:?}");
}

//! The cluster-state store: one trait, two backends.
//!
//! [`Store`] is a flat keyspace of `String` keys to byte values, each with the revision
//! of its last change, plus leases and prefix watches. It is etcd's v3 data model cut
//! down to what tweed needs, so that the [`EtcdStore`] maps each call onto one etcd RPC
//! (or one transaction) and the [`EmbeddedStore`] (redb, one file in the state
//! directory) reproduces the same behaviour on a single node with nothing else to run.
//! The same test suite (`control/tests/store_suite.rs`) runs over both.
//!
//! # Contract (both backends)
//!
//! - **Revisions** are store-wide and increase with every change, as in etcd: a key's
//!   [`KeyValue::revision`] is the revision of the write that last changed it; writes
//!   return the revision they committed at. Pass it to [`Store::compare_and_swap`] or
//!   [`Store::delete_if`] for optimistic concurrency. Revisions of different backends
//!   (or of a store that was replaced) are not comparable.
//! - **Durability**: a write has been committed (embedded: fsynced by redb; etcd: by a
//!   quorum) when its future resolves `Ok`.
//! - **Atomicity**: `create`, `compare_and_swap` and `delete_if` are atomic with respect
//!   to every other writer (etcd: a single-compare transaction; embedded: one redb write
//!   transaction under the store's lock).
//! - **Leases** (see [`lease`]): TTLs are whole seconds. Keys written with a lease are
//!   deleted, with `Delete` watch events, when it expires or is revoked. Writing with a
//!   lease that does not exist fails with [`StoreError::LeaseNotFound`]; so does
//!   `keep_alive` of an expired lease. `revoke` of an unknown lease succeeds.
//! - **Watches** report changes under a prefix committed after the watch was set up
//!   (the future resolves once it is), in revision order. A watcher that falls behind gets
//!   [`StoreError::WatchLost`] and its stream ends; it must list again and re-watch.
//! - **Keys** are non-empty UTF-8 strings; prefixes are plain string prefixes (`""` is
//!   everything).
//!
//! # Why boxed futures
//!
//! The daemon holds the store as `Arc<dyn Store>` and picks the backend at run time;
//! `async fn` in traits is not object-safe, and `async-trait` is not a dependency, so each
//! method returns a [`BoxFuture`] (one allocation per call, negligible next to an fsync
//! or a network round trip).

mod embedded;
mod error;
mod etcd;
mod etcd_auth;
mod etcd_tls;
pub mod follow;
pub mod health;
pub mod lease;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

pub use embedded::EmbeddedStore;
pub(crate) use embedded::watch_stream;
pub use error::{NoAnswer, Op, StoreError};
pub use etcd::EtcdStore;
pub use etcd_auth::{ClientCert, EtcdAuth, EtcdAuthError, EtcdAuthSettings, EtcdUser};
pub use health::{Monitored, StoreHealth};
pub use lease::{Clock, ManualClock, MonotonicClock};

/// A boxed, sendable future borrowing the store for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The events of one watch; the stream ends after an error or when the store goes away.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

/// A store-wide revision (etcd's `mod_revision`); 0 is never a key's revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(pub u64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A lease id (etcd's lease ids are positive `i64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // etcd prints lease ids in hex.
        write!(f, "{:x}", self.0)
    }
}

/// A key, its value and the revision that last changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the write that last changed it.
    pub revision: Revision,
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// `key` was created or overwritten with `value` at `revision`.
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: Vec<u8>,
        /// The revision of the write.
        revision: Revision,
    },
    /// `key` was deleted at `revision` (explicitly, or because its lease ended).
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        revision: Revision,
    },
}

impl WatchEvent {
    /// The key the event is about.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { key, .. } | WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { revision, .. } | WatchEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// The cluster-state store. See the module docs for the contract both backends keep.
pub trait Store: Send + Sync + fmt::Debug {
    /// The value of `key` and its revision, if it exists.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>>;

    /// Every key starting with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>>;

    /// Sets `key` to `value` (attached to `lease`, or to none); returns the new revision.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Revision, StoreError>>;

    /// Creates `key` only if it does not exist: `Some(revision)` if this call created
    /// it, `None` if it already existed (then nothing changed).
    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>>;

    /// Sets `key` only if it exists at revision `expected`: `Some(new revision)` if
    /// swapped, `None` if the key is missing or has changed since.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>>;

    /// Deletes `key`; true if it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Deletes `key` only if it exists at revision `expected`; true if deleted.
    fn delete_if<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Grants a lease of `ttl` (rounded up to whole seconds, see [`lease`]).
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<LeaseId, StoreError>>;

    /// Refreshes `lease` once to its full TTL; [`StoreError::LeaseNotFound`] if it has
    /// already expired or been revoked. The holder calls this in a loop.
    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Ends `lease` now and deletes its keys; succeeds if the lease is already gone.
    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Watches every key under `prefix` for changes committed after this resolves.
    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<WatchStream, StoreError>>;

    /// Whether the store works, as far as its calls showed (see [`health`]); a store
    /// that does not watch itself says it works.
    fn health(&self) -> StoreHealth {
        StoreHealth::default()
    }
}

/// `e` with its causes, `: `-separated, for a log line or `tweed status`.
pub use tweed_api::dataplane::proto::error_chain;

/// Rejects the empty key (etcd has no such key; both backends refuse it alike).
fn check_key(op: Op, key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument {
            op,
            key: String::new(),
            reason: "the key is empty",
        });
    }
    Ok(())
}

/// Which backend to use and where it lives (the daemon's `--state-dir` and
/// `--etcd-endpoints`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The state directory; the embedded store's file is [`EMBEDDED_FILE`] in it.
    pub state_dir: PathBuf,
    /// etcd client URLs (`http://10.0.0.1:2379`); empty selects the embedded store.
    pub etcd_endpoints: Vec<String>,
    /// etcd's TLS and user settings.
    pub etcd_auth: EtcdAuth,
    /// How long one etcd request (and the initial connection) may take.
    pub etcd_timeout: Duration,
}

/// The embedded store's database file, inside [`StoreConfig::state_dir`].
pub const EMBEDDED_FILE: &str = "state.redb";

/// How often the embedded store sweeps expired leases when opened by [`open`].
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

impl StoreConfig {
    /// The embedded store in `state_dir`.
    pub fn embedded(state_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            state_dir: state_dir.into(),
            etcd_endpoints: Vec::new(),
            etcd_auth: EtcdAuth::default(),
            etcd_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens the configured store: etcd if endpoints are given (checking that it answers),
/// otherwise the embedded store in the state directory (created if missing), with its
/// expired-lease sweeper running on the current tokio runtime. Either is [`Monitored`].
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    let store = open_backend(config).await?;
    Ok(Arc::new(Monitored::new(store)))
}

async fn open_backend(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    if config.etcd_endpoints.is_empty() {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| StoreError::Open {
            path: config.state_dir.clone(),
            source: Box::new(e),
        })?;
        let store = EmbeddedStore::open(config.state_dir.join(EMBEDDED_FILE))?;
        store.spawn_sweeper(SWEEP_INTERVAL);
        Ok(Arc::new(store))
    } else {
        let store = EtcdStore::connect_with(
            &config.etcd_endpoints,
            &config.etcd_auth,
            config.etcd_timeout,
        )
        .await?;
        Ok(Arc::new(store))
    }
}

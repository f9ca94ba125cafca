//! The store's one error type.
//!
//! Every variant names the failing operation and what it was applied to (a key, a prefix
//! or a lease), with the backend's error chained as `source`, so a log line says what to
//! fix. "etcd is unreachable" is its own variant ([`StoreError::Unreachable`]): the CLI
//! prints it as one sentence instead of a gRPC status dump.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::LeaseId;
use super::etcd_auth::EtcdAuthError;

/// The store operation that failed (for messages; `Display` is the verb).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Opening the embedded database or connecting to etcd.
    Open,
    /// [`Store::get`](super::Store::get).
    Get,
    /// [`Store::list`](super::Store::list).
    List,
    /// [`Store::put`](super::Store::put).
    Put,
    /// [`Store::create`](super::Store::create).
    Create,
    /// [`Store::compare_and_swap`](super::Store::compare_and_swap).
    CompareAndSwap,
    /// [`Store::delete`](super::Store::delete).
    Delete,
    /// [`Store::delete_if`](super::Store::delete_if).
    DeleteIf,
    /// [`Store::grant`](super::Store::grant).
    Grant,
    /// [`Store::keep_alive`](super::Store::keep_alive).
    KeepAlive,
    /// [`Store::revoke`](super::Store::revoke), or the reaping of an expired lease.
    Revoke,
    /// [`Store::watch`](super::Store::watch), and receiving its events.
    Watch,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open",
            Op::Get => "get",
            Op::List => "list",
            Op::Put => "put",
            Op::Create => "create",
            Op::CompareAndSwap => "compare-and-swap",
            Op::Delete => "delete",
            Op::DeleteIf => "delete-if",
            Op::Grant => "grant lease",
            Op::KeepAlive => "keep lease alive",
            Op::Revoke => "revoke lease",
            Op::Watch => "watch",
        })
    }
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No etcd endpoint answered (connection refused, no route, or no answer in time).
    #[error("etcd is unreachable at {endpoints}")]
    Unreachable {
        /// The configured endpoints, comma-separated.
        endpoints: String,
        /// The transport error, or [`NoAnswer`] for a timeout.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The etcd TLS or user files could not be read or hold the wrong thing.
    #[error("load the etcd credentials")]
    Credentials(#[source] EtcdAuthError),
    /// The TLS handshake with etcd failed: etcd's certificate is not signed by the
    /// configured CA or does not name the endpoint's host, or etcd refused the client
    /// certificate (or its absence).
    #[error(
        "TLS with etcd at {endpoints} failed (check --etcd-ca: the CA that signed etcd's server certificate, which must name the endpoint's host; --etcd-cert and --etcd-key: a client certificate etcd's client CA signed)"
    )]
    Tls {
        /// The configured endpoints, comma-separated.
        endpoints: String,
        /// rustls's reason, or [`ClosedAfterHandshake`].
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// etcd refused to authenticate the user.
    #[error(
        "etcd at {endpoints} refused to authenticate user {user:?} (check --etcd-username and --etcd-password-file)"
    )]
    Authenticate {
        /// The configured endpoints, comma-separated.
        endpoints: String,
        /// The user.
        user: String,
        /// etcd's answer.
        #[source]
        source: etcd_client::Error,
    },
    /// The embedded store's directory or database file could not be opened.
    #[error("cannot open the state database {}", path.display())]
    Open {
        /// The database file (or its directory).
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded database (redb) failed an operation.
    #[error("{op} {key:?} failed in the embedded store")]
    Embedded {
        /// The operation.
        op: Op,
        /// The key or prefix (for lease operations: `lease <id>`).
        key: String,
        /// redb's error.
        #[source]
        source: redb::Error,
    },
    /// etcd answered with an error.
    #[error("etcd {op} {key:?} failed")]
    Etcd {
        /// The operation.
        op: Op,
        /// The key or prefix (for lease operations: `lease <id>`).
        key: String,
        /// etcd-client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// The lease does not exist: it expired, was revoked, or never was granted here.
    /// A holder gets this from `keep_alive` when it kept the lease alive too late: it
    /// must grant a new lease and write its keys again.
    #[error("{op} {key:?}: lease {lease} does not exist (expired or revoked)")]
    LeaseNotFound {
        /// The operation.
        op: Op,
        /// The key being written, or `lease <id>`.
        key: String,
        /// The missing lease.
        lease: LeaseId,
    },
    /// The request itself is invalid (an empty key, a zero TTL); nothing changed.
    #[error("{op} {key:?}: {reason}")]
    InvalidArgument {
        /// The operation.
        op: Op,
        /// The key or `lease <id>`.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A watcher fell behind or was cancelled by the server and missed events; the
    /// stream ends after this error. List the prefix again and start a new watch.
    #[error("watch {prefix:?} lost events: {reason}")]
    WatchLost {
        /// The watched prefix.
        prefix: String,
        /// Why (lagged by N events, compacted, cancelled).
        reason: String,
    },
    /// A stored record could not be decoded (a damaged or foreign database).
    #[error("{op} {key:?}: corrupt record: {reason}")]
    Corrupt {
        /// The operation.
        op: Op,
        /// The key whose record is bad.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is read from the Kubernetes API server (`--datasource
    /// kubernetes`): tweed does not write it; nothing changed.
    #[error(
        "{op} {key:?}: in Kubernetes mode this comes from the API server; change it there (kubectl)"
    )]
    Managed {
        /// The operation.
        op: Op,
        /// The key.
        key: String,
    },
    /// The runtime shut down while a blocking database call was queued.
    #[error("{op} {key:?} abandoned: the runtime is shutting down")]
    Shutdown {
        /// The operation.
        op: Op,
        /// The key or `lease <id>`.
        key: String,
    },
}

impl StoreError {
    /// True when etcd could not be reached at all (retrying later may help).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }

    /// True when the store itself failed (unreachable, a backend error, the
    /// runtime going away), not the request (a missing lease, an invalid key, a
    /// lost watch, a record that does not decode).
    pub fn is_the_stores(&self) -> bool {
        matches!(
            self,
            StoreError::Unreachable { .. }
                | StoreError::Credentials(_)
                | StoreError::Tls { .. }
                | StoreError::Authenticate { .. }
                | StoreError::Open { .. }
                | StoreError::Embedded { .. }
                | StoreError::Etcd { .. }
                | StoreError::Shutdown { .. }
        )
    }
}

/// The source of a [`StoreError::Tls`] when etcd closed the connection without a
/// TLS alert that rustls could report (etcd does so when it requires a client
/// certificate and got none it trusts).
#[derive(Debug, thiserror::Error)]
#[error(
    "etcd closed the connection during the TLS handshake or right after it, as it does when it requires a client certificate and got none it trusts"
)]
pub struct ClosedAfterHandshake;

/// The source of an [`StoreError::Unreachable`] raised by a timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
pub struct NoAnswer(pub Duration);

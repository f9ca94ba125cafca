//! The etcd v3 store: each [`Store`] call is one etcd RPC or one single-compare
//! transaction.
//!
//! - `create` is `txn(if create_revision(key) == 0 then put)`, `compare_and_swap` and
//!   `delete_if` compare `mod_revision`; the revision returned is the response header's.
//! - `keep_alive` opens a keep-alive stream, sends one request and reads one answer (a TTL
//!   of 0 means the lease is gone); the holder calls it in a loop.
//! - `watch` waits for etcd's "created" answer before it resolves, so the watch covers
//!   every change committed after that; a compaction or cancel ends it with `WatchLost`.
//!
//! Only APIs that etcd 3.4 has are used (Debian's `etcd-server` is 3.4.23; `get_stream`
//! would need 3.7). Every unary call is bounded by the configured timeout; a timeout, a
//! transport error, a status whose cause is an I/O error (the connection failed under the
//! request) or an `Unavailable` status is reported as
//! [`StoreError::Unreachable`]. Watch streams are not bounded by the timeout; HTTP/2
//! keep-alives detect a dead connection under them.
//!
//! TLS and an etcd user are optional ([`EtcdAuth`], read by [`etcd_tls`]); connecting
//! tells a TLS failure and a refused user apart from an unreachable etcd.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};
use futures::StreamExt;

use super::error::{ClosedAfterHandshake, NoAnswer, Op, StoreError};
use super::etcd_auth::EtcdAuth;
use super::etcd_tls;
use super::lease::granted_ttl;
use super::{BoxFuture, KeyValue, LeaseId, Revision, Store, WatchEvent, WatchStream, check_key};

/// gRPC status codes (tonic is not a direct dependency, so they are named here).
const GRPC_CANCELLED: i32 = 1;
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_NOT_FOUND: i32 = 5;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_FAILED_PRECONDITION: i32 = 9;
const GRPC_UNAVAILABLE: i32 = 14;
const GRPC_UNAUTHENTICATED: i32 = 16;

/// HTTP/2 keep-alive interval on the connection (its timeout is the request timeout).
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// A store in an etcd v3 cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// The endpoints, comma-separated, for messages.
    endpoints: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://host:port`) and checks that it
    /// answers within `timeout`; every later request is bounded by `timeout` too.
    pub async fn connect<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, &EtcdAuth::default(), timeout).await
    }

    /// [`EtcdStore::connect`] with TLS and a user: reads the files of `auth`, connects
    /// (authenticating, with a user) and checks that etcd answers. A failure says which
    /// step failed: the files ([`StoreError::Credentials`]), TLS ([`StoreError::Tls`]),
    /// the user ([`StoreError::Authenticate`]), or reaching etcd at all.
    pub async fn connect_with<S: AsRef<str>>(
        endpoints: &[S],
        auth: &EtcdAuth,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let joined: Vec<&str> = endpoints.iter().map(AsRef::as_ref).collect();
        let joined: Arc<str> = joined.join(",").into();
        let options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, timeout)
            .with_keep_alive_while_idle(true);
        let options = etcd_tls::apply(auth, options).map_err(StoreError::Credentials)?;
        let user = auth.user.as_ref().map(|u| u.name.as_str());
        // With a user, this authenticates: the first request etcd sees.
        let connecting = Client::connect(endpoints, Some(options));
        let client = bounded(&joined, timeout, Op::Open, &joined, None, connecting)
            .await
            .map_err(|e| opening(e, auth.uses_tls(), user))?;
        let store = EtcdStore {
            client,
            endpoints: joined,
            timeout,
        };
        // The channel connects lazily: ask for something to know etcd is there.
        let mut maintenance = store.client.maintenance_client();
        store
            .call(Op::Open, &store.endpoints, None, maintenance.status())
            .await
            .map_err(|e| opening(e, auth.uses_tls(), None))?;
        tracing::info!(endpoints = %store.endpoints, auth = %auth.describe(), "connected to etcd");
        Ok(store)
    }

    /// Runs one request bounded by the timeout, classifying its error.
    async fn call<T>(
        &self,
        op: Op,
        key: &str,
        lease: Option<LeaseId>,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        bounded(&self.endpoints, self.timeout, op, key, lease, request).await
    }

    /// A put with an optional lease, as options.
    fn put_options(lease: Option<LeaseId>) -> Option<PutOptions> {
        lease.map(|l| PutOptions::new().with_lease(l.0))
    }

    /// Runs `txn` (one compare, one operation); `Some(header revision)` if it succeeded.
    async fn txn(
        &self,
        op: Op,
        key: &str,
        lease: Option<LeaseId>,
        txn: Txn,
    ) -> Result<Option<Revision>, StoreError> {
        let mut kv = self.client.kv_client();
        let resp = self.call(op, key, lease, kv.txn(txn)).await?;
        if resp.succeeded() {
            Ok(Some(header_revision(resp.header())))
        } else {
            Ok(None)
        }
    }
}

/// Runs `request` for at most `timeout`; maps its error to a [`StoreError`].
async fn bounded<T>(
    endpoints: &str,
    timeout: Duration,
    op: Op,
    key: &str,
    lease: Option<LeaseId>,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(endpoints, op, key, lease, e)),
        Err(_) => Err(StoreError::Unreachable {
            endpoints: endpoints.to_owned(),
            source: Box::new(NoAnswer(timeout)),
        }),
    }
}

/// Names the step a connection failed in: TLS (`tls`: the connection uses it), or
/// (`user` given while authenticating it) the user; any other failure stays as it was.
///
/// A TLS failure is a rustls error (or, with TLS, its text) in the chain, or, with TLS, etcd closing the
/// connection before any answer ([`closed_by_etcd`]): rustls sees no alert when etcd
/// drops a client without an acceptable certificate, only the closed connection; a
/// refused or unrouted connection is neither.
fn opening(e: StoreError, tls: bool, user: Option<&str>) -> StoreError {
    match e {
        StoreError::Unreachable { endpoints, source } => {
            let etcd = source.downcast_ref::<etcd_client::Error>();
            if let Some(cause) = etcd.and_then(|e| etcd_tls::tls_cause(e, tls)) {
                StoreError::Tls {
                    endpoints,
                    source: cause,
                }
            } else if tls && etcd.is_some_and(closed_by_etcd) {
                StoreError::Tls {
                    endpoints,
                    source: Box::new(ClosedAfterHandshake),
                }
            } else {
                StoreError::Unreachable { endpoints, source }
            }
        }
        StoreError::Etcd { op, key, source } => {
            if let Some(cause) = etcd_tls::tls_cause(&source, tls) {
                return StoreError::Tls {
                    endpoints: key,
                    source: cause,
                };
            }
            if tls && closed_by_etcd(&source) {
                return StoreError::Tls {
                    endpoints: key,
                    source: Box::new(ClosedAfterHandshake),
                };
            }
            match user {
                Some(user) if refuses_user(&source) => StoreError::Authenticate {
                    endpoints: key,
                    user: user.to_owned(),
                    source,
                },
                _ => StoreError::Etcd { op, key, source },
            }
        }
        e => e,
    }
}

/// Whether etcd closed the connection under a request: gRPC "cancelled" (hyper saw
/// the connection close), or a broken pipe, reset or early end of stream in the chain
/// (the close came while the request was being written).
fn closed_by_etcd(e: &etcd_client::Error) -> bool {
    use std::io::ErrorKind as K;
    let etcd_client::Error::GRpcStatus(status) = e else {
        return false;
    };
    if i32::from(status.code()) == GRPC_CANCELLED {
        return true;
    }
    io_cause(status).is_some_and(|io| {
        matches!(
            io.kind(),
            K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof
        )
    })
}

/// The I/O error in a gRPC status's cause chain: the connection under the request
/// failed (tonic reports that as status "unknown", message "transport error", with
/// the I/O error as its cause), so etcd never answered.
fn io_cause<'a>(status: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut next = Some(status);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = e.source();
    }
    None
}

/// Whether etcd's answer to an authentication refuses the user: a wrong name or
/// password ("authentication failed" is an invalid argument), auth not enabled (a
/// failed precondition), or a denial.
fn refuses_user(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            i32::from(s.code()),
            GRPC_INVALID_ARGUMENT
                | GRPC_PERMISSION_DENIED
                | GRPC_FAILED_PRECONDITION
                | GRPC_UNAUTHENTICATED
        ),
        _ => false,
    }
}

/// Sorts an etcd-client error into unreachable, lease-not-found, or a plain etcd error.
fn classify(
    endpoints: &str,
    op: Op,
    key: &str,
    lease: Option<LeaseId>,
    e: etcd_client::Error,
) -> StoreError {
    use etcd_client::Error as E;
    let unreachable = match &e {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(s) => {
            matches!(
                i32::from(s.code()),
                GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED | GRPC_CANCELLED
            ) || io_cause(s).is_some()
        }
        _ => false,
    };
    if unreachable {
        return StoreError::Unreachable {
            endpoints: endpoints.to_owned(),
            source: Box::new(e),
        };
    }
    let lease_gone = match &e {
        // "etcdserver: requested lease not found"
        E::GRpcStatus(s) => {
            i32::from(s.code()) == GRPC_NOT_FOUND && s.message().contains("lease not found")
        }
        // keep_alive's own check of a TTL of 0.
        E::LeaseKeepAliveError(m) => m.contains("lease not found"),
        _ => false,
    };
    match lease {
        Some(lease) if lease_gone => StoreError::LeaseNotFound {
            op,
            key: key.to_owned(),
            lease,
        },
        _ => StoreError::Etcd {
            op,
            key: key.to_owned(),
            source: e,
        },
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    Revision(header.map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0)))
}

fn revision(r: i64) -> Revision {
    Revision(u64::try_from(r).unwrap_or(0))
}

/// Converts an etcd key-value; keys must be UTF-8 (tweed only writes such keys).
fn key_value(op: Op, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let key = kv.key_str().map_err(|_| StoreError::Corrupt {
        op,
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        reason: "the key is not UTF-8".into(),
    })?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: kv.value().to_vec(),
        revision: revision(kv.mod_revision()),
    })
}

fn lease_key(id: LeaseId) -> String {
    format!("lease {id}")
}

impl Store for EtcdStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        Box::pin(async move {
            check_key(Op::Get, key)?;
            let mut kv = self.client.kv_client();
            let resp = self.call(Op::Get, key, None, kv.get(key, None)).await?;
            resp.kvs()
                .first()
                .map(|kv| key_value(Op::Get, kv))
                .transpose()
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        Box::pin(async move {
            let mut kv = self.client.kv_client();
            let options = GetOptions::new().with_prefix();
            let resp = self
                .call(Op::List, prefix, None, kv.get(prefix, Some(options)))
                .await?;
            resp.kvs()
                .iter()
                .map(|kv| key_value(Op::List, kv))
                .collect()
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Revision, StoreError>> {
        Box::pin(async move {
            check_key(Op::Put, key)?;
            let mut kv = self.client.kv_client();
            let request = kv.put(key, value, Self::put_options(lease));
            let resp = self.call(Op::Put, key, lease, request).await?;
            Ok(header_revision(resp.header()))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        Box::pin(async move {
            check_key(Op::Create, key)?;
            let txn = Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, Self::put_options(lease))]);
            self.txn(Op::Create, key, lease, txn).await
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        Box::pin(async move {
            check_key(Op::CompareAndSwap, key)?;
            // A missing key has mod_revision 0, which no expected revision matches
            // (except 0, which never came from this store: refuse it).
            let Ok(expected) = i64::try_from(expected.0) else {
                return Ok(None);
            };
            if expected == 0 {
                return Ok(None);
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([TxnOp::put(key, value, Self::put_options(lease))]);
            self.txn(Op::CompareAndSwap, key, lease, txn).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            check_key(Op::Delete, key)?;
            let mut kv = self.client.kv_client();
            let resp = self
                .call(Op::Delete, key, None, kv.delete(key, None))
                .await?;
            Ok(resp.deleted() > 0)
        })
    }

    fn delete_if<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            check_key(Op::DeleteIf, key)?;
            let Ok(expected) = i64::try_from(expected.0) else {
                return Ok(false);
            };
            if expected == 0 {
                return Ok(false);
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([TxnOp::delete(key, None)]);
            Ok(self.txn(Op::DeleteIf, key, None, txn).await?.is_some())
        })
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<LeaseId, StoreError>> {
        Box::pin(async move {
            let secs = i64::try_from(granted_ttl(ttl).as_secs()).unwrap_or(i64::MAX);
            let mut lease = self.client.lease_client();
            let resp = self
                .call(Op::Grant, "new lease", None, lease.grant(secs, None))
                .await?;
            Ok(LeaseId(resp.id()))
        })
    }

    fn keep_alive(&self, id: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut lease = self.client.lease_client();
            let key = lease_key(id);
            // One request, one answer; dropping the keeper closes the stream.
            let (_keeper, _answers) = self
                .call(Op::KeepAlive, &key, Some(id), lease.keep_alive(id.0))
                .await?;
            Ok(())
        })
    }

    fn revoke(&self, id: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut lease = self.client.lease_client();
            let key = lease_key(id);
            match self
                .call(Op::Revoke, &key, Some(id), lease.revoke(id.0))
                .await
            {
                Ok(_) | Err(StoreError::LeaseNotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        Box::pin(async move {
            let mut client = self.client.watch_client();
            let created = create_watch(&mut client, prefix);
            let (stream, canceled) = self.call(Op::Watch, prefix, None, created).await?;
            if canceled {
                return Err(StoreError::WatchLost {
                    prefix: prefix.to_owned(),
                    reason: "etcd refused the watch".into(),
                });
            }
            Ok(watch_stream(
                stream,
                prefix.to_owned(),
                self.endpoints.clone(),
            ))
        })
    }
}

/// Opens a prefix watch and waits for etcd to confirm it; true if etcd cancelled it.
async fn create_watch(
    client: &mut etcd_client::WatchClient,
    prefix: &str,
) -> Result<(etcd_client::WatchStream, bool), etcd_client::Error> {
    let options = WatchOptions::new().with_prefix();
    let mut stream = client.watch(prefix, Some(options)).await?;
    // etcd answers the create request before any event of this watch.
    loop {
        match stream.message().await? {
            Some(resp) if resp.created() => return Ok((stream, resp.canceled())),
            Some(_) => {}
            None => {
                return Err(etcd_client::Error::WatchError(
                    "etcd closed the watch before creating it".into(),
                ));
            }
        }
    }
}

/// A watch in progress: the etcd stream (both halves kept, so etcd keeps it open), the
/// events of the last answer not yet yielded, and what error messages need.
struct Watching {
    stream: etcd_client::WatchStream,
    pending: VecDeque<WatchEvent>,
    prefix: String,
    endpoints: Arc<str>,
}

fn watch_stream(
    stream: etcd_client::WatchStream,
    prefix: String,
    endpoints: Arc<str>,
) -> WatchStream {
    let watching = Watching {
        stream,
        pending: VecDeque::new(),
        prefix,
        endpoints,
    };
    futures::stream::unfold(Some(watching), |state| async move {
        let mut w = state?;
        loop {
            if let Some(event) = w.pending.pop_front() {
                return Some((Ok(event), Some(w)));
            }
            let lost = |w: Watching, reason: String| {
                let e = StoreError::WatchLost {
                    prefix: w.prefix,
                    reason,
                };
                Some((Err(e), None))
            };
            let resp = match w.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return lost(w, "etcd closed the watch".into()),
                Err(e) => {
                    let e = classify(&w.endpoints, Op::Watch, &w.prefix, None, e);
                    return Some((Err(e), None));
                }
            };
            if resp.canceled() {
                let reason = if resp.compact_revision() > 0 {
                    format!("compacted at revision {}", resp.compact_revision())
                } else {
                    format!("cancelled by etcd: {}", resp.cancel_reason())
                };
                return lost(w, reason);
            }
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let Ok(key) = kv.key_str() else {
                    tracing::warn!(prefix = %w.prefix, "etcd watch: skipping a non-UTF-8 key");
                    continue;
                };
                let key = key.to_owned();
                let revision = revision(kv.mod_revision());
                w.pending.push_back(match event.event_type() {
                    EventType::Put => WatchEvent::Put {
                        key,
                        value: kv.value().to_vec(),
                        revision,
                    },
                    EventType::Delete => WatchEvent::Delete { key, revision },
                });
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status-like error whose cause is the failed connection.
    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn an_io_error_in_the_chain_is_found_and_its_absence_too() {
        let broken = Wrapped(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let found = io_cause(&broken).map(std::io::Error::kind);
        assert_eq!(found, Some(std::io::ErrorKind::BrokenPipe));
        assert!(io_cause(&NoAnswer(Duration::from_secs(1))).is_none());
    }
}

//! The store's health as its users see it: whether its last call worked,
//! and if not, why.
//!
//! [`Monitored`] wraps either backend and records the outcome of every call
//! (only failures of the store itself count: etcd unreachable, an etcd or
//! redb error, the runtime going away; a missing lease or an invalid key is
//! the caller's business). It logs each change of state once, with the
//! cause, rather than every failing call, and `tweed status` and the
//! `tweed_store_up` metric show it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{BoxFuture, KeyValue, LeaseId, Revision, Store, StoreError, WatchStream, error_chain};

/// What [`Store::health`] reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// The last call that reached the store failed.
    pub failing: bool,
    /// Its error, with causes, while failing.
    pub error: Option<String>,
    /// Calls that failed, ever.
    pub failures: u64,
}

/// A store that records the outcome of every call (see the module docs).
/// It shows as the store it wraps (`EmbeddedStore { path: .. }`).
pub struct Monitored {
    inner: Arc<dyn Store>,
    health: Mutex<StoreHealth>,
}

impl std::fmt::Debug for Monitored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Monitored {
    /// Monitors `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Monitored {
            inner,
            health: Mutex::new(StoreHealth::default()),
        }
    }

    fn record<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let failed = match &result {
            Err(e) if e.is_the_stores() => Some(error_chain(e)),
            // Refused before it reached the store: says nothing either way.
            Err(StoreError::InvalidArgument { .. }) => return result,
            _ => None,
        };
        let Ok(mut health) = self.health.lock() else {
            return result;
        };
        match failed {
            Some(error) => {
                health.failures += 1;
                if !health.failing {
                    tracing::error!(%error, "the store is failing; calls that need it fail until it works again");
                }
                health.failing = true;
                health.error = Some(error);
            }
            None if health.failing => {
                tracing::info!("the store works again");
                health.failing = false;
                health.error = None;
            }
            None => {}
        }
        result
    }

    fn wrap<'a, T: Send + 'a>(
        &'a self,
        call: BoxFuture<'a, Result<T, StoreError>>,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async move { self.record(call.await) })
    }
}

impl Store for Monitored {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        self.wrap(self.inner.get(key))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        self.wrap(self.inner.list(prefix))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Revision, StoreError>> {
        self.wrap(self.inner.put(key, value, lease))
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        self.wrap(self.inner.create(key, value, lease))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        self.wrap(self.inner.compare_and_swap(key, expected, value, lease))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrap(self.inner.delete(key))
    }

    fn delete_if<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.wrap(self.inner.delete_if(key, expected))
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<LeaseId, StoreError>> {
        self.wrap(self.inner.grant(ttl))
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.wrap(self.inner.keep_alive(lease))
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.wrap(self.inner.revoke(lease))
    }

    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        self.wrap(self.inner.watch(prefix))
    }

    fn health(&self) -> StoreHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EmbeddedStore, Op};

    #[test]
    fn failures_of_the_store_are_recorded_until_a_call_works() {
        let dir = std::env::temp_dir().join(format!("tweed-health-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let store = EmbeddedStore::open(dir.join("state.redb")).expect("open");
        let monitored = Monitored::new(Arc::new(store));
        assert_eq!(monitored.health(), StoreHealth::default());
        let down = StoreError::Unreachable {
            endpoints: "http://10.0.0.1:2379".into(),
            source: "connection refused".into(),
        };
        let _ = monitored.record::<()>(Err(down));
        let health = monitored.health();
        assert!(health.failing);
        assert_eq!(health.failures, 1);
        let error = health.error.expect("the cause");
        assert!(
            error.contains("10.0.0.1") && error.contains("connection refused"),
            "{error}"
        );
        // A request refused before it reached the store says nothing.
        let theirs = StoreError::InvalidArgument {
            op: Op::Put,
            key: String::new(),
            reason: "the key is empty",
        };
        let _ = monitored.record::<()>(Err(theirs));
        assert_eq!(monitored.health().failures, 1);
        assert!(monitored.health().failing, "nothing worked since");
        let _ = monitored.record(Ok(()));
        let health = monitored.health();
        assert!(!health.failing && health.error.is_none(), "{health:?}");
        assert_eq!(health.failures, 1, "the count stays");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

//! What the API server says, as store entries held in memory: the
//! [`Reflector`](super::reflect::Reflector)s write it, the
//! [`Layered`](super::layered::Layered) store reads it with the same list and
//! watch semantics as the stores (revisions of its own, increasing; a watcher
//! that falls behind loses its watch and lists again).
//!
//! It is a cache, rebuilt by listing on every start, as every Kubernetes
//! controller's is: nothing here needs to survive the daemon. While the API
//! server cannot be reached it keeps the last state, so enforcement goes on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::broadcast;

use super::reflect::MirrorOp;
use crate::store::{KeyValue, Revision, WatchEvent, WatchStream, watch_stream};

/// How many events a watcher may fall behind before it loses its watch.
const WATCH_BUFFER: usize = 16384;

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<String, (Vec<u8>, Revision)>,
    revision: u64,
}

/// The mirrored entries.
#[derive(Debug)]
pub struct Mirror {
    state: Mutex<State>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror {
            state: Mutex::default(),
            events: broadcast::channel(WATCH_BUFFER).0,
        }
    }
}

impl Mirror {
    /// Applies `ops` in order; unchanged values and deletes of absent keys
    /// make no event.
    pub fn apply(&self, ops: Vec<MirrorOp>) {
        let mut state = self.state.lock().expect("mirror lock");
        for op in ops {
            let event = match op {
                MirrorOp::Put(key, value) => {
                    if state.entries.get(&key).is_some_and(|(v, _)| *v == value) {
                        continue;
                    }
                    state.revision += 1;
                    let revision = Revision(state.revision);
                    state.entries.insert(key.clone(), (value.clone(), revision));
                    WatchEvent::Put {
                        key,
                        value,
                        revision,
                    }
                }
                MirrorOp::Delete(key) => {
                    if state.entries.remove(&key).is_none() {
                        continue;
                    }
                    state.revision += 1;
                    WatchEvent::Delete {
                        key,
                        revision: Revision(state.revision),
                    }
                }
            };
            // No receiver is fine: nobody watches yet.
            let _ = self.events.send(event);
        }
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        let state = self.state.lock().expect("mirror lock");
        state.entries.get(key).map(|(value, revision)| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            revision: *revision,
        })
    }

    /// Every entry under `prefix` that `keep` accepts, in key order.
    pub fn list(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> Vec<KeyValue> {
        let state = self.state.lock().expect("mirror lock");
        state
            .entries
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| keep(k))
            .map(|(k, (value, revision))| KeyValue {
                key: k.clone(),
                value: value.clone(),
                revision: *revision,
            })
            .collect()
    }

    /// The changes under `prefix` from now on.
    pub fn watch(&self, prefix: &str) -> WatchStream {
        // Under the lock: no change falls between a listing and this.
        let _state = self.state.lock().expect("mirror lock");
        watch_stream(self.events.subscribe(), prefix.to_owned())
    }

    /// The value of `key` once it exists, waiting at most `timeout`.
    pub async fn wait_for(&self, key: &str, timeout: Duration) -> Option<Vec<u8>> {
        let mut events = {
            let state = self.state.lock().expect("mirror lock");
            if let Some((value, _)) = state.entries.get(key) {
                return Some(value.clone());
            }
            self.events.subscribe()
        };
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(WatchEvent::Put { key: k, value, .. }) if k == key => return Some(value),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(kv) = self.get(key) {
                            return Some(kv.value);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn put(k: &str, v: &str) -> MirrorOp {
        MirrorOp::Put(k.into(), v.into())
    }

    #[tokio::test]
    async fn watchers_see_changes_not_repeats() {
        let mirror = Mirror::default();
        mirror.apply(vec![put("/a/1", "x")]);
        let mut watch = mirror.watch("/a/");
        mirror.apply(vec![
            put("/a/1", "x"),
            put("/b/1", "y"),
            put("/a/2", "z"),
            MirrorOp::Delete("/a/1".into()),
            MirrorOp::Delete("/a/9".into()),
        ]);
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!(first.key(), "/a/2");
        let second = watch.next().await.unwrap().unwrap();
        assert!(matches!(second, WatchEvent::Delete { ref key, .. } if key == "/a/1"));
        assert!(second.revision() > first.revision());
        let listed = mirror.list("/", |k| k != "/b/1");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "/a/2");
    }

    #[tokio::test]
    async fn wait_for_returns_a_value_that_arrives_later_or_gives_up() {
        let mirror = std::sync::Arc::new(Mirror::default());
        let writer = mirror.clone();
        let waiter =
            tokio::spawn(
                async move { writer.wait_for("/p/ns/web", Duration::from_secs(10)).await },
            );
        tokio::task::yield_now().await;
        mirror.apply(vec![put("/p/ns/web", "{}")]);
        assert_eq!(waiter.await.unwrap(), Some(b"{}".to_vec()));
        assert_eq!(
            mirror
                .wait_for("/p/ns/none", Duration::from_millis(10))
                .await,
            None
        );
    }
}

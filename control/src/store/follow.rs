//! Inputs kept current from a few store prefixes: listed once, then followed
//! through their watch events, burst by burst, and listed again after any
//! error. What the policy enforcer and the Service balancer both do with
//! their inputs; each says what a listing and a burst mean to it.

use std::future::Future;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::{KeyValue, Store, StoreError, WatchEvent};

/// How long a follower waits before watching again after an error.
pub const RETRY: Duration = Duration::from_secs(1);

/// Inputs made of the entries under some store prefixes. Pure.
pub trait Inputs: Default {
    /// The prefixes the inputs come from.
    const PREFIXES: &'static [&'static str];

    /// Sets one key's value; true if the inputs changed. A value that does
    /// not decode is logged and treated as absent ([`decoded`]).
    fn put(&mut self, key: &str, value: &[u8]) -> bool;

    /// Removes one key; true if the inputs changed.
    fn delete(&mut self, key: &str) -> bool;

    /// The inputs of listed entries (of every prefix, in any order).
    fn from_lists<'a>(listed: impl IntoIterator<Item = &'a KeyValue>) -> Self {
        let mut inputs = Self::default();
        for kv in listed {
            inputs.put(&kv.key, &kv.value);
        }
        inputs
    }

    /// Applies one watch event; true if the inputs changed.
    fn apply(&mut self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Put { key, value, .. } => self.put(key, value),
            WatchEvent::Delete { key, .. } => self.delete(key),
        }
    }

    /// Applies every event of a burst; true if the inputs changed.
    fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a WatchEvent>) -> bool {
        events
            .into_iter()
            .fold(false, |changed, event| self.apply(event) | changed)
    }
}

/// A stored JSON record decoded; one that does not decode is logged (naming
/// its key) and `None`.
pub fn decoded<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    serde_json::from_slice(value)
        .map_err(|e| tracing::error!(%key, error = %e, "ignoring a corrupt record"))
        .ok()
}

/// Lists every prefix of `I` from the store.
pub async fn list<I: Inputs>(store: &dyn Store) -> Result<I, StoreError> {
    let mut listed = Vec::new();
    for prefix in I::PREFIXES {
        listed.extend(store.list(prefix).await?);
    }
    Ok(I::from_lists(&listed))
}

/// One round of following: watches every prefix of `I`, lists them (after
/// the watches start, so nothing between the two is missed) and hands the
/// listing to `listed`, then each burst of events (whatever is already
/// waiting behind the first) to `burst`, until a watch fails or ends.
pub async fn round<I, L, B>(
    store: &dyn Store,
    listed: impl FnOnce(I) -> L,
    mut burst: impl FnMut(Vec<WatchEvent>) -> B,
) -> Result<(), StoreError>
where
    I: Inputs,
    L: Future<Output = ()>,
    B: Future<Output = ()>,
{
    let mut streams = Vec::new();
    for prefix in I::PREFIXES {
        streams.push(store.watch(prefix).await?);
    }
    listed(list::<I>(store).await?).await;
    let mut events = futures::stream::select_all(streams);
    while let Some(event) = events.next().await {
        let mut batch = vec![event?];
        while let Some(Some(more)) = events.next().now_or_never() {
            batch.push(more?);
        }
        burst(batch).await;
    }
    Ok(())
}

/// Runs `round` again and again, [`RETRY`] apart, until `stop`; a failed
/// round is logged as `what` failing.
pub async fn follow<Fut>(
    what: &str,
    mut stop: watch::Receiver<bool>,
    mut round: impl FnMut() -> Fut,
) where
    Fut: Future<Output = Result<(), StoreError>>,
{
    loop {
        tokio::select! {
            result = round() => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "{what}; retrying");
                }
            }
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

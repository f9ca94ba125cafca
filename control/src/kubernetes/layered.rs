//! The store a node runs on in Kubernetes mode: what the API server owns
//! (nodes, every pod's labels, other nodes' pods, namespaces, policies) read
//! from the [`Mirror`], everything the node owns (its pods' records, which are
//! their durable IPAM leases, static peers) in the local embedded store. The
//! cluster view and the policy enforcer list and watch it as they would etcd.
//!
//! Writes to the API server's part are refused with
//! [`StoreError::Managed`]: in this mode `tweed label` and `tweed policy
//! apply` give way to kubectl.

use std::sync::Arc;
use std::time::Duration;

use super::mirror::Mirror;
use crate::cluster::keys;
use crate::store::{
    BoxFuture, KeyValue, LeaseId, Op, Revision, Store, StoreError, StoreHealth, WatchStream,
};

/// The prefixes whose every key comes from the API server.
const MIRRORED: [&str; 6] = [
    keys::NODES,
    keys::POD_LABELS,
    keys::NAMESPACES,
    keys::POLICIES,
    keys::SERVICES,
    keys::ENDPOINT_SLICES,
];

/// Whether `key` is the API server's, on the node whose pods are under `own_pods`.
fn is_mirrored(own_pods: &str, key: &str) -> bool {
    if key.starts_with(keys::ALL_PODS) {
        return !key.starts_with(own_pods);
    }
    MIRRORED.iter().any(|p| key.starts_with(p))
}

/// The local store with the API server's entries laid over it.
#[derive(Debug)]
pub struct Layered {
    local: Arc<dyn Store>,
    mirror: Arc<Mirror>,
    /// This node's pod records' prefix: the only pods kept locally.
    own_pods: String,
}

impl Layered {
    /// `local` for node `node`'s own state, `mirror` for the rest.
    pub fn new(local: Arc<dyn Store>, mirror: Arc<Mirror>, node: &str) -> Self {
        Layered {
            local,
            mirror,
            own_pods: keys::pods(node),
        }
    }

    /// Whether `key` is the API server's.
    pub fn mirrored(&self, key: &str) -> bool {
        is_mirrored(&self.own_pods, key)
    }

    fn refuse<T: Send + 'static>(
        &self,
        op: Op,
        key: &str,
    ) -> Option<BoxFuture<'static, Result<T, StoreError>>> {
        self.mirrored(key).then(|| {
            let e = StoreError::Managed {
                op,
                key: key.to_owned(),
            };
            Box::pin(async move { Err(e) }) as BoxFuture<'static, _>
        })
    }
}

impl Store for Layered {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        if self.mirrored(key) {
            let found = self.mirror.get(key);
            return Box::pin(async move { Ok(found) });
        }
        self.local.get(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KeyValue>, StoreError>> {
        Box::pin(async move {
            let mut out: Vec<KeyValue> = self
                .local
                .list(prefix)
                .await?
                .into_iter()
                // Left from another mode: not what the API server says.
                .filter(|kv| !self.mirrored(&kv.key))
                .collect();
            out.extend(self.mirror.list(prefix, |k| self.mirrored(k)));
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Revision, StoreError>> {
        self.refuse(Op::Put, key)
            .unwrap_or_else(|| self.local.put(key, value, lease))
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        self.refuse(Op::Create, key)
            .unwrap_or_else(|| self.local.create(key, value, lease))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, Result<Option<Revision>, StoreError>> {
        self.refuse(Op::CompareAndSwap, key)
            .unwrap_or_else(|| self.local.compare_and_swap(key, expected, value, lease))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.refuse(Op::Delete, key)
            .unwrap_or_else(|| self.local.delete(key))
    }

    fn delete_if<'a>(
        &'a self,
        key: &'a str,
        expected: Revision,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        self.refuse(Op::DeleteIf, key)
            .unwrap_or_else(|| self.local.delete_if(key, expected))
    }

    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<LeaseId, StoreError>> {
        self.local.grant(ttl)
    }

    fn keep_alive(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.local.keep_alive(lease)
    }

    fn revoke(&self, lease: LeaseId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.local.revoke(lease)
    }

    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        Box::pin(async move {
            use futures::StreamExt;
            let own_pods = self.own_pods.clone();
            let local = self.local.watch(prefix).await?.filter(move |event| {
                let key = match event {
                    Ok(e) => e.key(),
                    Err(_) => return std::future::ready(true),
                };
                std::future::ready(!is_mirrored(&own_pods, key))
            });
            let mirror = self.mirror.watch(prefix);
            Ok(futures::stream::select(local, mirror).boxed())
        })
    }

    fn health(&self) -> StoreHealth {
        self.local.health()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::kubernetes::reflect::MirrorOp;
    use crate::store::EmbeddedStore;

    fn layered(dir: &std::path::Path) -> (Layered, Arc<Mirror>) {
        let local: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.join("s.redb")).unwrap());
        let mirror = Arc::new(Mirror::default());
        (Layered::new(local, mirror.clone(), "a"), mirror)
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tweed-layered-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn own_pods_are_local_the_rest_comes_from_the_mirror() {
        let dir = tempdir();
        let (store, mirror) = layered(&dir);
        let own = keys::pod("a", "c1", "eth0");
        let remote = keys::pod("b", "k8s-u", "eth0");
        let mut watch = store.watch(keys::ALL_PODS).await.unwrap();
        store.put(&own, b"own".to_vec(), None).await.unwrap();
        mirror.apply(vec![MirrorOp::Put(remote.clone(), b"remote".to_vec())]);
        let mut seen = vec![
            watch.next().await.unwrap().unwrap().key().to_owned(),
            watch.next().await.unwrap().unwrap().key().to_owned(),
        ];
        seen.sort();
        assert_eq!(seen, [own.clone(), remote.clone()]);
        let listed: Vec<String> = store
            .list(keys::ALL_PODS)
            .await
            .unwrap()
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(listed, [own.clone(), remote.clone()]);
        assert_eq!(store.get(&remote).await.unwrap().unwrap().value, b"remote");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn writes_to_what_the_api_server_owns_are_refused_and_change_nothing() {
        let dir = tempdir();
        let (store, _mirror) = layered(&dir);
        for key in [
            keys::pod_labels("prod", "web"),
            keys::namespace("prod"),
            keys::node("b"),
            keys::pod("b", "c", "eth0"),
        ] {
            let err = store.put(&key, b"x".to_vec(), None).await.unwrap_err();
            assert!(matches!(err, StoreError::Managed { .. }), "{err}");
            assert!(store.delete(&key).await.is_err());
            assert!(store.get(&key).await.unwrap().is_none());
        }
        store
            .put(&keys::static_peer("gw"), b"x".to_vec(), None)
            .await
            .unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}

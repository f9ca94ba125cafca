//! Follows the node records and static peers in the store into a
//! [`ClusterView`], published on a `tokio::sync::watch` channel.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use super::keys;
use super::view::ClusterView;
use crate::store::Store;

/// How long to wait before watching again after the store failed.
const RETRY: Duration = Duration::from_secs(1);

/// Keeps `view` current until the receiver side is gone. Each round sets the
/// watches up first, then lists, so no change between the two is missed; a lost
/// watch or a store error starts a new round.
pub async fn follow(store: Arc<dyn Store>, view: watch::Sender<ClusterView>) {
    loop {
        if let Err(e) = round(&store, &view).await {
            tracing::warn!(error = %e, "following the cluster's nodes; retrying");
        }
        if view.is_closed() {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn round(
    store: &Arc<dyn Store>,
    view: &watch::Sender<ClusterView>,
) -> Result<(), crate::store::StoreError> {
    let nodes = store.watch(keys::NODES).await?;
    let statics = store.watch(keys::STATIC_PEERS).await?;
    let listed_nodes = store.list(keys::NODES).await?;
    let listed_statics = store.list(keys::STATIC_PEERS).await?;
    let mut current = ClusterView::from_lists(&listed_nodes, &listed_statics);
    view.send_replace(current.clone());
    let mut events = futures::stream::select(nodes, statics);
    while let Some(event) = events.next().await {
        let event = event?;
        if current.apply(&event) {
            view.send_replace(current.clone());
        }
        if view.is_closed() {
            return Ok(());
        }
    }
    Ok(())
}

//! Keeps the node's subnet lease alive, and takes it again if it was lost.

use std::sync::Arc;

use super::Daemon;
use super::setup::{Memory, remember};
use crate::cluster::lease;

/// Renews at a third of the TTL until `shutdown`. A lease found expired (the
/// store was unreachable for longer than the TTL) is acquired again, asking
/// for the same subnets first.
pub async fn run(daemon: Arc<Daemon>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = daemon.config.lease_ttl / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        let Some(held) = daemon.lease().lease else {
            return;
        };
        match lease::renew(&daemon.store, held).await {
            Ok(true) => {}
            Ok(false) => reacquire(&daemon).await,
            Err(e) => tracing::warn!(error = %e, "renewing the node lease; retrying"),
        }
    }
}

async fn reacquire(daemon: &Daemon) {
    let old = daemon.lease();
    tracing::warn!("the node lease expired; leasing the node's subnets again");
    let mut request = daemon.lease_request.clone();
    request.previous = old.record.subnets.clone();
    match lease::acquire(&daemon.store, &request).await {
        Ok(held) => {
            if held.record.subnets != old.record.subnets {
                tracing::error!(old = ?old.record.subnets, new = ?held.record.subnets,
                    "the node's subnets changed while its lease was lost; restart the daemon so pods get addresses of the new subnets");
            }
            let memory = Memory {
                node: daemon.config.node_name.clone(),
                subnets: held.record.subnets.clone(),
            };
            if let Err(e) = remember(&daemon.config, &memory) {
                tracing::warn!(error = %e, "remembering the node's subnets");
            }
            daemon.set_lease(held);
        }
        Err(e) => tracing::error!(error = %e, "leasing the node's subnets again; retrying"),
    }
}

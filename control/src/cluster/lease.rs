//! Node subnet leases, flannel's scheme over the [`Store`].
//!
//! A node grants one store lease (TTL `--lease-ttl`) and hangs everything it
//! publishes on it: one [`SubnetClaim`] per family, taken with the store's atomic
//! create-if-absent (two nodes never hold one subnet, also when they start at the
//! same moment: the loser moves on to the next candidate), and its
//! [`NodeRecord`]. It renews the lease at a third of its TTL; if the node stops,
//! the lease expires and every key on it goes, which is how the other nodes learn
//! to remove its routes.
//!
//! A restarted node gets its subnet back: a claim it still holds (its old lease
//! has not expired yet) is moved onto the new lease with a compare-and-swap, and
//! otherwise the subnet it held before (remembered by the caller) is the first
//! candidate.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::error::{ClusterError, at};
use super::keys;
use super::record::{NodeRecord, SubnetClaim};
use crate::ipam::{Family, IpamError, Order, SubnetPlan};
use crate::store::{LeaseId, Store, StoreError};

/// What a node asks for.
#[derive(Clone, Debug)]
pub struct LeaseRequest {
    /// The node's record, without subnets (they are filled in).
    pub record: NodeRecord,
    /// One plan per family.
    pub plans: Vec<SubnetPlan>,
    /// The subnets this node held before, if known.
    pub previous: Vec<IpNet>,
    /// The lease TTL.
    pub ttl: Duration,
}

/// A held lease: the store lease and the published record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    /// The store lease everything hangs on; none when the node's subnets
    /// come from its Kubernetes Node object.
    pub lease: Option<LeaseId>,
    /// The published record (with the subnets).
    pub record: NodeRecord,
}

/// Takes the node's subnets and publishes its record; on error nothing is left
/// behind (the lease is revoked).
pub async fn acquire(
    store: &Arc<dyn Store>,
    request: &LeaseRequest,
) -> Result<HeldLease, ClusterError> {
    let lease = store
        .grant(request.ttl)
        .await
        .map_err(at("grant the node lease"))?;
    match claim_all(store, request, lease).await {
        Ok(record) => Ok(HeldLease {
            lease: Some(lease),
            record,
        }),
        Err(e) => {
            let _ = store.revoke(lease).await;
            Err(e)
        }
    }
}

async fn claim_all(
    store: &Arc<dyn Store>,
    request: &LeaseRequest,
    lease: LeaseId,
) -> Result<NodeRecord, ClusterError> {
    let name = &request.record.name;
    let mut subnets = Vec::new();
    for plan in &request.plans {
        subnets.push(claim(store, plan, name, &request.previous, lease).await?);
    }
    let record = NodeRecord {
        subnets,
        ..request.record.clone()
    };
    store
        .put(&keys::node(name), record.encode(), Some(lease))
        .await
        .map_err(at("publish the node record"))?;
    Ok(record)
}

/// Claims one subnet of `plan` for `node` on `lease`.
async fn claim(
    store: &Arc<dyn Store>,
    plan: &SubnetPlan,
    node: &str,
    previous: &[IpNet],
    lease: LeaseId,
) -> Result<IpNet, ClusterError> {
    let family = plan.family();
    let value =
        serde_json::to_vec(&SubnetClaim { node: node.into() }).expect("a claim always serializes");
    let claims = store
        .list(keys::SUBNETS)
        .await
        .map_err(at("list the subnet claims"))?;
    let mut taken = Vec::new();
    for kv in &claims {
        let Some(net) = keys::subnet_of(&kv.key) else {
            continue;
        };
        let holder = serde_json::from_slice::<SubnetClaim>(&kv.value).ok();
        if holder.is_some_and(|c| c.node == node) && Family::of_net(&net) == family {
            // Still ours from before a restart: move it onto the new lease.
            if plan.index_of(&net).is_some()
                && let Some(_) = store
                    .compare_and_swap(&kv.key, kv.revision, value.clone(), Some(lease))
                    .await
                    .map_err(at("renew the subnet claim"))?
            {
                return Ok(net);
            }
            continue;
        }
        taken.push(net);
    }
    let previous = previous
        .iter()
        .copied()
        .find(|p| Family::of_net(p) == family);
    let mut candidates = plan.candidates(Order::Lowest, previous, &taken)?;
    let mut tried = 0usize;
    for net in candidates.by_ref() {
        match store
            .create(&keys::subnet(&net), value.clone(), Some(lease))
            .await
        {
            Ok(Some(_)) => return Ok(net),
            Ok(None) => tried += 1,
            Err(e) => return Err(at("claim a subnet")(e)),
        }
        if tried > 64 {
            return Err(ClusterError::Contended {
                cluster: plan.cluster(),
            });
        }
    }
    Err(ClusterError::Ipam(IpamError::ClusterExhausted {
        cluster: plan.cluster(),
        subnet_len: plan.subnet_len(),
        count: plan.subnet_count(),
    }))
}

/// Renews `lease` once. `Ok(false)` when it has expired (the node must
/// [`acquire`] again).
pub async fn renew(store: &Arc<dyn Store>, lease: LeaseId) -> Result<bool, ClusterError> {
    match store.keep_alive(lease).await {
        Ok(()) => Ok(true),
        Err(StoreError::LeaseNotFound { .. }) => Ok(false),
        Err(e) => Err(at("renew the node lease")(e)),
    }
}

/// Gives the subnets up now (not done on a normal stop: a restarting node keeps
/// them until the TTL runs out).
pub async fn release(store: &Arc<dyn Store>, lease: LeaseId) -> Result<(), ClusterError> {
    store
        .revoke(lease)
        .await
        .map_err(at("revoke the node lease"))
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;

//! Pod attachments: the node's IPAM pool made durable in the store, and the
//! dataplane ports that go with it.
//!
//! Order of steps, so that a crash at any point loses no allocation and leaks
//! nothing (resync finishes the job, see `dataplane::resync`):
//! - ADD: decide the address → create the pod record in the store (durable) →
//!   commit to the in-memory pool → create the port. A failed port is rolled back
//!   (record deleted, address released) before the error is returned.
//! - DEL: delete the record → release in memory → remove the port. A port the
//!   dataplane could not remove now is removed by the next resync, since no
//!   record wants it.
//!
//! One mutex serializes the decisions of a node (the node is the only writer of
//! its pool, so the store needs no transaction across pods).

mod error;
pub mod netns;
pub mod record;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::Mutex;
use tweed_api::dataplane::proto::MacAddr;
use tweed_sys::netns::NetNs;

pub use error::PodError;
pub use record::PodRecord;

use crate::cluster::keys;
use crate::dataplane::{Dataplane, resync};
use crate::ipam::{Attachment, Change, PoolState};
use crate::store::Store;

/// What ADD asks for.
#[derive(Debug)]
pub struct PodRequest {
    /// The runtime's container id.
    pub container_id: String,
    /// The pod's netns path.
    pub netns: String,
    /// The interface name in the pod.
    pub ifname: String,
    /// Namespace (`default` when the runtime gave none).
    pub namespace: Option<String>,
    /// Name (the container id's first 12 characters when none).
    pub name: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// MTU (the node's when none).
    pub mtu: Option<u16>,
    /// The addresses to give (at most one per family), else picked.
    pub ips: Vec<IpAddr>,
    /// The MAC to give, else derived from the address.
    pub mac: Option<MacAddr>,
    /// The netns, when the daemon cannot reach it by `netns` and must mount
    /// it for the dataplane (see [`netns`]).
    pub netns_handle: Option<NetNs>,
}

/// Address usage of one node subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The subnet.
    pub subnet: IpNet,
    /// Pod addresses it has.
    pub capacity: u64,
    /// Pod addresses held.
    pub used: u64,
}

struct Inner {
    pool: PoolState,
    records: BTreeMap<Attachment, PodRecord>,
}

/// The node's pods.
pub struct Pods {
    store: Arc<dyn Store>,
    node: String,
    mtu: u16,
    netns_dir: PathBuf,
    dataplane: Dataplane,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Pods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pods")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn store_err(step: &'static str) -> impl FnOnce(crate::store::StoreError) -> PodError {
    move |source| PodError::Store { step, source }
}

impl Pods {
    /// Loads the node's pod records over a pool of `subnets`. Records whose
    /// addresses do not fit (the node's subnet changed) are kept, so DEL and GC
    /// still find them, but hold no address of the pool. Netns the daemon
    /// must mount for the dataplane go under `netns_dir`.
    pub async fn load(
        store: Arc<dyn Store>,
        node: &str,
        subnets: &[IpNet],
        dataplane: Dataplane,
        mtu: u16,
        netns_dir: &Path,
    ) -> Result<Self, PodError> {
        let listed = store
            .list(&keys::pods(node))
            .await
            .map_err(store_err("list the pod records"))?;
        let mut records = BTreeMap::new();
        for kv in listed {
            match PodRecord::decode(&kv.value) {
                Ok(record) => {
                    records.insert(record.attachment(), record);
                }
                Err(e) => {
                    tracing::error!(key = %kv.key, error = %e, "ignoring a corrupt pod record")
                }
            }
        }
        let (pool, rejected) = PoolState::restore(subnets, records.values().map(PodRecord::lease))?;
        for (lease, why) in rejected {
            tracing::warn!(container = %lease.attachment.container_id, error = %why, "a pod record does not fit the node's subnets");
        }
        Ok(Pods {
            store,
            node: node.to_owned(),
            mtu,
            netns_dir: netns_dir.to_owned(),
            dataplane,
            inner: Mutex::new(Inner { pool, records }),
        })
    }

    /// Attaches a pod interface (idempotent per container id and ifname).
    pub async fn add(&self, request: PodRequest) -> Result<(PodRecord, bool), PodError> {
        let mut inner = self.inner.lock().await;
        let attachment = Attachment::new(&request.container_id, &request.ifname)?;
        if let Some(record) = inner.records.get(&attachment).cloned() {
            if let Some(mac) = request.mac
                && mac != record.mac
            {
                return Err(PodError::MacDiffers {
                    container_id: record.container_id,
                    ifname: record.ifname,
                    held: record.mac,
                    wanted: mac,
                });
            }
            // Refuses other addresses than the ones held.
            inner.pool.decide_allocate_wanted(
                &request.container_id,
                &request.ifname,
                &request.ips,
            )?;
            let created = self.ensure_port(&record).await?;
            return Ok((record, created));
        }
        let decision = inner.pool.decide_allocate_wanted(
            &request.container_id,
            &request.ifname,
            &request.ips,
        )?;
        let allocation = decision.outcome;
        let mtu = request.mtu.unwrap_or(self.mtu);
        record::check_mtu(mtu, &allocation).map_err(PodError::Invalid)?;
        let namespace = request.namespace.unwrap_or_else(|| "default".into());
        let name = request
            .name
            .unwrap_or_else(|| request.container_id.chars().take(12).collect());
        let port = record::port_name(
            &namespace,
            &name,
            &request.ifname,
            &request.container_id,
            |n| inner.records.values().any(|r| r.port == n),
        );
        let mount = match &request.netns_handle {
            Some(ns) => {
                let path =
                    netns::mount_path(&self.netns_dir, &request.container_id, &request.ifname);
                netns::mount(ns, &request.netns, &path)?;
                Some(path)
            }
            None => None,
        };
        let record = PodRecord {
            container_id: request.container_id,
            ifname: request.ifname,
            namespace,
            name,
            netns: request.netns,
            dataplane_netns: mount.as_ref().map(|p| p.display().to_string()),
            port,
            ipv4: allocation.ipv4,
            ipv6: allocation.ipv6,
            mac: request.mac.unwrap_or_else(|| record::pod_mac(&allocation)),
            mtu,
            labels: request.labels,
        };
        let unmount = || {
            if let Some(path) = &mount {
                netns::unmount(path);
            }
        };
        let key = keys::pod(&self.node, &record.container_id, &record.ifname);
        let created = match self.store.create(&key, record.encode(), None).await {
            Ok(created) => created,
            Err(e) => {
                unmount();
                return Err(store_err("persist the pod's address")(e));
            }
        };
        if created.is_none() {
            unmount();
            return Err(PodError::Conflict { key });
        }
        if let Some(change) = &decision.change {
            inner.pool.apply(change)?;
        }
        inner.records.insert(attachment.clone(), record.clone());
        if let Err(source) = self.dataplane.port_add(record.port_add()).await {
            self.forget(&mut inner, &attachment).await;
            unmount();
            return Err(PodError::Dataplane {
                step: "create the pod's interface",
                source,
            });
        }
        Ok((record, true))
    }

    /// Creates the record's port unless the dataplane has it; true if it
    /// had to be created.
    async fn ensure_port(&self, record: &PodRecord) -> Result<bool, PodError> {
        let err = |source| PodError::Dataplane {
            step: "check the pod's interface",
            source,
        };
        let ports = self.dataplane.ports().await.map_err(err)?;
        if ports.iter().any(|p| p.name == record.port) {
            return Ok(false);
        }
        self.dataplane
            .port_add(record.port_add())
            .await
            .map_err(|source| PodError::Dataplane {
                step: "create the pod's interface",
                source,
            })?;
        Ok(true)
    }

    /// Drops a record from the store and the pool (rollback of a failed ADD).
    async fn forget(&self, inner: &mut Inner, attachment: &Attachment) {
        let key = keys::pod(&self.node, &attachment.container_id, &attachment.ifname);
        if let Err(e) = self.store.delete(&key).await {
            tracing::error!(%key, error = %e, "rolling back a pod record; GC will release it");
            return;
        }
        if let Some(record) = inner.records.remove(attachment) {
            let _ = inner.pool.apply(&Change::Release {
                leases: vec![record.lease()],
            });
        }
    }

    /// Detaches a container's interfaces (one, or all when `ifname` is none).
    /// Succeeds when nothing is held; returns what was released.
    pub async fn del(
        &self,
        container_id: &str,
        ifname: Option<&str>,
    ) -> Result<Vec<PodRecord>, PodError> {
        let mut inner = self.inner.lock().await;
        let doomed: Vec<Attachment> = inner
            .records
            .keys()
            .filter(|a| a.container_id == container_id && ifname.is_none_or(|i| a.ifname == i))
            .cloned()
            .collect();
        self.release(&mut inner, doomed).await
    }

    /// Releases every attachment not in `valid` (CNI GC).
    pub async fn gc(&self, valid: &[Attachment]) -> Result<Vec<PodRecord>, PodError> {
        let mut inner = self.inner.lock().await;
        let doomed: Vec<Attachment> = inner
            .records
            .keys()
            .filter(|a| !valid.contains(a))
            .cloned()
            .collect();
        self.release(&mut inner, doomed).await
    }

    async fn release(
        &self,
        inner: &mut Inner,
        doomed: Vec<Attachment>,
    ) -> Result<Vec<PodRecord>, PodError> {
        let mut released = Vec::new();
        for attachment in doomed {
            let key = keys::pod(&self.node, &attachment.container_id, &attachment.ifname);
            self.store
                .delete(&key)
                .await
                .map_err(store_err("delete the pod record"))?;
            let Some(record) = inner.records.remove(&attachment) else {
                continue;
            };
            inner.pool.apply(&Change::Release {
                leases: vec![record.lease()],
            })?;
            if let Err(e) = self.dataplane.port_remove(&record.port).await {
                tracing::warn!(port = %record.port, error = %e, "removing the pod's interface; the next resync will");
            }
            if let Some(path) = &record.dataplane_netns {
                netns::unmount(Path::new(path));
            }
            released.push(record);
        }
        Ok(released)
    }

    /// One attachment's record.
    pub async fn get(&self, container_id: &str, ifname: &str) -> Option<PodRecord> {
        let key = Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
        };
        self.inner.lock().await.records.get(&key).cloned()
    }

    /// Every record.
    pub async fn list(&self) -> Vec<PodRecord> {
        self.inner.lock().await.records.values().cloned().collect()
    }

    /// Address usage per subnet.
    pub async fn usage(&self) -> Vec<Usage> {
        let inner = self.inner.lock().await;
        inner
            .pool
            .subnets()
            .into_iter()
            .map(|subnet| Usage {
                subnet,
                capacity: capacity(&subnet),
                used: inner
                    .records
                    .values()
                    .flat_map(|r| r.lease().allocation.addrs().collect::<Vec<_>>())
                    .filter(|a| subnet.contains(a))
                    .count() as u64,
            })
            .collect()
    }

    /// Makes the dataplane's ports match the records: creates missing ports,
    /// removes unknown ones, and returns the ports it created (they have the
    /// allow-all rule sets). Failures are logged and left for the next round.
    pub async fn resync_ports(&self) -> Result<Vec<String>, PodError> {
        let inner = self.inner.lock().await;
        let current = self
            .dataplane
            .ports()
            .await
            .map_err(|source| PodError::Dataplane {
                step: "list the dataplane's ports",
                source,
            })?;
        let wanted: Vec<PodRecord> = inner.records.values().cloned().collect();
        let changes = resync::ports(&wanted, &current);
        for name in &changes.remove {
            tracing::info!(port = %name, "resync: removing a port no pod record wants");
            if let Err(e) = self.dataplane.port_remove(name).await {
                tracing::warn!(port = %name, error = %e, "resync: removing a port");
            }
        }
        let mut created = Vec::new();
        for record in changes.add {
            tracing::info!(port = %record.port, "resync: creating a missing pod port");
            match self.dataplane.port_add(record.port_add()).await {
                Ok(_) => created.push(record.port.clone()),
                Err(e) => {
                    tracing::warn!(port = %record.port, error = %e, "resync: creating a pod port")
                }
            }
        }
        Ok(created)
    }
}

/// Pod addresses of a node subnet (network, node address and, for IPv4,
/// broadcast are never handed out).
fn capacity(subnet: &IpNet) -> u64 {
    let host_bits = u32::from(subnet.max_prefix_len() - subnet.prefix_len());
    let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    let reserved = if matches!(subnet, IpNet::V4(_)) { 3 } else { 2 };
    u64::try_from(size.saturating_sub(reserved)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_out_network_node_address_and_broadcast() {
        assert_eq!(capacity(&"10.0.0.0/24".parse().unwrap()), 253);
        assert_eq!(capacity(&"fd00::/126".parse().unwrap()), 2);
        assert_eq!(capacity(&"fd00::/64".parse().unwrap()), u64::MAX - 1);
    }
}

//! Subnet leases over the embedded store with a manual clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::Backend;
use crate::store::{EmbeddedStore, ManualClock};

struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!(
        "tweed-lease-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(ManualClock::new());
    let store = EmbeddedStore::open_with_clock(dir.join("s.redb"), clock.clone()).unwrap();
    Fixture {
        store: Arc::new(store),
        clock,
        dir,
    }
}

fn request(name: &str, cluster: &str, previous: &[&str]) -> LeaseRequest {
    LeaseRequest {
        record: NodeRecord {
            name: name.into(),
            subnets: Vec::new(),
            underlay_ip: "192.168.0.1".parse().unwrap(),
            vtep_mac: "02:77:c0:a8:00:01".parse().unwrap(),
            backend: Backend::Vxlan,
            vxlan_source_ports: None,
            partial_checksums: false,
        },
        plans: vec![SubnetPlan::parse(cluster, 24).unwrap()],
        previous: previous.iter().map(|p| p.parse().unwrap()).collect(),
        ttl: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn nodes_starting_together_get_distinct_subnets() {
    let f = fixture();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(async move {
                acquire(&store, &request(&format!("n{i}"), "10.244.0.0/16", &[])).await
            })
        })
        .collect();
    let mut subnets = Vec::new();
    for task in tasks {
        subnets.extend(task.await.unwrap().unwrap().record.subnets);
    }
    subnets.sort();
    subnets.dedup();
    assert_eq!(subnets.len(), 8, "{subnets:?}");
    assert_eq!(f.store.list(keys::SUBNETS).await.unwrap().len(), 8);
    assert_eq!(f.store.list(keys::NODES).await.unwrap().len(), 8);
}

#[tokio::test]
async fn a_restarted_node_moves_its_live_claim_to_the_new_lease() {
    let f = fixture();
    let first = acquire(&f.store, &request("a", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    acquire(&f.store, &request("b", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    // Restart without memory: the claim still held is found and taken over.
    let second = acquire(&f.store, &request("a", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    assert_eq!(second.record.subnets, first.record.subnets);
    assert_ne!(second.lease, first.lease);
    // The old lease ending takes nothing with it.
    f.store.revoke(first.lease.unwrap()).await.unwrap();
    let claim = f
        .store
        .get(&keys::subnet(&first.record.subnets[0]))
        .await
        .unwrap();
    assert!(claim.is_some(), "the claim moved to the new lease");
    assert!(f.store.get(&keys::node("a")).await.unwrap().is_some());
}

#[tokio::test]
async fn an_expired_node_gets_its_remembered_subnet_back_if_free() {
    let f = fixture();
    acquire(&f.store, &request("a", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    let b = acquire(&f.store, &request("b", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(30));
    assert!(
        !renew(&f.store, b.lease.unwrap()).await.unwrap(),
        "the lease expired"
    );
    assert!(f.store.list(keys::NODES).await.unwrap().is_empty());
    // Another node arrives first and takes the lowest subnet, not b's.
    let c = acquire(&f.store, &request("c", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    let b_subnet = b.record.subnets[0].to_string();
    let again = acquire(&f.store, &request("b", "10.244.0.0/16", &[&b_subnet]))
        .await
        .unwrap();
    assert_eq!(again.record.subnets, b.record.subnets);
    assert_ne!(c.record.subnets, b.record.subnets);
}

#[tokio::test]
async fn exhaustion_is_a_clear_error_and_leaves_nothing() {
    let f = fixture();
    acquire(&f.store, &request("a", "10.9.0.0/23", &[]))
        .await
        .unwrap();
    acquire(&f.store, &request("b", "10.9.0.0/23", &[]))
        .await
        .unwrap();
    let err = acquire(&f.store, &request("c", "10.9.0.0/23", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Ipam(IpamError::ClusterExhausted { .. })),
        "{err}"
    );
    assert!(f.store.get(&keys::node("c")).await.unwrap().is_none());
    assert_eq!(f.store.list(keys::SUBNETS).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_static_claim_of_another_length_blocks_what_it_covers() {
    let f = fixture();
    let claim = serde_json::to_vec(&SubnetClaim { node: "gw".into() }).unwrap();
    let wide: IpNet = "10.244.0.0/23".parse().unwrap();
    f.store
        .create(&keys::subnet(&wide), claim, None)
        .await
        .unwrap();
    let a = acquire(&f.store, &request("a", "10.244.0.0/16", &[]))
        .await
        .unwrap();
    assert_eq!(
        a.record.subnets,
        vec!["10.244.2.0/24".parse::<IpNet>().unwrap()]
    );
}

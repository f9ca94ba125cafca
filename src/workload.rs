//! Seeded, realistic route tables and lookup keys for benchmarks.
//!
//! The same `(n, seed)` always yields the same routes, so figures from
//! different runs and benches (LPM, update, pipeline) are comparable.
//!
//! The mix resembles a pod network's FIB rather than an Internet table:
//! - a default route;
//! - a few cluster CIDRs (IPv4 `10.c.0.0/16`, IPv6 `fd00:0:c::/48`);
//! - node subnets inside them (IPv4 /24, IPv6 /64);
//! - pod routes inside node subnets: IPv4 /32 at a random host byte, IPv6 /128
//!   at a small interface id (host-local IPAM hands addresses out from the
//!   bottom of the node's range), about 90 pods per node;
//! - ~8% aggregates spread over the whole address space (IPv4 /16–/24,
//!   IPv6 /32–/48 under `2000::/3`), standing for peer and external routes.
//!
//! Prefixes are unique and masked; lengths are returned beside them.

use std::collections::HashSet;
use std::hash::Hash;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Share of the table taken by aggregates, in percent.
const AGGREGATE_PERCENT: usize = 8;
/// Average pods per node subnet.
const PODS_PER_NODE: usize = 90;
/// Cluster CIDRs at least; more are added when the nodes would not fit.
const MIN_CLUSTERS: usize = 4;

/// An address type the generator can draw keys for.
pub trait Address: Copy + Eq + Hash {
    /// Width in bits.
    const BITS: u8;
    /// `self` with the host bits below `len` replaced by random bits.
    fn random_host(self, len: u8, rng: &mut StdRng) -> Self;
}

impl Address for u32 {
    const BITS: u8 = 32;
    fn random_host(self, len: u8, rng: &mut StdRng) -> Self {
        let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        (self & !host) | (rng.random::<u32>() & host)
    }
}

impl Address for u128 {
    const BITS: u8 = 128;
    fn random_host(self, len: u8, rng: &mut StdRng) -> Self {
        let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        (self & !host) | (rng.random::<u128>() & host)
    }
}

/// Collects unique routes up to a target count.
struct Table<K> {
    routes: Vec<(K, u8)>,
    seen: HashSet<(K, u8)>,
    target: usize,
}

impl<K: Address> Table<K> {
    fn new(target: usize) -> Self {
        Self {
            routes: Vec::with_capacity(target),
            seen: HashSet::with_capacity(target),
            target,
        }
    }

    fn full(&self) -> bool {
        self.routes.len() >= self.target
    }

    /// Adds `prefix/len` unless present or the table is full.
    fn push(&mut self, prefix: K, len: u8) {
        if !self.full() && self.seen.insert((prefix, len)) {
            self.routes.push((prefix, len));
        }
    }
}

/// Node subnets needed for `n` routes and the cluster count that holds them.
fn sizing(n: usize, nodes_per_cluster: usize) -> (usize, usize) {
    let aggregates = n * AGGREGATE_PERCENT / 100;
    let nodes = (n.saturating_sub(aggregates) / (PODS_PER_NODE + 1)).max(1);
    let clusters = nodes.div_ceil(nodes_per_cluster).max(MIN_CLUSTERS);
    (aggregates, clusters.min(256))
}

/// `n` IPv4 routes `(prefix, len)`: default, cluster /16s, node /24s, pod
/// /32s and /16–/24 aggregates (see the module docs).
pub fn ipv4_routes(n: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut table = Table::new(n);
    let (aggregates, clusters) = sizing(n, 256);
    table.push(0, 0);
    let cluster = |c: usize| (10u32 << 24) | (c as u32 & 0xff) << 16;
    for c in 0..clusters {
        table.push(cluster(c), 16);
    }
    while table.routes.len() < 1 + clusters + aggregates && !table.full() {
        let len = rng.random_range(16..=24);
        table.push(
            0u32.random_host(0, &mut rng) & (u32::MAX << (32 - len)),
            len,
        );
    }
    let nodes = (n.saturating_sub(table.routes.len()) / (PODS_PER_NODE + 1)).max(1);
    let node = |k: usize| cluster(k % clusters) | ((k / clusters) as u32 & 0xff) << 8;
    for k in 0..nodes {
        table.push(node(k), 24);
    }
    while !table.full() {
        let host = rng.random_range(1..=254u32);
        table.push(node(rng.random_range(0..nodes)) | host, 32);
    }
    table.routes
}

/// `n` IPv6 routes `(prefix, len)`: default, cluster /48s, node /64s, pod
/// /128s with small interface ids and /32–/48 aggregates (see the module docs).
pub fn ipv6_routes(n: usize, seed: u64) -> Vec<(u128, u8)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut table = Table::new(n);
    let (aggregates, clusters) = sizing(n, 1 << 16);
    table.push(0, 0);
    let cluster = |c: usize| (0xfd00_u128 << 112) | (c as u128) << 80;
    for c in 0..clusters {
        table.push(cluster(c), 48);
    }
    while table.routes.len() < 1 + clusters + aggregates && !table.full() {
        let len = rng.random_range(32..=48);
        let global = (0x2000_u128 << 112).random_host(3, &mut rng);
        table.push(global & (u128::MAX << (128 - len)), len);
    }
    let nodes = (n.saturating_sub(table.routes.len()) / (PODS_PER_NODE + 1)).max(1);
    let node_ids: Vec<u128> = (0..nodes)
        .map(|k| cluster(k % clusters) | u128::from(rng.random::<u16>()) << 64)
        .collect();
    for &node in &node_ids {
        table.push(node, 64);
    }
    while !table.full() {
        let host = rng.random_range(1..1024u128);
        table.push(node_ids[rng.random_range(0..nodes)] | host, 128);
    }
    table.routes
}

/// `n` destinations, each a random address inside a route drawn uniformly
/// from `routes` (so every length class is hit in proportion to its share).
pub fn lookup_keys<K: Address>(routes: &[(K, u8)], n: usize, seed: u64) -> Vec<K> {
    assert!(!routes.is_empty(), "lookup keys need at least one route");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (prefix, len) = routes[rng.random_range(0..routes.len())];
            prefix.random_host(len, &mut rng)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unique_and_masked() {
        let v4 = ipv4_routes(10_000, 7);
        assert_eq!(v4, ipv4_routes(10_000, 7));
        assert_eq!(v4.len(), 10_000);
        let unique: HashSet<_> = v4.iter().collect();
        assert_eq!(unique.len(), v4.len());
        assert!(
            v4.iter()
                .all(|&(p, l)| l == 0 || p & !(u32::MAX << (32 - l)) == 0)
        );
        let v6 = ipv6_routes(20_000, 7);
        assert_eq!(v6.len(), 20_000);
        assert!(v6.iter().any(|&(_, l)| l == 128));
        let keys = lookup_keys(&v4, 100, 1);
        assert_eq!(keys, lookup_keys(&v4, 100, 1));
        assert_eq!(ipv4_routes(3, 1).len(), 3);
    }
}

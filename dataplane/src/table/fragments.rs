//! Virtual reassembly of IP fragments (as VPP's shallow virtual reassembly):
//! only a datagram's first fragment carries its transport header, so the
//! ports it had are remembered under the datagram's identity (source,
//! destination, protocol, identification; RFC 791 §3.2, RFC 8200 §4.5) and
//! the later fragments are routed, tracked and judged by policy with them,
//! exactly as the first was. Nothing is reassembled or copied.
//!
//! The table is bounded (a fixed number of entries, oldest evicted first)
//! and entries live a short time: a datagram's fragments arrive together.
//! Shared by every worker behind sharded mutexes: fragments are rare, and a
//! datagram's fragments may reach different workers.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use ahash::RandomState;

/// How long a datagram's ports are remembered after its first fragment.
pub const LIFETIME_MS: u64 = 2_000;
/// Shards (each its own lock).
const SHARDS: usize = 16;

/// A fragmented datagram's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramId {
    /// The source address.
    pub src: IpAddr,
    /// The destination address.
    pub dst: IpAddr,
    /// The transport protocol (IPv4's key has it; for IPv6 the upper-layer header's).
    pub protocol: u8,
    /// The identification field (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
}

#[derive(Debug, Default)]
struct Shard {
    ports: HashMap<DatagramId, ((u16, u16), u64), RandomState>,
    /// Insertion order with the time of each, for eviction and expiry.
    order: VecDeque<(DatagramId, u64)>,
}

/// The first fragments' ports of recent fragmented datagrams.
#[derive(Debug)]
pub struct Fragments {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl Fragments {
    /// A table of at most `capacity` datagrams (at least one per shard).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, id: &DatagramId) -> &Mutex<Shard> {
        let index = self.hasher.hash_one(id) as usize % self.shards.len();
        &self.shards[index]
    }

    /// Remembers the ports of a datagram's first fragment at `now_ms`.
    pub fn remember(&self, id: DatagramId, ports: (u16, u16), now_ms: u64) {
        let Ok(mut shard) = self.shard(&id).lock() else {
            return;
        };
        expire(&mut shard, now_ms);
        while shard.ports.len() >= self.per_shard {
            let Some((old, at)) = shard.order.pop_front() else {
                break;
            };
            if shard.ports.get(&old).is_some_and(|(_, t)| *t == at) {
                shard.ports.remove(&old);
            }
        }
        shard.ports.insert(id, (ports, now_ms));
        shard.order.push_back((id, now_ms));
    }

    /// The ports of the datagram's first fragment, if it was seen lately.
    pub fn ports(&self, id: &DatagramId, now_ms: u64) -> Option<(u16, u16)> {
        let shard = self.shard(id).lock().ok()?;
        let (ports, at) = *shard.ports.get(id)?;
        (now_ms < at.saturating_add(LIFETIME_MS)).then_some(ports)
    }

    /// Datagrams remembered (live or not yet swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.ports.len()))
            .sum()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the shard's expired entries (oldest first).
fn expire(shard: &mut Shard, now_ms: u64) {
    while let Some(&(id, at)) = shard.order.front() {
        if now_ms < at.saturating_add(LIFETIME_MS) {
            break;
        }
        shard.order.pop_front();
        if shard.ports.get(&id).is_some_and(|(_, t)| *t == at) {
            shard.ports.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DatagramId {
        DatagramId {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            protocol: 17,
            id: n,
        }
    }

    #[test]
    fn ports_are_found_until_they_expire() {
        let table = Fragments::new(64);
        table.remember(id(1), (5353, 53), 1_000);
        assert_eq!(table.ports(&id(1), 1_000), Some((5353, 53)));
        assert_eq!(
            table.ports(&id(1), 1_000 + LIFETIME_MS - 1),
            Some((5353, 53))
        );
        assert_eq!(table.ports(&id(1), 1_000 + LIFETIME_MS), None);
        assert_eq!(table.ports(&id(2), 1_000), None);
        let other_protocol = DatagramId {
            protocol: 6,
            ..id(1)
        };
        assert_eq!(table.ports(&other_protocol, 1_000), None);
    }

    #[test]
    fn the_table_stays_bounded_and_evicts_the_oldest() {
        let table = Fragments::new(SHARDS * 4);
        for n in 0..10_000 {
            table.remember(id(n), (1, 2), 5_000);
        }
        assert!(table.len() <= SHARDS * 4, "{}", table.len());
        assert_eq!(
            table.ports(&id(9_999), 5_000),
            Some((1, 2)),
            "the newest stays"
        );
        assert_eq!(table.ports(&id(0), 5_000), None, "the oldest went");
    }

    #[test]
    fn a_refreshed_datagram_survives_the_eviction_of_its_older_record() {
        // Room for both datagrams in a shard: the hasher is seeded per
        // table, so they may share one, and capacity must not evict here.
        let table = Fragments::new(2 * SHARDS);
        table.remember(id(1), (1, 2), 0);
        table.remember(id(1), (3, 4), 10);
        assert_eq!(table.ports(&id(1), 10), Some((3, 4)));
        // Expiry of the first record leaves the second.
        table.remember(id(2), (5, 6), LIFETIME_MS + 5);
        assert_eq!(table.ports(&id(1), LIFETIME_MS + 5), Some((3, 4)));
    }
}

//! What a native Service translation remembers about each connection: the
//! flow as translated (keyed by the flow as the client sends it, to the
//! Service), and the flow as the client sent it (keyed by the flow as
//! translated), which says what the replies come from (the Service) and go
//! to (the client, whose address a hairpin translation also changed).
//!
//! The pair lives exactly as long as the translated flow does in connection
//! tracking: [`Translations::sweep`] drops entries whose flow is gone, so an
//! entry never outlives its flow by more than a sweep round, and a flow is
//! never reverse-translated by the entry of another. A new entry is spared
//! for [`GRACE_MS`], the time between remembering a translation and
//! tracking its flow.
//!
//! Bounded (a fixed number of entries per shard; a full shard refuses, the
//! caller counts it) and shared by every worker behind sharded mutexes: the
//! lookups are one short critical section per Service packet. Time is passed
//! in; nothing here reads a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ahash::RandomState;

use super::conntrack::FlowKey;

/// How long a new entry is kept even though its flow is not tracked yet.
pub const GRACE_MS: u64 = 1_000;
/// Shards (each its own lock).
const SHARDS: usize = 16;

/// What one key remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Remembered {
    /// Keyed by the client's flow to the Service: the flow as translated.
    Translated(FlowKey),
    /// Keyed by the translated flow: the flow as the client sent it.
    Original(FlowKey),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    remembered: Remembered,
    since_ms: u64,
}

impl Entry {
    /// The translated flow whose life this entry follows.
    fn follows(&self, key: &FlowKey) -> FlowKey {
        match self.remembered {
            Remembered::Translated(translated) => translated,
            Remembered::Original(_) => *key,
        }
    }
}

/// A translation could not be remembered: a shard is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The translations of live Service connections.
#[derive(Debug)]
pub struct Translations {
    shards: Box<[Mutex<HashMap<FlowKey, Entry, RandomState>>]>,
    per_shard: usize,
    hasher: RandomState,
    sweep_cursor: AtomicUsize,
}

impl Translations {
    /// A table of at most `capacity` entries (two per connection; at least
    /// one per shard).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(RandomState::new())))
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            sweep_cursor: AtomicUsize::new(0),
        }
    }

    fn index(&self, key: &FlowKey) -> usize {
        self.hasher.hash_one(key) as usize % self.shards.len()
    }

    fn shard(&self, key: &FlowKey) -> &Mutex<HashMap<FlowKey, Entry, RandomState>> {
        &self.shards[self.index(key)]
    }

    fn get(&self, key: &FlowKey) -> Option<Remembered> {
        let shard = self.shard(key).lock().ok()?;
        shard.get(key).map(|entry| entry.remembered)
    }

    /// The flow a client's packet to a Service was translated to, if the
    /// connection is known.
    pub fn translated(&self, original: &FlowKey) -> Option<FlowKey> {
        match self.get(original)? {
            Remembered::Translated(translated) => Some(translated),
            Remembered::Original(_) => None,
        }
    }

    /// The flow as the client sent it (to the Service) of a translated flow.
    pub fn original(&self, translated: &FlowKey) -> Option<FlowKey> {
        match self.get(translated)? {
            Remembered::Original(original) => Some(original),
            Remembered::Translated(_) => None,
        }
    }

    /// Remembers that `original` (client to Service) is sent as
    /// `translated` (client to backend), replacing what either key held.
    pub fn remember(
        &self,
        original: &FlowKey,
        translated: &FlowKey,
        now_ms: u64,
    ) -> Result<(), Full> {
        let entry = |remembered| Entry {
            remembered,
            since_ms: now_ms,
        };
        let forward = (*original, entry(Remembered::Translated(*translated)));
        let reverse = (*translated, entry(Remembered::Original(*original)));
        let (first, second) = (self.index(original), self.index(translated));
        if first == second {
            let mut shard = self.shards[first].lock().map_err(|_| Full)?;
            return self.insert(&mut shard, &[forward, reverse]);
        }
        // Both shards locked, in index order (so two workers never wait
        // for each other), so the pair goes in whole or not at all.
        let (low, high) = (first.min(second), first.max(second));
        let mut low = self.shards[low].lock().map_err(|_| Full)?;
        let mut high = self.shards[high].lock().map_err(|_| Full)?;
        let (a, b) = if first < second {
            (&mut *low, &mut *high)
        } else {
            (&mut *high, &mut *low)
        };
        if !self.has_room(a, &[forward]) || !self.has_room(b, &[reverse]) {
            return Err(Full);
        }
        a.insert(forward.0, forward.1);
        b.insert(reverse.0, reverse.1);
        Ok(())
    }

    fn has_room(
        &self,
        shard: &HashMap<FlowKey, Entry, RandomState>,
        new: &[(FlowKey, Entry)],
    ) -> bool {
        let added = new
            .iter()
            .filter(|(key, _)| !shard.contains_key(key))
            .count();
        shard.len() + added <= self.per_shard
    }

    fn insert(
        &self,
        shard: &mut HashMap<FlowKey, Entry, RandomState>,
        new: &[(FlowKey, Entry)],
    ) -> Result<(), Full> {
        if !self.has_room(shard, new) {
            return Err(Full);
        }
        shard.extend(new.iter().copied());
        Ok(())
    }

    /// Forgets a connection's pair (its backend left the Service).
    pub fn forget(&self, original: &FlowKey, translated: &FlowKey) {
        for key in [original, translated] {
            if let Ok(mut shard) = self.shard(key).lock() {
                shard.remove(key);
            }
        }
    }

    /// Drops, in the next `max_shards` shards (round robin, concurrent
    /// sweepers take different ones), every entry older than [`GRACE_MS`]
    /// whose translated flow `is_live` says is gone; returns how many.
    pub fn sweep(
        &self,
        now_ms: u64,
        max_shards: usize,
        is_live: impl Fn(&FlowKey) -> bool,
    ) -> usize {
        let count = max_shards.min(self.shards.len());
        let start = self.sweep_cursor.fetch_add(count, Ordering::Relaxed);
        let mut dropped = 0;
        for i in 0..count {
            let Ok(mut shard) = self.shards[(start + i) % self.shards.len()].lock() else {
                continue;
            };
            let before = shard.len();
            shard.retain(|key, entry| {
                now_ms < entry.since_ms.saturating_add(GRACE_MS) || is_live(&entry.follows(key))
            });
            dropped += before - shard.len();
        }
        dropped
    }

    /// Entries held (two per connection).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.len()))
            .sum()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashSet;

    use super::*;

    fn flow(client_port: u16, dst: &str, dst_port: u16) -> FlowKey {
        FlowKey {
            src: "10.1.0.5".parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol: 6,
            src_port: client_port,
            dst_port,
        }
    }

    fn pair(client_port: u16) -> (FlowKey, FlowKey) {
        (
            flow(client_port, "10.96.0.10", 80),
            flow(client_port, "10.1.1.7", 8080),
        )
    }

    #[test]
    fn a_pair_is_found_from_both_sides() {
        let table = Translations::new(64);
        let (original, translated) = pair(40_000);
        table.remember(&original, &translated, 0).unwrap();
        assert_eq!(table.translated(&original), Some(translated));
        assert_eq!(table.original(&translated), Some(original));
        // Neither key answers the other question.
        assert_eq!(table.original(&original), None);
        assert_eq!(table.translated(&translated), None);
        assert_eq!(table.translated(&pair(40_001).0), None);
        table.forget(&original, &translated);
        assert!(table.is_empty());
    }

    #[test]
    fn entries_go_with_their_flow_after_the_grace() {
        let table = Translations::new(64);
        let (kept_original, kept) = pair(1);
        let (gone_original, gone) = pair(2);
        table.remember(&kept_original, &kept, 0).unwrap();
        table.remember(&gone_original, &gone, 0).unwrap();
        let asked = RefCell::new(HashSet::new());
        let is_live = |key: &FlowKey| {
            asked.borrow_mut().insert(*key);
            *key == kept
        };
        assert_eq!(table.sweep(GRACE_MS - 1, SHARDS, is_live), 0, "grace");
        assert_eq!(table.sweep(GRACE_MS, SHARDS, is_live), 2);
        assert_eq!(table.translated(&kept_original), Some(kept));
        assert!(table.original(&kept).is_some());
        assert_eq!(table.translated(&gone_original), None);
        assert_eq!(table.original(&gone), None);
        // Liveness is asked of translated flows only, never of the Service's.
        assert!(!asked.borrow().contains(&kept_original));
        assert!(!asked.borrow().contains(&gone_original));
    }

    #[test]
    fn sweeping_goes_round_the_shards() {
        let table = Translations::new(1_024);
        for port in 0..100 {
            let (original, translated) = pair(port);
            table.remember(&original, &translated, 0).unwrap();
        }
        let mut dropped = 0;
        for _ in 0..SHARDS {
            dropped += table.sweep(GRACE_MS, 1, |_| false);
        }
        assert_eq!(dropped, 200);
        assert!(table.is_empty());
    }

    #[test]
    fn a_full_table_refuses_and_keeps_what_it_has() {
        let table = Translations::new(SHARDS);
        let mut refused = 0;
        for port in 0..200 {
            let (original, translated) = pair(port);
            if table.remember(&original, &translated, 0).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(table.len() <= SHARDS, "bounded: {}", table.len());
        // Remembering a known pair again replaces it, full or not.
        let held: Vec<_> = (0..200)
            .map(pair)
            .filter(|(o, _)| table.translated(o).is_some())
            .collect();
        for (original, translated) in &held {
            if table.original(translated).is_some() {
                assert_eq!(table.remember(original, translated, 5), Ok(()));
            }
        }
    }
}

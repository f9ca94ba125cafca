//! The connection-tracking table: fixed-capacity, 4-way set-associative,
//! seqlocked slots. See the `conntrack` module doc for the design.

use std::fmt;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::yield_now;

use ahash::RandomState;

use crate::table::fragments::Fragments;
use crate::table::translations::Translations;

use super::key::{Canon, FlowKey, protocol_of, unpack};
use super::slot::{ADDR, KEY, SEEN, Slot, SlotGuard, Snapshot, TAG, key_word, tag_word};
use super::state::{self, Direction, FlowState, TcpFlags, Timeouts};

/// Slots per bucket.
pub const WAYS: usize = 4;
/// A flow's last-seen time is only rewritten once it is this far behind (or
/// the state changes), so flows expire up to this much early.
pub const REFRESH_MS: u64 = 1000;
/// The largest number of buckets (2^30 slots, 64 GiB): bounds the rounding.
const MAX_BUCKETS: usize = 1 << 28;
/// Attempts of a hot-path write that lost a race before giving up.
const WRITE_RETRIES: u32 = 4;
/// Spins on a bucket's insert lock per round.
const BUCKET_LOCK_SPINS: u32 = 256;
/// Rounds after the first, each after a yield (a holder preempted on a busy
/// CPU gets to finish), before an insert reports `Busy`.
const BUCKET_LOCK_YIELDS: u32 = 4;
/// Attempts (with a yield between) of a control-path read or write of a slot.
const PATIENT_RETRIES: u32 = 1000;
/// Fragmented datagrams remembered at once.
const FRAGMENT_CAPACITY: usize = 4096;
/// Counter stripes (summed on read), so workers rarely share a counter line.
const STRIPES: usize = 16;

/// How a table is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// The most flows held; rounded up to a power-of-two number of buckets of [`WAYS`] slots.
    pub capacity: usize,
    /// Flow lifetimes.
    pub timeouts: Timeouts,
    /// Hash key; take it from the OS's randomness so pods cannot aim flows at one bucket.
    pub seed: [u64; 4],
}

impl ConntrackConfig {
    /// A config with the default timeouts.
    pub fn new(capacity: usize, seed: [u64; 4]) -> Self {
        ConntrackConfig {
            capacity,
            timeouts: Timeouts::default(),
            seed,
        }
    }
}

/// A packet that matched a live flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The packet's direction relative to the flow's originator.
    pub direction: Direction,
    /// The flow's state after this packet.
    pub state: FlowState,
    /// The tag given when the flow was created.
    pub tag: u32,
}

/// What [`Conntrack::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The flow was created in a free (or expired) slot.
    Inserted,
    /// The flow was already live (in either direction); it was refreshed and its tag kept.
    AlreadyPresent,
    /// The flow was created by evicting the least recently seen live flow of its bucket.
    InsertedEvicting,
    /// Other writers held the bucket; nothing was created (the next packet retries).
    Busy,
}

/// A live flow, as dumped for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEntry {
    /// The key of the packet that created the flow.
    pub key: FlowKey,
    /// The current state.
    pub state: FlowState,
    /// The caller's tag.
    pub tag: u32,
    /// Time since creation (second precision).
    pub age_ms: u64,
    /// Time left before the flow expires unless refreshed.
    pub expires_in_ms: u64,
}

/// Counters of one stripe of buckets.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Stripe {
    /// Occupied slots (live or expired-but-unswept) in this stripe's buckets.
    occupied: AtomicUsize,
    /// Live flows evicted to make room.
    evictions: AtomicU64,
}

/// The connection-tracking table. `Send + Sync`: share it by reference or `Arc`.
pub struct Conntrack {
    slots: Box<[Slot]>,
    /// One insert lock per bucket, so a flow is never inserted twice.
    bucket_locks: Box<[AtomicBool]>,
    /// Buckets - 1 (a power of two minus one).
    mask: usize,
    hasher: RandomState,
    timeouts: Timeouts,
    stripes: Box<[Stripe]>,
    sweep_cursor: AtomicUsize,
    /// Fragmented datagrams' first-fragment ports (virtual reassembly).
    fragments: Fragments,
    translations: Translations,
}

impl fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conntrack")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("evictions", &self.evictions())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// Releases a bucket's insert lock on drop.
struct BucketGuard<'a>(&'a AtomicBool);

impl Drop for BucketGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Conntrack {
    /// Allocates the whole table; nothing is allocated afterwards (except by [`Conntrack::entries`]).
    pub fn new(config: ConntrackConfig) -> Conntrack {
        let buckets = config
            .capacity
            .div_ceil(WAYS)
            .clamp(1, MAX_BUCKETS)
            .next_power_of_two();
        let [k0, k1, k2, k3] = config.seed;
        Conntrack {
            slots: (0..buckets * WAYS).map(|_| Slot::default()).collect(),
            bucket_locks: (0..buckets).map(|_| AtomicBool::new(false)).collect(),
            mask: buckets - 1,
            hasher: RandomState::with_seeds(k0, k1, k2, k3),
            timeouts: config.timeouts,
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            sweep_cursor: AtomicUsize::new(0),
            fragments: Fragments::new(FRAGMENT_CAPACITY),
            // Two entries per translated connection, as many connections
            // as flows.
            translations: Translations::new(config.capacity.saturating_mul(2)),
        }
    }

    /// The native Service translations of the tracked flows.
    pub fn translations(&self) -> &Translations {
        &self.translations
    }

    /// Drops translations whose flow is no longer live, in the next
    /// `max_shards` shards of the translation table; returns how many.
    pub fn sweep_translations(&self, now_ms: u64, max_shards: usize) -> usize {
        self.translations.sweep(now_ms, max_shards, |translated| {
            self.lookup(translated, now_ms).is_some()
        })
    }

    /// The fragment table that goes with the flows: later fragments of a
    /// datagram take its first fragment's ports from it.
    pub fn fragments(&self) -> &Fragments {
        &self.fragments
    }

    /// Hot path: finds the flow of this packet (either direction), advances its
    /// state with the packet's TCP flags (`None` for non-TCP), refreshes it and
    /// returns the hit; `None` if no live flow (or, rarely, if writers kept its
    /// slot busy: the caller then treats the packet as new, which is safe).
    pub fn observe(&self, key: &FlowKey, tcp_flags: Option<TcpFlags>, now_ms: u64) -> Option<Hit> {
        let canon = Canon::new(key);
        let bucket = self.bucket_of(&canon);
        let mut hit = None;
        for _ in 0..WRITE_RETRIES {
            let (slot, snap) = self.find(bucket, &canon)?;
            if !self.live(&snap, now_ms) {
                return None;
            }
            if state::reopens(canon.protocol(), snap.state(), tcp_flags) {
                // The old flow ends; the packet starts a new one (a miss),
                // unless another writer changed the slot meanwhile.
                if self.free(bucket, slot, &snap) {
                    return None;
                }
                continue;
            }
            let (h, write) = self.advance(&canon, &snap, tcp_flags, now_ms);
            if !write {
                return Some(h);
            }
            if let Some(guard) = slot.try_lock(snap.seq()) {
                self.refresh(&guard, &canon, &snap, h.state, now_ms);
                return Some(h);
            }
            // Another writer changed the slot: look again.
            hit = Some(h);
        }
        // Still contended: report the hit without recording it.
        hit
    }

    /// Read-only lookup (for trace): no state change, no refresh.
    pub fn lookup(&self, key: &FlowKey, now_ms: u64) -> Option<Hit> {
        let canon = Canon::new(key);
        let (_, snap) = self.find(self.bucket_of(&canon), &canon)?;
        self.live(&snap, now_ms).then(|| Hit {
            direction: direction(&canon, &snap),
            state: snap.state(),
            tag: snap.tag(),
        })
    }

    /// Creates the flow originated by this packet (after policy allowed it), or
    /// refreshes it if it is already live.
    pub fn insert(
        &self,
        key: &FlowKey,
        tcp_flags: Option<TcpFlags>,
        tag: u32,
        now_ms: u64,
    ) -> InsertOutcome {
        let canon = Canon::new(key);
        let bucket = self.bucket_of(&canon);
        let Some(_lock) = self.lock_bucket(bucket) else {
            return InsertOutcome::Busy;
        };
        (0..WRITE_RETRIES)
            .find_map(|_| self.try_insert(bucket, &canon, tcp_flags, tag, now_ms))
            .unwrap_or(InsertOutcome::Busy)
    }

    /// Removes the flow of `key` (either direction); whether an entry was freed.
    pub fn remove(&self, key: &FlowKey) -> bool {
        let canon = Canon::new(key);
        let bucket = self.bucket_of(&canon);
        for _ in 0..PATIENT_RETRIES {
            let Some((slot, snap)) = self.find_patiently(bucket, &canon) else {
                return false;
            };
            if self.free(bucket, slot, &snap) {
                return true;
            }
        }
        false
    }

    /// Removes every live flow for which `keep` is false (used when policy
    /// changes); returns the count. `keep` may be asked twice about a flow
    /// whose slot changed meanwhile.
    pub fn retain(&self, now_ms: u64, mut keep: impl FnMut(&FlowEntry) -> bool) -> usize {
        let mut removed = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            for _ in 0..PATIENT_RETRIES {
                let Some(snap) = read_patiently(slot) else {
                    break;
                };
                if !self.live(&snap, now_ms) || keep(&self.entry(&snap, now_ms)) {
                    break;
                }
                if self.free(i / WAYS, slot, &snap) {
                    removed += 1;
                    break;
                }
            }
        }
        removed
    }

    /// Frees expired slots in up to `max_buckets` buckets, starting where the
    /// last call stopped (concurrent sweepers take disjoint ranges); returns
    /// how many expired flows were freed.
    pub fn sweep(&self, now_ms: u64, max_buckets: usize) -> usize {
        let count = max_buckets.min(self.mask + 1);
        let start = self.sweep_cursor.fetch_add(count, Ordering::Relaxed);
        let mut expired = 0;
        for i in 0..count {
            let bucket = start.wrapping_add(i) & self.mask;
            for slot in self.bucket(bucket) {
                if let Some(snap) = slot.read()
                    && snap.occupied()
                    && !self.live(&snap, now_ms)
                    && self.free(bucket, slot, &snap)
                {
                    expired += 1;
                }
            }
        }
        expired
    }

    /// Occupied slots: live flows plus expired ones not yet swept or reused.
    /// Exact when quiescent; never above [`Conntrack::capacity`].
    pub fn len(&self) -> usize {
        self.stripes
            .iter()
            .map(|s| s.occupied.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether no slot is occupied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of slots: the configured capacity rounded up.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live flows evicted to make room, since creation.
    pub fn evictions(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.evictions.load(Ordering::Relaxed))
            .sum()
    }

    /// A dump of the live flows (allocates; for the API, not the packet path).
    pub fn entries(&self, now_ms: u64) -> Vec<FlowEntry> {
        self.slots
            .iter()
            .filter_map(read_patiently)
            .filter(|snap| self.live(snap, now_ms))
            .map(|snap| self.entry(&snap, now_ms))
            .collect()
    }

    fn bucket_of(&self, canon: &Canon) -> usize {
        self.hasher.hash_one((canon.addrs, canon.key)) as usize & self.mask
    }

    fn bucket(&self, bucket: usize) -> &[Slot] {
        &self.slots[bucket * WAYS..(bucket + 1) * WAYS]
    }

    fn stripe(&self, bucket: usize) -> &Stripe {
        &self.stripes[bucket % STRIPES]
    }

    fn expires_at(&self, snap: &Snapshot) -> u64 {
        let protocol = protocol_of(snap.w[KEY]);
        let timeout = self.timeouts.for_flow(protocol, snap.state());
        snap.last_seen().saturating_add(timeout)
    }

    /// Live until `last_seen + timeout`, exclusive.
    fn live(&self, snap: &Snapshot, now_ms: u64) -> bool {
        snap.occupied() && now_ms < self.expires_at(snap)
    }

    fn entry(&self, snap: &Snapshot, now_ms: u64) -> FlowEntry {
        FlowEntry {
            key: unpack(&snap.addrs(), snap.w[KEY], snap.orig_is_b()),
            state: snap.state(),
            tag: snap.tag(),
            age_ms: now_ms.saturating_sub(snap.created_ms()),
            expires_in_ms: self.expires_at(snap).saturating_sub(now_ms),
        }
    }

    /// The slot holding `canon` in `bucket`, with its snapshot.
    fn find(&self, bucket: usize, canon: &Canon) -> Option<(&Slot, Snapshot)> {
        self.bucket(bucket)
            .iter()
            .filter(|slot| slot.key_hint() == canon.key)
            .filter_map(|slot| Some((slot, slot.read()?)))
            .find(|(_, snap)| snap.matches(canon))
    }

    /// [`Conntrack::find`] that waits out busy slots (control path).
    fn find_patiently(&self, bucket: usize, canon: &Canon) -> Option<(&Slot, Snapshot)> {
        self.bucket(bucket)
            .iter()
            .filter_map(|slot| Some((slot, read_patiently(slot)?)))
            .find(|(_, snap)| snap.matches(canon))
    }

    /// The hit a packet makes on `snap`, and whether the slot needs writing.
    fn advance(
        &self,
        canon: &Canon,
        snap: &Snapshot,
        tcp_flags: Option<TcpFlags>,
        now_ms: u64,
    ) -> (Hit, bool) {
        let direction = direction(canon, snap);
        let state = state::advance(canon.protocol(), snap.state(), direction, tcp_flags);
        let stale = now_ms >= snap.last_seen().saturating_add(REFRESH_MS);
        let hit = Hit {
            direction,
            state,
            tag: snap.tag(),
        };
        (hit, stale || state != snap.state())
    }

    fn refresh(
        &self,
        guard: &SlotGuard<'_>,
        canon: &Canon,
        snap: &Snapshot,
        state: FlowState,
        now_ms: u64,
    ) {
        if state != snap.state() {
            guard.set(KEY, key_word(canon, state, snap.orig_is_b()));
        }
        guard.set(SEEN, now_ms.max(snap.last_seen()));
    }

    /// The bucket's insert lock: spun for, then yielded for a few times (its
    /// holder is held for a few stores, so a long wait means it was
    /// preempted); `None` if it stays taken.
    fn lock_bucket(&self, bucket: usize) -> Option<BucketGuard<'_>> {
        let lock = &self.bucket_locks[bucket];
        for round in 0..=BUCKET_LOCK_YIELDS {
            if round > 0 {
                yield_now();
            }
            for _ in 0..BUCKET_LOCK_SPINS {
                if lock
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(BucketGuard(lock));
                }
                spin_loop();
            }
        }
        None
    }

    /// One attempt at an insert, under the bucket lock; `None` if a slot
    /// changed under it (the caller retries).
    fn try_insert(
        &self,
        bucket: usize,
        canon: &Canon,
        tcp_flags: Option<TcpFlags>,
        tag: u32,
        now_ms: u64,
    ) -> Option<InsertOutcome> {
        let slots = self.bucket(bucket);
        // (rank, slot index, snapshot); rank orders free < expired < live LRU.
        let mut victim: Option<((u8, u64), usize, Snapshot)> = None;
        for (i, slot) in slots.iter().enumerate() {
            let snap = slot.read()?;
            let live = self.live(&snap, now_ms);
            if snap.occupied() && snap.matches(canon) {
                if !live {
                    // Reuse the expired entry of this very flow.
                    victim = Some(((0, 0), i, snap));
                    break;
                }
                let (hit, write) = self.advance(canon, &snap, tcp_flags, now_ms);
                if write {
                    let guard = slot.try_lock(snap.seq())?;
                    self.refresh(&guard, canon, &snap, hit.state, now_ms);
                }
                return Some(InsertOutcome::AlreadyPresent);
            }
            let rank = match (snap.occupied(), live) {
                (false, _) => (0, 0),
                (true, false) => (1, 0),
                (true, true) => (2, snap.last_seen()),
            };
            if victim.as_ref().is_none_or(|(best, ..)| rank < *best) {
                victim = Some((rank, i, snap));
            }
        }
        let (_, i, old) = victim?;
        let guard = slots[i].try_lock(old.seq())?;
        let state = state::initial(canon.protocol(), tcp_flags);
        for (j, word) in canon.addrs.iter().enumerate() {
            guard.set(ADDR + j, *word);
        }
        guard.set(KEY, key_word(canon, state, canon.src_is_b));
        guard.set(SEEN, now_ms);
        guard.set(TAG, tag_word(tag, now_ms));
        drop(guard);
        let stripe = self.stripe(bucket);
        Some(if !old.occupied() {
            stripe.occupied.fetch_add(1, Ordering::Relaxed);
            InsertOutcome::Inserted
        } else if self.live(&old, now_ms) {
            stripe.evictions.fetch_add(1, Ordering::Relaxed);
            InsertOutcome::InsertedEvicting
        } else {
            InsertOutcome::Inserted
        })
    }

    /// Empties `slot` if it still holds `snap`; whether it did.
    fn free(&self, bucket: usize, slot: &Slot, snap: &Snapshot) -> bool {
        let Some(guard) = slot.try_lock(snap.seq()) else {
            return false;
        };
        guard.set(KEY, 0);
        drop(guard);
        if snap.occupied() {
            self.stripe(bucket).occupied.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }
}

/// The direction of the packet of `canon` on the flow in `snap`.
fn direction(canon: &Canon, snap: &Snapshot) -> Direction {
    if canon.src_is_b == snap.orig_is_b() {
        Direction::Original
    } else {
        Direction::Reply
    }
}

/// A snapshot, yielding to a preempted writer if needed (control path).
fn read_patiently(slot: &Slot) -> Option<Snapshot> {
    (0..PATIENT_RETRIES).find_map(|_| {
        let snap = slot.read();
        if snap.is_none() {
            yield_now();
        }
        snap
    })
}

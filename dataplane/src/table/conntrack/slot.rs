//! One flow slot: a cache line of atomic words guarded by a seqlock.
//!
//! Word 0 is the sequence: even when stable, odd while a writer holds it.
//! Readers never write and never wait; writers take the slot with a CAS from
//! the even sequence they validated, so a successful lock also proves the slot
//! still holds what they read. See the module doc of `conntrack` for the
//! memory-ordering argument.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::key::{Canon, FAMILY_MASK, KEY_MASK};
use super::state::FlowState;

/// Word indices.
pub(super) const SEQ: usize = 0;
/// First of the four address words (A high, A low, B high, B low).
pub(super) const ADDR: usize = 1;
/// Key word: key bits (see [`KEY_MASK`]), state `<< 48`, originator-is-B `<< 56`.
pub(super) const KEY: usize = 5;
/// Last-seen time, milliseconds.
pub(super) const SEEN: usize = 6;
/// Tag (low 32 bits) and creation time in seconds (high 32 bits).
pub(super) const TAG: usize = 7;

const STATE_SHIFT: u32 = 48;
const ORIG_B_BIT: u64 = 1 << 56;

/// How often a reader retries a torn or locked slot before reporting a miss.
const READ_RETRIES: u32 = 16;

/// A flow slot, exactly one cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(super) struct Slot {
    w: [AtomicU64; 8],
}

/// A consistent copy of a slot's words (`w[SEQ]` is the even sequence read).
#[derive(Debug, Clone, Copy)]
pub(super) struct Snapshot {
    pub w: [u64; 8],
}

impl Snapshot {
    /// The sequence this copy was taken at.
    pub fn seq(&self) -> u64 {
        self.w[SEQ]
    }
    /// Whether the slot holds a flow (live or expired).
    pub fn occupied(&self) -> bool {
        self.w[KEY] & FAMILY_MASK != 0
    }
    /// Whether the slot holds the flow of `canon`.
    pub fn matches(&self, canon: &Canon) -> bool {
        self.w[KEY] & KEY_MASK == canon.key && self.w[ADDR..ADDR + 4] == canon.addrs
    }
    /// The address words.
    pub fn addrs(&self) -> [u64; 4] {
        [
            self.w[ADDR],
            self.w[ADDR + 1],
            self.w[ADDR + 2],
            self.w[ADDR + 3],
        ]
    }
    /// The flow's state.
    pub fn state(&self) -> FlowState {
        FlowState::from_code((self.w[KEY] >> STATE_SHIFT) as u8)
    }
    /// Whether endpoint B originated the flow.
    pub fn orig_is_b(&self) -> bool {
        self.w[KEY] & ORIG_B_BIT != 0
    }
    /// Last refresh, milliseconds.
    pub fn last_seen(&self) -> u64 {
        self.w[SEEN]
    }
    /// The caller's tag.
    pub fn tag(&self) -> u32 {
        self.w[TAG] as u32
    }
    /// Creation time, milliseconds (second precision).
    pub fn created_ms(&self) -> u64 {
        (self.w[TAG] >> 32) * 1000
    }
}

/// The key word for `canon` in `state`, originated by B or A.
pub(super) fn key_word(canon: &Canon, state: FlowState, orig_is_b: bool) -> u64 {
    canon.key | u64::from(state.code()) << STATE_SHIFT | if orig_is_b { ORIG_B_BIT } else { 0 }
}

/// The tag word.
pub(super) fn tag_word(tag: u32, now_ms: u64) -> u64 {
    u64::from(tag) | (now_ms / 1000) << 32
}

impl Slot {
    /// The key word read alone, without the seqlock: a cheap filter. A
    /// mismatch caused by a concurrent writer reads as a miss, which is allowed.
    pub fn key_hint(&self) -> u64 {
        self.w[KEY].load(Ordering::Relaxed) & KEY_MASK
    }

    /// A consistent copy, or `None` if writers kept the slot busy.
    pub fn read(&self) -> Option<Snapshot> {
        for _ in 0..READ_RETRIES {
            let s1 = self.w[SEQ].load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let mut w = [0u64; 8];
                for (dst, src) in w.iter_mut().zip(&self.w).skip(1) {
                    *dst = src.load(Ordering::Relaxed);
                }
                // Orders the data loads above before the re-check below.
                fence(Ordering::Acquire);
                if self.w[SEQ].load(Ordering::Relaxed) == s1 {
                    w[SEQ] = s1;
                    return Some(Snapshot { w });
                }
            }
            spin_loop();
        }
        None
    }

    /// Locks the slot if it is still at sequence `seq` (so still holds what
    /// was read at `seq`). Never waits.
    pub fn try_lock(&self, seq: u64) -> Option<SlotGuard<'_>> {
        self.w[SEQ]
            .compare_exchange(seq, seq | 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // Keeps the data stores that follow after the odd sequence for any
        // reader that sees one of them (Boehm, section 5).
        fence(Ordering::Release);
        Some(SlotGuard { slot: self, seq })
    }
}

/// A locked slot; unlocks (publishing the writes) on drop.
#[derive(Debug)]
pub(super) struct SlotGuard<'a> {
    slot: &'a Slot,
    seq: u64,
}

impl SlotGuard<'_> {
    /// Writes word `i` (not the sequence).
    pub fn set(&self, i: usize, value: u64) {
        debug_assert!(i != SEQ);
        self.slot.w[i].store(value, Ordering::Relaxed);
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.slot.w[SEQ].store(self.seq.wrapping_add(2), Ordering::Release);
    }
}

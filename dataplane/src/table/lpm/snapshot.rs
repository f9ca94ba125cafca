//! The published, immutable table and its lookups: the hot path.
//!
//! A lookup reads the root entry for the top 16 bits of the key, then follows
//! child entries one key byte at a time until it reaches a leaf (see
//! [`super::entry`]). No comparisons, no bounds checks inside a group (indices
//! are masked bytes into fixed-size arrays); the only checked index is the
//! segment number, which is always in range and predicted.
//!
//! For IPv6, [`Lpm::lookup_batch`] walks [`LANES`] keys together, one level at a time,
//! so the loads for different keys are independent and overlap in the memory
//! system instead of each key paying its full chain of cache misses in turn.
//! Keys that already reached a leaf keep loading from the all-empty sentinel
//! group 0 (always in L1) and keep their entry through a select, so the inner
//! loop has no data-dependent branch.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use super::LpmKey;
use super::arena::Tables;
use super::entry::{CHILD, ROOT_BITS, STRIDE, child_index, is_child, value, value_and_len};

/// Keys walked together by [`Lpm::lookup_batch`].
const LANES: usize = 32;

/// An immutable, published routing table. Cheap to clone.
pub struct Lpm<K: LpmKey> {
    tables: Arc<Tables>,
    _key: PhantomData<fn() -> K>,
}

impl<K: LpmKey> Clone for Lpm<K> {
    fn clone(&self) -> Self {
        Self::from_tables(Arc::clone(&self.tables))
    }
}

impl<K: LpmKey> fmt::Debug for Lpm<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm")
            .field("key_bits", &K::BITS)
            .field("segments", &self.tables.segment_count())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl<K: LpmKey> Default for Lpm<K> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<K: LpmKey> Lpm<K> {
    /// Wraps tables published by the writer.
    pub(super) fn from_tables(tables: Arc<Tables>) -> Self {
        Self {
            tables,
            _key: PhantomData,
        }
    }

    /// A table with no routes. All empty tables share one allocation.
    pub fn empty() -> Self {
        static EMPTY: OnceLock<Arc<Tables>> = OnceLock::new();
        Self::from_tables(Arc::clone(EMPTY.get_or_init(|| Arc::new(Tables::new()))))
    }

    /// The value of the longest prefix that contains `key`.
    #[inline]
    pub fn lookup(&self, key: K) -> Option<u32> {
        value(self.leaf(key))
    }

    /// The value and the length of the longest prefix that contains `key`.
    #[inline]
    pub fn lookup_with_len(&self, key: K) -> Option<(u32, u8)> {
        value_and_len(self.leaf(key))
    }

    /// The leaf (or empty entry) `key` ends at.
    #[inline(always)]
    fn leaf(&self, key: K) -> u32 {
        self.walk(self.tables.root()[key.root_index()], key)
    }

    /// Follows `entry` (a root entry for `key`) down to its leaf.
    #[inline(always)]
    fn walk(&self, mut entry: u32, key: K) -> u32 {
        let tables = &*self.tables;
        // The shift of the byte the next group indexes; for u32 it wraps after
        // the last level, where no child entries exist.
        let mut shift = u32::from(K::BITS) - ROOT_BITS - STRIDE;
        while is_child(entry) {
            entry = tables.group(child_index(entry))[key.byte_at(shift)];
            shift = shift.wrapping_sub(STRIDE);
        }
        entry
    }

    /// Looks up every key of `keys` into the same position of `out`.
    ///
    /// `out` must be at least as long as `keys`; extra entries are left alone.
    pub fn lookup_batch(&self, keys: &[K], out: &mut [Option<u32>]) {
        let n = keys.len().min(out.len());
        if K::BITS <= 32 {
            // At most three dependent loads per key: the core already overlaps
            // consecutive keys, and the plain loop beats the lane bookkeeping.
            for (key, slot) in keys[..n].iter().zip(&mut out[..n]) {
                *slot = self.lookup(*key);
            }
            return;
        }
        let tables = &*self.tables;
        let root = tables.root();
        for (keys, out) in keys[..n].chunks(LANES).zip(out[..n].chunks_mut(LANES)) {
            let mut entries = [0u32; LANES];
            let mut pending = 0;
            for (entry, key) in entries.iter_mut().zip(keys) {
                *entry = root[key.root_index()];
                pending |= *entry;
            }
            let mut shift = u32::from(K::BITS) - ROOT_BITS - STRIDE;
            while pending & CHILD != 0 {
                pending = 0;
                for (entry, key) in entries.iter_mut().zip(keys) {
                    let current = *entry;
                    // All ones for a child entry, zero for a leaf: leaves read
                    // the sentinel group 0 and keep their own entry.
                    let child_mask = 0u32.wrapping_sub(current >> 31);
                    let next = tables.group(child_index(current) & child_mask)[key.byte_at(shift)];
                    *entry = (next & child_mask) | (current & !child_mask);
                    pending |= *entry;
                }
                shift = shift.wrapping_sub(STRIDE);
            }
            for (slot, entry) in out.iter_mut().zip(entries) {
                *slot = value(entry);
            }
        }
    }

    /// Bytes of memory the table's entries occupy (shared parts included).
    pub fn memory_bytes(&self) -> usize {
        self.tables.memory_bytes()
    }
}

//! Longest-prefix match for IPv4 (`u32` keys) and IPv6 (`u128` keys).
//!
//! - [`LpmWriter`] owns the routes and is the only thing that changes them.
//! - [`LpmWriter::publish`] returns an immutable [`Lpm`] that readers query
//!   without locks; publishing again never disturbs readers of an older one.
//! - Values are `u32` in `0..=MAX_VALUE`; what they mean is the caller's business.
//!
//! # Design
//!
//! A multibit trie with leaf pushing (Gupta's DIR-24-8 generalised to
//! DIR-16-8-8-…): a 65,536-entry root indexed by the top 16 bits of the key,
//! then 256-entry *groups* indexed by each following byte. Every entry is one
//! `u32` ([`entry`]): either a child group index or a leaf holding the value
//! and the length of the route that set it. An IPv4 lookup is therefore at most
//! three dependent loads with no comparisons; IPv6 walks one group per byte
//! beyond the first 16 bits (7 loads for a /64, 15 for a /128).
//!
//! Groups live in an arena of `Arc`-shared segments of 32 groups ([`arena`]).
//! A snapshot is the root plus the segment list; the writer changes its own
//! copy through `Arc::make_mut`, so publishing after one update copies only
//! the root (if touched, 256 KiB) and the few segments it wrote (32 KiB
//! each), never the whole table. Readers of old snapshots keep the old
//! segments alive until they drop them.
//!
//! The writer also keeps a RIB (one hash map per prefix length, [`writer`]) so
//! that removing a route can restore the covering route into the slots it had
//! overwritten, and it frees groups that collapse back into one leaf.
//!
//! Why not wider or compressed strides for IPv6: a 16-bit stride below the
//! root would cost 256 KiB per group; path compression would add a compare to
//! every step. Pod /128 routes allocated from the bottom of a node /64 share
//! all but the last one or two groups, so the plain byte stride keeps memory
//! modest and lookups comparison-free; for IPv6 [`Lpm::lookup_batch`] hides
//! the depth by walking many keys level by level so their loads overlap (for
//! IPv4, at most three loads deep, a plain loop measured faster).

mod arena;
mod entry;
mod snapshot;
mod writer;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::hash::Hash;

pub use snapshot::Lpm;
pub use writer::LpmWriter;

/// The largest value a route can carry.
pub const MAX_VALUE: u32 = (1 << 23) - 1;

mod sealed {
    /// Key arithmetic the trie needs; implemented only for `u32` and `u128`.
    pub trait KeyBits: Copy {
        /// The key left-aligned in a `u128` (its top bit is bit 127).
        fn to_left_aligned(self) -> u128;
        /// The top 16 bits of the key: the index into the root.
        fn root_index(self) -> usize;
        /// The byte of the key starting `shift` bits above its least significant bit
        /// (`shift` is taken modulo the key width, so it never panics).
        fn byte_at(self, shift: u32) -> usize;
    }

    impl KeyBits for u32 {
        #[inline(always)]
        fn to_left_aligned(self) -> u128 {
            u128::from(self) << 96
        }
        #[inline(always)]
        fn root_index(self) -> usize {
            (self >> 16) as usize
        }
        #[inline(always)]
        fn byte_at(self, shift: u32) -> usize {
            (self.wrapping_shr(shift) & 0xff) as usize
        }
    }

    impl KeyBits for u128 {
        #[inline(always)]
        fn to_left_aligned(self) -> u128 {
            self
        }
        #[inline(always)]
        fn root_index(self) -> usize {
            (self >> 112) as usize
        }
        #[inline(always)]
        fn byte_at(self, shift: u32) -> usize {
            (self.wrapping_shr(shift) & 0xff) as usize
        }
    }
}

/// An address usable as an LPM key: `u32` for IPv4, `u128` for IPv6.
pub trait LpmKey: sealed::KeyBits + Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    /// Width of the key in bits.
    const BITS: u8;
    /// The key with all but the top `len` bits cleared.
    fn mask(self, len: u8) -> Self;
}

impl LpmKey for u32 {
    const BITS: u8 = 32;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - u32::from(len.min(32))))
        }
    }
}

impl LpmKey for u128 {
    const BITS: u8 = 128;
    fn mask(self, len: u8) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - u32::from(len.min(128))))
        }
    }
}

/// Why a route was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    /// The prefix length is longer than the key.
    #[error("prefix length {len} is longer than the {bits}-bit address")]
    PrefixTooLong { len: u8, bits: u8 },
    /// The value does not fit in a table entry.
    #[error("route value {0} is larger than {MAX_VALUE}")]
    ValueTooLarge(u32),
}

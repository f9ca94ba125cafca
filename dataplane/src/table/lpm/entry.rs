//! The trie's geometry and the 32-bit entry every slot holds.
//!
//! An entry is one of:
//! - `0`: no route covers the slot;
//! - a child: bit 31 set, bits 0..31 the index of a 256-entry group;
//! - a leaf: bit 31 clear, bits 23..31 the *rank* (route length + 1, so that
//!   a leaf is never 0), bits 0..23 the value (hence `MAX_VALUE = 2^23 - 1`).
//!
//! Keeping the length in the leaf lets an update decide slot by slot whether
//! the new route is more specific than what is there (leaf pushing), and gives
//! `lookup_with_len` for free.
//!
//! Levels: level 0 is the root (key bits 0..16 from the top); level `d >= 1`
//! is a group indexed by key bits `16 + 8(d-1) .. 16 + 8d`.

use super::MAX_VALUE;

/// Set in a child entry.
pub(super) const CHILD: u32 = 1 << 31;
/// Where the rank starts in a leaf.
const RANK_SHIFT: u32 = 23;

/// Key bits the root consumes.
pub(super) const ROOT_BITS: u32 = 16;
/// Entries in the root.
pub(super) const ROOT_SIZE: usize = 1 << ROOT_BITS;
/// Key bits each group consumes.
pub(super) const STRIDE: u32 = 8;
/// Entries in a group.
pub(super) const GROUP_SIZE: usize = 1 << STRIDE;

/// The leaf for a route of length `len` carrying `value` (`value <= MAX_VALUE`).
#[inline]
pub(super) fn leaf(value: u32, len: u8) -> u32 {
    debug_assert!(value <= MAX_VALUE);
    value | ((u32::from(len) + 1) << RANK_SHIFT)
}

/// The rank of a leaf or empty entry: route length + 1, or 0 for no route.
#[inline]
pub(super) fn rank(entry: u32) -> u32 {
    debug_assert!(entry & CHILD == 0);
    entry >> RANK_SHIFT
}

/// Whether `entry` points at a child group.
#[inline(always)]
pub(super) fn is_child(entry: u32) -> bool {
    entry & CHILD != 0
}

/// The group a child entry points at.
#[inline(always)]
pub(super) fn child_index(entry: u32) -> u32 {
    entry & !CHILD
}

/// The value of a leaf, `None` for an empty entry. Never called on a child.
#[inline(always)]
pub(super) fn value(entry: u32) -> Option<u32> {
    (entry != 0).then_some(entry & MAX_VALUE)
}

/// The value and route length of a leaf, `None` for an empty entry.
#[inline(always)]
pub(super) fn value_and_len(entry: u32) -> Option<(u32, u8)> {
    (entry != 0).then(|| (entry & MAX_VALUE, ((entry >> RANK_SHIFT) - 1) as u8))
}

/// The first key bit (from the top) that level `level` indexes.
pub(super) fn level_start(level: usize) -> u32 {
    if level == 0 {
        0
    } else {
        ROOT_BITS + STRIDE * (level as u32 - 1)
    }
}

/// One past the last key bit level `level` indexes.
pub(super) fn level_end(level: usize) -> u32 {
    ROOT_BITS + STRIDE * level as u32
}

/// The level whose slots a route of length `len` occupies.
pub(super) fn target_level(len: u8) -> usize {
    let len = u32::from(len);
    if len <= ROOT_BITS {
        0
    } else {
        (len - ROOT_BITS).div_ceil(STRIDE) as usize
    }
}

/// The slot of level `level` that the left-aligned key `bits` falls in.
pub(super) fn slot(bits: u128, level: usize) -> usize {
    let width = level_end(level) - level_start(level);
    ((bits << level_start(level)) >> (128 - width)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trips_value_and_len() {
        for (value, len) in [(0, 0), (MAX_VALUE, 128), (7, 32), (1, 16)] {
            let e = leaf(value, len);
            assert!(!is_child(e));
            assert_eq!(value_and_len(e), Some((value, len)));
            assert_eq!(rank(e), u32::from(len) + 1);
        }
        assert_eq!(value(0), None);
    }

    #[test]
    fn geometry() {
        assert_eq!(target_level(0), 0);
        assert_eq!(target_level(16), 0);
        assert_eq!(target_level(17), 1);
        assert_eq!(target_level(24), 1);
        assert_eq!(target_level(32), 2);
        assert_eq!(target_level(128), 14);
        let bits = 0x0a0b_0c0d_u128 << 96;
        assert_eq!(slot(bits, 0), 0x0a0b);
        assert_eq!(slot(bits, 1), 0x0c);
        assert_eq!(slot(bits, 2), 0x0d);
    }
}

//! The single writer: the RIB (the routes as given) and incremental updates of
//! the leaf-pushed trie that snapshots are published from.
//!
//! Update rules (see [`super::entry`] for the entry format). A route `p/len`
//! occupies a range of `2^(level_end - len)` slots at its target level; groups
//! on the way there are created by pushing the covering leaf down into them.
//! Every slot in the range, recursively through child groups, is then updated:
//!
//! - insert: a leaf whose rank is at most `len + 1` came from a covering (or
//!   the same) route and is overwritten; a longer leaf is more specific and
//!   stays.
//! - remove: a leaf of rank exactly `len + 1` inside the range can only be this
//!   route; it is replaced by the next covering route from the RIB (or empty).
//!
//! After a removal the groups on the path are checked bottom-up: a group whose
//! 256 entries are the same leaf holds no route longer than its parent slot
//! and collapses back into that slot; the group is freed. Only path groups can
//! collapse: any other group in the range still holds the longer route that
//! created it.
//!
//! Everything is written through [`Arena`], which copies a root or segment only
//! when a published snapshot still shares it, so an update costs O(slots
//! touched) plus at most one copy of each piece touched since the last publish.

use std::fmt;
use std::sync::Arc;

use ahash::AHashMap;

use super::arena::{Arena, Tables};
use super::entry::{
    GROUP_SIZE, child_index, is_child, leaf, level_end, level_start, rank, slot, target_level,
};
use super::{Lpm, LpmError, LpmKey, MAX_VALUE};

/// Where an entry lives: a root slot or a slot of a group.
#[derive(Clone, Copy)]
enum Place {
    Root(usize),
    Group(u32, usize),
}

/// What a range update does to each leaf it reaches.
#[derive(Clone, Copy)]
enum Op {
    /// Overwrite leaves of rank `<= rank` with `leaf`.
    Insert { leaf: u32, rank: u32 },
    /// Replace leaves of rank `== rank` with `leaf`.
    Remove { leaf: u32, rank: u32 },
}

impl Op {
    /// The new entry for `entry` (a leaf or empty), or `None` to keep it.
    fn apply(self, entry: u32) -> Option<u32> {
        match self {
            Op::Insert { leaf, rank: r } => (rank(entry) <= r).then_some(leaf),
            Op::Remove { leaf, rank: r } => (rank(entry) == r).then_some(leaf),
        }
    }
}

/// The single writer of a routing table.
pub struct LpmWriter<K: LpmKey> {
    /// Routes by prefix length, then by masked prefix.
    rib: Vec<AHashMap<K, u32>>,
    /// Number of routes.
    len: usize,
    /// The trie built from `rib`.
    arena: Arena,
}

impl<K: LpmKey> Default for LpmWriter<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: LpmKey> fmt::Debug for LpmWriter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LpmWriter")
            .field("key_bits", &K::BITS)
            .field("routes", &self.len)
            .field("groups", &self.arena.groups_in_use())
            .finish()
    }
}

impl<K: LpmKey> LpmWriter<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            rib: (0..=K::BITS).map(|_| AHashMap::new()).collect(),
            len: 0,
            arena: Arena::new(),
        }
    }

    /// Adds or replaces the route for `prefix/len` (host bits are ignored) and
    /// returns the value it replaced.
    pub fn insert(&mut self, prefix: K, len: u8, value: u32) -> Result<Option<u32>, LpmError> {
        if len > K::BITS {
            return Err(LpmError::PrefixTooLong { len, bits: K::BITS });
        }
        if value > MAX_VALUE {
            return Err(LpmError::ValueTooLarge(value));
        }
        let prefix = prefix.mask(len);
        let old = self.rib[usize::from(len)].insert(prefix, value);
        if old == Some(value) {
            return Ok(old);
        }
        if old.is_none() {
            self.len += 1;
        }
        let rank = u32::from(len) + 1;
        let op = Op::Insert {
            leaf: leaf(value, len),
            rank,
        };
        self.update(prefix.to_left_aligned(), len, op);
        Ok(old)
    }

    /// Removes the route for exactly `prefix/len` and returns its value.
    pub fn remove(&mut self, prefix: K, len: u8) -> Option<u32> {
        if len > K::BITS {
            return None;
        }
        let prefix = prefix.mask(len);
        let old = self.rib[usize::from(len)].remove(&prefix)?;
        self.len -= 1;
        let replacement = self.covering(prefix, len);
        let op = Op::Remove {
            leaf: replacement,
            rank: u32::from(len) + 1,
        };
        self.update(prefix.to_left_aligned(), len, op);
        Some(old)
    }

    /// The value of exactly `prefix/len`, if routed.
    pub fn get(&self, prefix: K, len: u8) -> Option<u32> {
        if len > K::BITS {
            return None;
        }
        self.rib[usize::from(len)].get(&prefix.mask(len)).copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every route as `(prefix, len, value)`, in no promised order.
    pub fn iter(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.rib.iter().enumerate().flat_map(|(len, routes)| {
            routes
                .iter()
                .map(move |(&prefix, &value)| (prefix, len as u8, value))
        })
    }

    /// Publishes the current routes as an immutable table for readers.
    ///
    /// Costs one reference-count increment per 32 groups; the data is shared
    /// until the writer next changes it.
    pub fn publish(&mut self) -> Lpm<K> {
        Lpm::from_tables(Arc::new(self.arena.tables().clone()))
    }

    /// Bytes the trie's entries occupy (the RIB not included).
    pub fn memory_bytes(&self) -> usize {
        self.arena.tables().memory_bytes()
    }

    /// Groups in use (tests check that removals free them).
    #[cfg(test)]
    pub(super) fn groups_in_use(&self) -> usize {
        self.arena.groups_in_use()
    }

    /// The leaf of the longest route strictly shorter than `len` that covers
    /// `prefix`, or empty.
    fn covering(&self, prefix: K, len: u8) -> u32 {
        (0..len)
            .rev()
            .find_map(|l| {
                self.rib[usize::from(l)]
                    .get(&prefix.mask(l))
                    .map(|&v| leaf(v, l))
            })
            .unwrap_or(0)
    }

    /// Applies `op` to the range of `bits/len` (bits left-aligned).
    fn update(&mut self, bits: u128, len: u8, op: Op) {
        let target = target_level(len);
        // (parent slot, group) for each group on the way to the target level.
        let mut path: Vec<(Place, u32)> = Vec::with_capacity(target);
        let mut place = Place::Root(slot(bits, 0));
        for level in 1..=target {
            let entry = self.read(place);
            let g = if is_child(entry) {
                child_index(entry)
            } else {
                let g = self.arena.alloc(entry);
                self.write(place, super::entry::CHILD | g);
                g
            };
            path.push((place, g));
            place = Place::Group(g, slot(bits, level));
        }
        let count = 1usize << (level_end(target) - u32::from(len));
        for i in 0..count {
            let at = match place {
                Place::Root(first) => Place::Root(first + i),
                Place::Group(g, first) => Place::Group(g, first + i),
            };
            self.update_slot(at, op);
        }
        if matches!(op, Op::Remove { .. }) {
            self.collapse(&path);
        }
    }

    /// Applies `op` to one slot and, through a child, to its whole subtree.
    fn update_slot(&mut self, place: Place, op: Op) {
        let entry = self.read(place);
        if is_child(entry) {
            let g = child_index(entry);
            for i in 0..GROUP_SIZE {
                self.update_slot(Place::Group(g, i), op);
            }
        } else if let Some(new) = op.apply(entry)
            && new != entry
        {
            self.write(place, new);
        }
    }

    /// Folds uniform groups on `path` back into their parent slots, deepest
    /// first, stopping at the first group that still holds a longer route.
    fn collapse(&mut self, path: &[(Place, u32)]) {
        for (level, &(parent, g)) in path.iter().enumerate().rev() {
            let group = self.arena.tables().group(g);
            let first = group[0];
            let uniform = !is_child(first)
                && group.iter().all(|&e| e == first)
                // Always true for a uniform group (a route longer than the
                // parent slot covers fewer than 256 entries); kept as a guard.
                && rank(first) <= level_start(level + 1) + 1;
            if !uniform {
                break;
            }
            self.write(parent, first);
            self.arena.release(g);
        }
    }

    /// The entry at `place`.
    fn read(&self, place: Place) -> u32 {
        let tables: &Tables = self.arena.tables();
        match place {
            Place::Root(i) => tables.root()[i],
            Place::Group(g, i) => tables.group(g)[i],
        }
    }

    /// Sets the entry at `place`.
    fn write(&mut self, place: Place, entry: u32) {
        match place {
            Place::Root(i) => self.arena.root_mut()[i] = entry,
            Place::Group(g, i) => self.arena.group_mut(g)[i] = entry,
        }
    }
}

//! Storage of the trie: the root and the groups, shared copy-on-write between
//! the writer and the snapshots it published.
//!
//! Groups are numbered; group `g` lives in segment `g / 32` at position
//! `g % 32`. Segments and the root are behind `Arc`s: a published snapshot
//! clones the `Arc`s (O(number of segments) reference-count increments), and
//! the writer's next write to a shared segment or root copies just that piece
//! (`Arc::make_mut`). Group 0 is a permanent all-empty sentinel, so the batched
//! lookup can load from "group 0" for keys that already reached a leaf instead
//! of branching.
//!
//! Freed groups go on a free list and are reused; segments are never returned
//! (a table that shrank keeps its peak group count).

use std::sync::Arc;

use super::entry::{GROUP_SIZE, ROOT_SIZE};

/// log2 of the groups per segment.
const SEGMENT_SHIFT: u32 = 5;
/// Groups per segment.
const SEGMENT_GROUPS: usize = 1 << SEGMENT_SHIFT;

/// One 256-entry group.
pub(super) type Group = [u32; GROUP_SIZE];
/// A unit of copy-on-write sharing: 32 groups, 32 KiB.
type Segment = [Group; SEGMENT_GROUPS];
/// The root, indexed by the top 16 bits of the key.
type Root = [u32; ROOT_SIZE];

/// The part of the trie a snapshot holds: everything lookups read.
#[derive(Clone)]
pub(super) struct Tables {
    root: Arc<Root>,
    segments: Vec<Arc<Segment>>,
}

impl Tables {
    /// An empty trie: an all-empty root and the sentinel group 0.
    pub(super) fn new() -> Self {
        Self {
            root: Arc::from(zeroed_root()),
            segments: vec![Arc::from(zeroed_segment())],
        }
    }

    /// The root.
    #[inline(always)]
    pub(super) fn root(&self) -> &Root {
        &self.root
    }

    /// Group `g`.
    #[inline(always)]
    pub(super) fn group(&self, g: u32) -> &Group {
        &self.segments[(g >> SEGMENT_SHIFT) as usize][g as usize & (SEGMENT_GROUPS - 1)]
    }

    /// Bytes of entries held (root plus segments), shared or not.
    pub(super) fn memory_bytes(&self) -> usize {
        size_of::<Root>()
            + self.segments.len() * size_of::<Segment>()
            + self.segments.capacity() * size_of::<Arc<Segment>>()
    }

    /// Number of segments.
    pub(super) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// The writer's side of the storage: the tables plus group allocation.
pub(super) struct Arena {
    tables: Tables,
    /// Groups released by collapses, reused before growing.
    free: Vec<u32>,
    /// Groups ever handed out, including the sentinel.
    next: u32,
}

impl Arena {
    /// An empty arena.
    pub(super) fn new() -> Self {
        Self {
            tables: Tables::new(),
            free: Vec::new(),
            next: 1,
        }
    }

    /// Read access to the current tables.
    #[inline]
    pub(super) fn tables(&self) -> &Tables {
        &self.tables
    }

    /// A root writable in place (copied first if a snapshot shares it).
    pub(super) fn root_mut(&mut self) -> &mut Root {
        Arc::make_mut(&mut self.tables.root)
    }

    /// Group `g`, writable in place (its segment copied first if shared).
    pub(super) fn group_mut(&mut self, g: u32) -> &mut Group {
        debug_assert!(g != 0, "the sentinel group is never written");
        let segment = Arc::make_mut(&mut self.tables.segments[(g >> SEGMENT_SHIFT) as usize]);
        &mut segment[g as usize & (SEGMENT_GROUPS - 1)]
    }

    /// A new group with every entry set to `fill`.
    pub(super) fn alloc(&mut self, fill: u32) -> u32 {
        let g = match self.free.pop() {
            Some(g) => g,
            None => {
                let g = self.next;
                self.next += 1;
                if (g as usize >> SEGMENT_SHIFT) == self.tables.segments.len() {
                    self.tables.segments.push(Arc::from(zeroed_segment()));
                }
                g
            }
        };
        self.group_mut(g).fill(fill);
        g
    }

    /// Returns group `g` to the free list. Its contents stay until reused, so
    /// snapshots sharing its segment are unaffected.
    pub(super) fn release(&mut self, g: u32) {
        debug_assert!(g != 0);
        self.free.push(g);
    }

    /// Groups in use, excluding the sentinel.
    pub(super) fn groups_in_use(&self) -> usize {
        self.next as usize - 1 - self.free.len()
    }
}

/// An all-zero root built on the heap (256 KiB would strain small stacks).
fn zeroed_root() -> Box<Root> {
    let Ok(root) = vec![0u32; ROOT_SIZE].into_boxed_slice().try_into() else {
        unreachable!("the vector has exactly ROOT_SIZE entries")
    };
    root
}

/// An all-zero segment built on the heap.
fn zeroed_segment() -> Box<Segment> {
    let Ok(segment) = vec![[0u32; GROUP_SIZE]; SEGMENT_GROUPS]
        .into_boxed_slice()
        .try_into()
    else {
        unreachable!("the vector has exactly SEGMENT_GROUPS groups")
    };
    segment
}

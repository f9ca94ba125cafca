//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of a
//! prime size in which every backend owns about the same number of slots, and
//! which changes in few slots when a backend comes or goes, so most flows keep
//! their backend across an endpoint change.
//!
//! Each backend walks the slots in its own order (an offset and a skip derived
//! from its identity); backends take turns claiming the next free slot of their
//! order until the table is full.

/// Table sizes to choose from: primes, each about four times the last.
const SIZES: [usize; 6] = [251, 1_021, 4_093, 16_381, 65_521, 262_139];

/// How many slots per backend the table aims for: with 100 the share of any
/// backend stays within about one per cent of the others'.
const SLOTS_PER_BACKEND: usize = 100;

/// The table size for `backends` backends: the smallest listed prime with at
/// least [`SLOTS_PER_BACKEND`] slots per backend (the largest beyond that).
pub fn table_size(backends: usize) -> usize {
    let want = backends.saturating_mul(SLOTS_PER_BACKEND);
    SIZES
        .iter()
        .copied()
        .find(|&size| size >= want)
        .unwrap_or(SIZES[SIZES.len() - 1])
}

/// Builds the lookup table for backends known by `identities` (one stable
/// number per backend, e.g. a hash of its address and port): each slot holds
/// the index into `identities` of the backend that owns it. Empty when there
/// are no backends.
///
/// The result depends on the set of identities and their order; callers pass
/// them sorted so every node builds the same table.
pub fn build(identities: &[u64]) -> Box<[u32]> {
    if identities.is_empty() {
        return Box::default();
    }
    let size = table_size(identities.len());
    let size64 = size as u64;
    // (next slot in its order, skip) per backend.
    let mut walks: Vec<(u64, u64)> = identities
        .iter()
        .map(|&id| {
            let offset = mix(id ^ 0x5bd1_e995_0000_0001) % size64;
            let skip = mix(id ^ 0x1b87_3593_0000_0002) % (size64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut slots = vec![u32::MAX; size];
    let mut filled = 0;
    'fill: loop {
        for (backend, (next, skip)) in walks.iter_mut().enumerate() {
            // A prime size and a skip below it visit every slot, so a free
            // one is found while any remains.
            while slots[*next as usize] != u32::MAX {
                *next = (*next + *skip) % size64;
            }
            slots[*next as usize] = backend as u32;
            *next = (*next + *skip) % size64;
            filled += 1;
            if filled == size {
                break 'fill;
            }
        }
    }
    slots.into_boxed_slice()
}

/// A 64-bit finaliser (splitmix64's): spreads every input bit over the output.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<u64> {
        (0..n).map(|i| mix(i + 1)).collect()
    }

    #[test]
    fn no_backends_build_an_empty_table() {
        assert!(build(&[]).is_empty());
    }

    #[test]
    fn sizes_give_each_backend_a_hundred_slots_or_more() {
        assert_eq!(table_size(1), 251);
        assert_eq!(table_size(3), 1_021);
        assert_eq!(table_size(100), 16_381);
        assert_eq!(table_size(10_000), 262_139);
        assert!(table_size(1_000_000) >= 262_139, "the largest beyond that");
    }

    #[test]
    fn every_slot_is_owned_and_shares_are_even() {
        for n in [1, 2, 3, 7, 50] {
            let table = build(&ids(n));
            assert_eq!(table.len(), table_size(n as usize));
            let mut owned = vec![0usize; n as usize];
            for &slot in table.iter() {
                owned[slot as usize] += 1;
            }
            let (min, max) = (owned.iter().min().unwrap(), owned.iter().max().unwrap());
            // Each round every backend claims one slot: shares differ by at
            // most the last, unfinished round.
            assert!(max - min <= 1, "n={n}: {owned:?}");
        }
    }

    #[test]
    fn the_same_backends_build_the_same_table() {
        assert_eq!(build(&ids(5)), build(&ids(5)));
    }

    #[test]
    fn removing_a_backend_moves_few_slots_of_the_others() {
        let before_ids = ids(10);
        let before = build(&before_ids);
        let after_ids: Vec<u64> = before_ids
            .iter()
            .copied()
            .filter(|&id| id != before_ids[4])
            .collect();
        let after = build(&after_ids);
        assert_eq!(before.len(), after.len());
        let mut kept_backend_moved = 0;
        for (old, new) in before.iter().zip(after.iter()) {
            let old_id = before_ids[*old as usize];
            let new_id = after_ids[*new as usize];
            if old_id != before_ids[4] && old_id != new_id {
                kept_backend_moved += 1;
            }
        }
        // The removed backend's tenth moves by necessity; of the rest, Maglev
        // moves a few per cent (the paper measures about that).
        assert!(
            kept_backend_moved * 100 / before.len() < 10,
            "{kept_backend_moved} of {} slots moved between kept backends",
            before.len()
        );
    }
}

//! Dimension 2 of the decomposition: the 24-bit `protocol << 16 | port` key.
//!
//! Every rule's protocol/port condition is one interval of the key space. The
//! interval ends of all rules cut the space into elementary segments; inside a
//! segment, the set of rules whose condition holds is constant. Segments with
//! the same set share a "port class", so a walk is computed once per
//! (address class, port class) pair rather than once per segment.

use ahash::AHashMap;

use super::bitset;
use super::rule::{PortRange, Rule};

/// The largest key: protocol 255, port 65535.
pub(super) const KEY_MAX: u32 = 0xFF_FFFF;

/// The lookup key of a packet.
#[inline]
pub(super) fn key(protocol: u8, port: u16) -> u32 {
    (u32::from(protocol) << 16) | u32::from(port)
}

/// The inclusive key interval a rule's protocol/port condition holds on.
pub(super) fn interval(rule: &Rule) -> (u32, u32) {
    match (rule.protocol, rule.ports) {
        (None, _) => (0, KEY_MAX),
        (Some(p), None) => (key(p, 0), key(p, u16::MAX)),
        (Some(p), Some(PortRange { first, last })) => (key(p, first), key(p, last)),
    }
}

/// The global segmentation of the key space and the port class of each segment.
#[derive(Debug)]
pub(super) struct PortClasses {
    /// Sorted segment starts; `starts[0] == 0`.
    pub starts: Vec<u32>,
    /// Port class of each segment.
    pub segment_class: Vec<u32>,
    /// Rule bit set of each port class, `words` words each.
    pub bits: Vec<u64>,
    /// Words per bit set.
    pub words: usize,
}

impl PortClasses {
    /// Segments the key space by the intervals of `rules` (in evaluation order).
    pub fn build(intervals: &[(u32, u32)]) -> Self {
        let words = bitset::words_for(intervals.len());
        let mut starts: Vec<u32> = std::iter::once(0)
            .chain(intervals.iter().map(|&(lo, _)| lo))
            .chain(
                intervals
                    .iter()
                    .filter(|&&(_, hi)| hi < KEY_MAX)
                    .map(|&(_, hi)| hi + 1),
            )
            .collect();
        starts.sort_unstable();
        starts.dedup();

        // Rules entering and leaving at each segment.
        let segment = |k: u32| starts.partition_point(|&s| s <= k) - 1;
        let mut enter: Vec<Vec<usize>> = vec![Vec::new(); starts.len()];
        let mut leave: Vec<Vec<usize>> = vec![Vec::new(); starts.len()];
        for (pos, &(lo, hi)) in intervals.iter().enumerate() {
            enter[segment(lo)].push(pos);
            if hi < KEY_MAX {
                leave[segment(hi + 1)].push(pos);
            }
        }

        let mut current = vec![0u64; words];
        let mut classes: AHashMap<Vec<u64>, u32> = AHashMap::new();
        let mut bits = Vec::new();
        let mut segment_class = Vec::with_capacity(starts.len());
        for (entering, leaving) in enter.iter().zip(&leave) {
            for &pos in leaving {
                current[pos / 64] &= !(1 << (pos % 64));
            }
            for &pos in entering {
                bitset::set(&mut current, pos);
            }
            let next = u32::try_from(classes.len()).unwrap_or(u32::MAX);
            let class = *classes.entry(current.clone()).or_insert_with(|| {
                bits.extend_from_slice(&current);
                next
            });
            segment_class.push(class);
        }
        Self {
            starts,
            segment_class,
            bits,
            words,
        }
    }

    /// Number of distinct port classes.
    pub fn class_count(&self) -> usize {
        self.bits.len().checked_div(self.words).unwrap_or(1)
    }

    /// The rule bit set of port class `class`.
    pub fn class_bits(&self, class: u32) -> &[u64] {
        let start = class as usize * self.words;
        &self.bits[start..start + self.words]
    }
}

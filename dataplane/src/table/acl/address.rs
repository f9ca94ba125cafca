//! Dimension 1 of the decomposition: the remote address.
//!
//! The rule prefixes that contain an address are exactly the ancestor chain of
//! the longest of them, so every prefix of the union (per family) names an
//! "address class": the rules whose address condition holds for addresses
//! whose longest matching prefix it is. A rule holds there when it has an
//! empty `remote` or one of its `remote` prefixes is on the chain, and none of
//! its `remote_except` prefixes is. An address matching no prefix gets the
//! root class: the rules with an empty `remote`.
//!
//! The classes are computed in one pass over the prefixes sorted by
//! (network, length), which visits every prefix after all its ancestors, with a
//! stack of the current chain's bit sets.

use ahash::AHashMap;

use crate::table::lpm::LpmKey;

use super::bitset;

/// One occurrence of a prefix in a rule.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrefixRef<K> {
    /// The network, host bits cleared.
    pub net: K,
    /// The prefix length.
    pub len: u8,
    /// The rule's position in evaluation order.
    pub pos: usize,
    /// Whether the prefix is in `remote_except` rather than `remote`.
    pub except: bool,
}

/// A distinct prefix of the union and its class.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrefixClass<K> {
    /// The network.
    pub net: K,
    /// The prefix length.
    pub len: u8,
    /// Its address class.
    pub class: u32,
    /// Index (in the same output) of its nearest ancestor in the union.
    pub parent: Option<usize>,
}

/// Distinct address classes, deduplicated by rule membership.
#[derive(Debug)]
pub(super) struct AddressClasses {
    /// Words per bit set.
    pub words: usize,
    /// Bit sets, `words` each, in class order.
    pub bits: Vec<u64>,
    index: AHashMap<Box<[u64]>, u32>,
}

impl AddressClasses {
    /// A set holding only the root class (`root` = rules with an empty `remote`).
    pub fn new(root: &[u64]) -> Self {
        let mut classes = Self {
            words: root.len(),
            bits: Vec::new(),
            index: AHashMap::new(),
        };
        classes.intern(root);
        classes
    }

    /// The class with membership `bits`, added if new.
    pub fn intern(&mut self, bits: &[u64]) -> u32 {
        if let Some(&class) = self.index.get(bits) {
            return class;
        }
        let class = u32::try_from(self.index.len()).unwrap_or(u32::MAX);
        self.index.insert(bits.into(), class);
        self.bits.extend_from_slice(bits);
        class
    }

    /// Number of classes.
    pub fn count(&self) -> usize {
        self.index.len()
    }

    /// The rule bit set of `class`.
    pub fn class_bits(&self, class: u32) -> &[u64] {
        let start = class as usize * self.words;
        &self.bits[start..start + self.words]
    }

    /// Classes every distinct prefix of `refs` (one family), interning them here.
    pub fn classify_prefixes<K: LpmKey>(
        &mut self,
        mut refs: Vec<PrefixRef<K>>,
    ) -> Vec<PrefixClass<K>> {
        let words = self.words;
        // Ancestors sort before descendants: a shorter prefix of the same
        // network has a smaller or equal network and, if equal, a shorter length.
        refs.sort_unstable_by_key(|r| (r.net, r.len));
        let root = self.class_bits(0).to_vec();
        // Level `d` of the chain holds (remote bits, except bits) at depth d;
        // level 0 is the root.
        let mut remote_levels = root;
        let mut except_levels = vec![0u64; words];
        let mut scratch = vec![0u64; words];
        // (net, len, output index) of the chain from the root down.
        let mut chain: Vec<(K, u8, usize)> = Vec::new();
        let mut out: Vec<PrefixClass<K>> = Vec::new();

        let mut i = 0;
        while i < refs.len() {
            let (net, len) = (refs[i].net, refs[i].len);
            while let Some(&(anc, anc_len, _)) = chain.last() {
                if anc_len <= len && net.mask(anc_len) == anc {
                    break;
                }
                chain.pop();
            }
            let depth = chain.len() + 1;
            let (lo, hi) = ((depth - 1) * words, depth * words);
            remote_levels.truncate(hi);
            except_levels.truncate(hi);
            remote_levels.extend_from_within(lo..hi);
            except_levels.extend_from_within(lo..hi);
            let (remote, except) = (&mut remote_levels[hi..], &mut except_levels[hi..]);
            while i < refs.len() && refs[i].net == net && refs[i].len == len {
                let target = if refs[i].except {
                    &mut *except
                } else {
                    &mut *remote
                };
                bitset::set(target, refs[i].pos);
                i += 1;
            }
            for ((s, r), e) in scratch.iter_mut().zip(remote.iter()).zip(except.iter()) {
                *s = r & !e;
            }
            let class = self.intern(&scratch);
            out.push(PrefixClass {
                net,
                len,
                class,
                parent: chain.last().map(|&(_, _, index)| index),
            });
            chain.push((net, len, out.len() - 1));
        }
        out
    }
}

//! Test-only oracle: the original, obviously correct `BTreeMap` table.
//!
//! A lookup tries every prefix length from longest to shortest. Slow, but
//! independent of the trie's encoding, so the fast table is tested against it.

use std::collections::BTreeMap;

use super::LpmKey;

/// Routes keyed by `(len, masked prefix)`.
#[derive(Debug, Clone)]
pub(super) struct Reference<K: LpmKey> {
    routes: BTreeMap<(u8, K), u32>,
}

impl<K: LpmKey> Reference<K> {
    /// No routes.
    pub(super) fn new() -> Self {
        Self {
            routes: BTreeMap::new(),
        }
    }

    /// Adds or replaces a route; returns the replaced value.
    pub(super) fn insert(&mut self, prefix: K, len: u8, value: u32) -> Option<u32> {
        self.routes.insert((len, prefix.mask(len)), value)
    }

    /// Removes exactly `prefix/len`; returns its value.
    pub(super) fn remove(&mut self, prefix: K, len: u8) -> Option<u32> {
        self.routes.remove(&(len, prefix.mask(len)))
    }

    /// Longest-prefix match with the matching length.
    pub(super) fn lookup_with_len(&self, key: K) -> Option<(u32, u8)> {
        (0..=K::BITS)
            .rev()
            .find_map(|len| self.routes.get(&(len, key.mask(len))).map(|v| (*v, len)))
    }

    /// Every route, sorted.
    pub(super) fn routes(&self) -> Vec<(K, u8, u32)> {
        self.routes.iter().map(|(&(l, p), &v)| (p, l, v)).collect()
    }
}

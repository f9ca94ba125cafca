//! Longest-prefix match for IPv4 (`u32` keys) and IPv6 (`u128` keys).
//!
//! PLACEHOLDER: a correct but slow reference implementation with the final API.
//! The fast structure replaces the internals; the API below stays.
//!
//! - [`LpmWriter`] owns the routes and is the only thing that changes them.
//! - [`LpmWriter::publish`] returns an immutable [`Lpm`] that readers query
//!   without locks; publishing again never disturbs readers of an older one.
//! - Values are `u32` in `0..=MAX_VALUE`; what they mean is the caller's business.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

/// The largest value a route can carry.
pub const MAX_VALUE: u32 = (1 << 23) - 1;

/// An address usable as an LPM key: `u32` for IPv4, `u128` for IPv6.
pub trait LpmKey: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
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

/// An immutable, published routing table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lpm<K: LpmKey> {
    routes: Arc<BTreeMap<(u8, K), u32>>,
}

impl<K: LpmKey> Default for Lpm<K> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<K: LpmKey> Lpm<K> {
    /// A table with no routes.
    pub fn empty() -> Self {
        Self {
            routes: Arc::new(BTreeMap::new()),
        }
    }

    /// The value of the longest prefix that contains `key`.
    pub fn lookup(&self, key: K) -> Option<u32> {
        self.lookup_with_len(key).map(|(value, _)| value)
    }

    /// The value and the length of the longest prefix that contains `key`.
    pub fn lookup_with_len(&self, key: K) -> Option<(u32, u8)> {
        (0..=K::BITS)
            .rev()
            .find_map(|len| self.routes.get(&(len, key.mask(len))).map(|v| (*v, len)))
    }

    /// Looks up every key of `keys` into the same position of `out`.
    ///
    /// `out` must be at least as long as `keys`; extra entries are left alone.
    pub fn lookup_batch(&self, keys: &[K], out: &mut [Option<u32>]) {
        for (key, slot) in keys.iter().zip(out.iter_mut()) {
            *slot = self.lookup(*key);
        }
    }
}

/// The single writer of a routing table.
#[derive(Debug, Default)]
pub struct LpmWriter<K: LpmKey> {
    routes: BTreeMap<(u8, K), u32>,
}

impl<K: LpmKey> LpmWriter<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            routes: BTreeMap::new(),
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
        Ok(self.routes.insert((len, prefix.mask(len)), value))
    }

    /// Removes the route for exactly `prefix/len` and returns its value.
    pub fn remove(&mut self, prefix: K, len: u8) -> Option<u32> {
        if len > K::BITS {
            return None;
        }
        self.routes.remove(&(len, prefix.mask(len)))
    }

    /// The value of exactly `prefix/len`, if routed.
    pub fn get(&self, prefix: K, len: u8) -> Option<u32> {
        if len > K::BITS {
            return None;
        }
        self.routes.get(&(len, prefix.mask(len))).copied()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every route as `(prefix, len, value)`, in no promised order.
    pub fn iter(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.routes
            .iter()
            .map(|(&(len, prefix), &value)| (prefix, len, value))
    }

    /// Publishes the current routes as an immutable table for readers.
    pub fn publish(&mut self) -> Lpm<K> {
        Lpm {
            routes: Arc::new(self.routes.clone()),
        }
    }
}

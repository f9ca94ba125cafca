//! The fast table against the reference oracle, on seeded random update
//! sequences, plus the snapshot and error contracts.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::reference::Reference;
use super::{Lpm, LpmError, LpmKey, LpmWriter, MAX_VALUE};

/// Random keys for the generic tests.
trait TestKey: LpmKey {
    /// A uniformly random key.
    fn random(rng: &mut StdRng) -> Self;
    /// `self` with bit `bit` (counted from the top) flipped.
    fn flip(self, bit: u8) -> Self;
}

impl TestKey for u32 {
    fn random(rng: &mut StdRng) -> Self {
        rng.random()
    }
    fn flip(self, bit: u8) -> Self {
        self ^ (1 << (31 - bit))
    }
}

impl TestKey for u128 {
    fn random(rng: &mut StdRng) -> Self {
        rng.random()
    }
    fn flip(self, bit: u8) -> Self {
        self ^ (1 << (127 - bit))
    }
}

/// A key near one of `bases`, so that prefixes overlap and share groups.
fn near<K: TestKey>(rng: &mut StdRng, bases: &[K]) -> K {
    let mut key = bases[rng.random_range(0..bases.len())];
    for _ in 0..rng.random_range(0..3) {
        key = key.flip(rng.random_range(0..K::BITS));
    }
    key
}

/// A prefix length favouring the edges: /0, full length, level boundaries.
fn length<K: TestKey>(rng: &mut StdRng) -> u8 {
    match rng.random_range(0..10) {
        0 => 0,
        1 => K::BITS,
        2 => [8, 16, 17, 24, 25, 32][rng.random_range(0..6)].min(K::BITS),
        _ => rng.random_range(0..=K::BITS),
    }
}

/// Checks every observable of `lpm`/`writer` against `reference`.
fn check<K: TestKey>(
    rng: &mut StdRng,
    bases: &[K],
    writer: &LpmWriter<K>,
    lpm: &Lpm<K>,
    reference: &Reference<K>,
) {
    let mut routes: Vec<_> = writer.iter().collect();
    routes.sort();
    let mut expected = reference.routes();
    expected.sort();
    assert_eq!(routes, expected);
    assert_eq!(writer.len(), expected.len());
    assert_eq!(writer.is_empty(), expected.is_empty());

    let mut keys: Vec<K> = (0..300).map(|_| near(rng, bases)).collect();
    keys.extend((0..50).map(|_| K::random(rng)));
    // Route boundaries are where off-by-one errors live.
    keys.extend(expected.iter().take(100).map(|&(p, _, _)| p));
    let mut batch = vec![None; keys.len()];
    lpm.lookup_batch(&keys, &mut batch);
    for (&key, got) in keys.iter().zip(batch) {
        let want = reference.lookup_with_len(key);
        assert_eq!(lpm.lookup_with_len(key), want, "key {key:?}");
        assert_eq!(lpm.lookup(key), want.map(|(v, _)| v), "key {key:?}");
        assert_eq!(got, want.map(|(v, _)| v), "batch key {key:?}");
    }
    for &(prefix, len, value) in expected.iter().take(50) {
        assert_eq!(writer.get(prefix, len), Some(value));
    }
}

/// Seeded random inserts, replaces and removals, checked after every few.
fn random_ops<K: TestKey>(seed: u64, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let bases: Vec<K> = (0..8).map(|_| K::random(&mut rng)).collect();
    let mut writer = LpmWriter::<K>::new();
    let mut reference = Reference::<K>::new();
    let mut inserted: Vec<(K, u8)> = Vec::new();
    for op in 0..ops {
        if !inserted.is_empty() && rng.random_bool(0.4) {
            // Remove a known route (or, sometimes, one that is not there).
            let (prefix, len) = if rng.random_bool(0.9) {
                inserted.swap_remove(rng.random_range(0..inserted.len()))
            } else {
                (near(&mut rng, &bases), length::<K>(&mut rng))
            };
            assert_eq!(writer.remove(prefix, len), reference.remove(prefix, len));
        } else {
            let (prefix, len) = if !inserted.is_empty() && rng.random_bool(0.1) {
                inserted[rng.random_range(0..inserted.len())]
            } else {
                (near(&mut rng, &bases), length::<K>(&mut rng))
            };
            let value = rng.random_range(0..=MAX_VALUE);
            let old = writer.insert(prefix, len, value).expect("valid route");
            assert_eq!(old, reference.insert(prefix, len, value));
            inserted.push((prefix, len));
        }
        if op % 25 == 24 {
            let lpm = writer.publish();
            check(&mut rng, &bases, &writer, &lpm, &reference);
        }
    }
    // Remove everything: the trie must fold back to nothing.
    for (prefix, len, _) in reference.routes() {
        assert!(writer.remove(prefix, len).is_some());
        reference.remove(prefix, len);
    }
    let lpm = writer.publish();
    check(&mut rng, &bases, &writer, &lpm, &reference);
    assert_eq!(writer.groups_in_use(), 0, "all groups freed");
}

#[test]
fn random_ops_match_reference_ipv4() {
    for seed in 0..12 {
        random_ops::<u32>(seed, 600);
    }
}

#[test]
fn random_ops_match_reference_ipv6() {
    for seed in 100..108 {
        random_ops::<u128>(seed, 500);
    }
}

#[test]
fn edge_lengths_ipv4() {
    let mut w = LpmWriter::<u32>::new();
    assert_eq!(w.insert(0xdead_beef, 0, 1), Ok(None));
    assert_eq!(w.insert(0x0a00_0001, 32, 2), Ok(None));
    assert_eq!(w.insert(0x0a00_00ff, 24, 3), Ok(None));
    assert_eq!(w.insert(0x0a00_ffff, 16, 4), Ok(None));
    let lpm = w.publish();
    assert_eq!(lpm.lookup_with_len(0x0a00_0001), Some((2, 32)));
    assert_eq!(lpm.lookup_with_len(0x0a00_0002), Some((3, 24)));
    assert_eq!(lpm.lookup_with_len(0x0a00_0102), Some((4, 16)));
    assert_eq!(lpm.lookup_with_len(0x0b00_0000), Some((1, 0)));
    assert_eq!(w.get(0x0a00_0000, 24), Some(3), "host bits are masked");
}

#[test]
fn edge_lengths_ipv6() {
    let mut w = LpmWriter::<u128>::new();
    let pod = 0xfd00_0000_0000_0001_0000_0000_0000_0042_u128;
    assert_eq!(w.insert(pod, 128, 7), Ok(None));
    assert_eq!(w.insert(pod, 64, 6), Ok(None));
    let lpm = w.publish();
    assert_eq!(lpm.lookup_with_len(pod), Some((7, 128)));
    assert_eq!(lpm.lookup_with_len(pod + 1), Some((6, 64)));
    assert_eq!(lpm.lookup(0), None);
    assert_eq!(w.insert(0, 0, 5), Ok(None));
    assert_eq!(w.publish().lookup_with_len(0), Some((5, 0)));
}

#[test]
fn removal_uncovers_covering_route_and_replace_returns_old() {
    let mut w = LpmWriter::<u32>::new();
    w.insert(0x0a00_0000, 8, 1).unwrap();
    w.insert(0x0a01_0000, 16, 2).unwrap();
    w.insert(0x0a01_0200, 24, 3).unwrap();
    assert_eq!(w.insert(0x0a01_0200, 24, 9), Ok(Some(3)));
    assert_eq!(w.len(), 3);
    assert_eq!(w.publish().lookup(0x0a01_0203), Some(9));
    assert_eq!(w.remove(0x0a01_0200, 24), Some(9));
    assert_eq!(w.publish().lookup_with_len(0x0a01_0203), Some((2, 16)));
    assert_eq!(w.remove(0x0a01_0000, 16), Some(2));
    assert_eq!(w.publish().lookup_with_len(0x0a01_0203), Some((1, 8)));
    assert_eq!(w.remove(0x0a01_0000, 16), None, "already gone");
    assert_eq!(w.remove(0x0a00_0000, 8), Some(1));
    assert!(w.is_empty());
    assert_eq!(w.publish().lookup(0x0a01_0203), None);
}

#[test]
fn old_snapshot_is_unchanged_by_later_writes() {
    let mut w = LpmWriter::<u32>::new();
    w.insert(0x0a00_0000, 24, 1).unwrap();
    w.insert(0x0a00_0005, 32, 2).unwrap();
    let old = w.publish();
    let old_clone = old.clone();
    w.insert(0x0a00_0000, 24, 3).unwrap();
    w.remove(0x0a00_0005, 32).unwrap();
    w.insert(0, 0, 4).unwrap();
    w.insert(0x0a00_0007, 32, 5).unwrap();
    let new = w.publish();
    for lpm in [&old, &old_clone] {
        assert_eq!(lpm.lookup(0x0a00_0005), Some(2));
        assert_eq!(lpm.lookup(0x0a00_0007), Some(1));
        assert_eq!(lpm.lookup(0x0b00_0000), None);
    }
    assert_eq!(new.lookup(0x0a00_0005), Some(3));
    assert_eq!(new.lookup(0x0a00_0007), Some(5));
    assert_eq!(new.lookup(0x0b00_0000), Some(4));
}

#[test]
fn invalid_routes_are_refused() {
    let mut w4 = LpmWriter::<u32>::new();
    assert_eq!(
        w4.insert(0, 33, 1),
        Err(LpmError::PrefixTooLong { len: 33, bits: 32 })
    );
    assert_eq!(
        w4.insert(0, 8, MAX_VALUE + 1),
        Err(LpmError::ValueTooLarge(MAX_VALUE + 1))
    );
    assert_eq!(w4.insert(0, 8, MAX_VALUE), Ok(None));
    assert_eq!(w4.remove(0, 33), None);
    assert_eq!(w4.get(0, 33), None);
    let mut w6 = LpmWriter::<u128>::new();
    assert_eq!(
        w6.insert(0, 129, 1),
        Err(LpmError::PrefixTooLong {
            len: 129,
            bits: 128
        })
    );
    assert_eq!(w4.len(), 1);
    assert!(w6.is_empty());
}

#[test]
fn empty_table_and_batch_bounds() {
    let empty = Lpm::<u32>::empty();
    assert_eq!(empty.lookup(1), None);
    assert_eq!(Lpm::<u128>::default().lookup_with_len(1), None);
    let mut w = LpmWriter::<u32>::new();
    w.insert(0x0a00_0000, 8, 1).unwrap();
    let lpm = w.publish();
    let keys = [0x0a00_0001, 0x0b00_0000, 0x0a00_0002];
    let mut out = [Some(99); 5];
    lpm.lookup_batch(&keys, &mut out);
    assert_eq!(out, [Some(1), None, Some(1), Some(99), Some(99)]);
    let mut short = [None; 1];
    lpm.lookup_batch(&keys, &mut short);
    assert_eq!(short, [Some(1)]);
}

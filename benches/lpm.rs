//! Longest-prefix-match throughput: tweed's trie against the `prefix-trie`
//! crate on the same seeded tables (100k IPv4 routes, 20k IPv6 routes) and the
//! same destinations. Each iteration looks up one batch of keys.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use tweed_dataplane::table::lpm::{Lpm, LpmWriter};
use tweed_suite::workload::{ipv4_routes, ipv6_routes, lookup_keys};

/// Keys looked up per iteration.
const BATCH: usize = 4096;

/// Our table and the reference map, holding value `i + 1` for route `i`.
fn build_v4(routes: &[(u32, u8)]) -> (Lpm<u32>, PrefixMap<Ipv4Net, u32>) {
    let mut writer = LpmWriter::new();
    let mut map = PrefixMap::new();
    for (i, &(prefix, len)) in routes.iter().enumerate() {
        let value = i as u32 + 1;
        writer.insert(prefix, len, value).expect("valid route");
        let net = Ipv4Net::new(Ipv4Addr::from(prefix), len).expect("valid prefix");
        map.insert(net, value);
    }
    (writer.publish(), map)
}

/// As [`build_v4`], for IPv6.
fn build_v6(routes: &[(u128, u8)]) -> (Lpm<u128>, PrefixMap<Ipv6Net, u32>) {
    let mut writer = LpmWriter::new();
    let mut map = PrefixMap::new();
    for (i, &(prefix, len)) in routes.iter().enumerate() {
        let value = i as u32 + 1;
        writer.insert(prefix, len, value).expect("valid route");
        let net = Ipv6Net::new(Ipv6Addr::from(prefix), len).expect("valid prefix");
        map.insert(net, value);
    }
    (writer.publish(), map)
}

fn ref_v4(map: &PrefixMap<Ipv4Net, u32>, key: u32) -> Option<u32> {
    let host = Ipv4Net::new_assert(Ipv4Addr::from(key), 32);
    map.get_lpm(&host).map(|(_, v)| *v)
}

fn ref_v6(map: &PrefixMap<Ipv6Net, u32>, key: u128) -> Option<u32> {
    let host = Ipv6Net::new_assert(Ipv6Addr::from(key), 128);
    map.get_lpm(&host).map(|(_, v)| *v)
}

fn lpm(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut out = vec![None; BATCH];

    let routes = ipv4_routes(100_000, 1);
    let keys = lookup_keys(&routes, BATCH, 2);
    let (table, map) = build_v4(&routes);
    table.lookup_batch(&keys, &mut out);
    for (&key, &got) in keys.iter().zip(&out) {
        assert_eq!(got, ref_v4(&map, key), "tweed and prefix-trie disagree");
    }
    eprintln!("ipv4-100k table: {} KiB", table.memory_bytes() / 1024);
    group.bench_function("ipv4-100k/tweed", |b| {
        b.iter(|| {
            table.lookup_batch(black_box(&keys), &mut out);
            black_box(&out);
        })
    });
    group.bench_function("ipv4-100k/tweed-single", |b| {
        b.iter(|| {
            for (&key, slot) in black_box(&keys).iter().zip(out.iter_mut()) {
                *slot = table.lookup(key);
            }
            black_box(&out);
        })
    });
    group.bench_function("ipv4-100k/prefix-trie", |b| {
        b.iter(|| {
            for (&key, slot) in black_box(&keys).iter().zip(out.iter_mut()) {
                *slot = ref_v4(&map, key);
            }
            black_box(&out);
        })
    });

    let routes = ipv6_routes(20_000, 1);
    let keys = lookup_keys(&routes, BATCH, 2);
    let (table, map) = build_v6(&routes);
    table.lookup_batch(&keys, &mut out);
    for (&key, &got) in keys.iter().zip(&out) {
        assert_eq!(got, ref_v6(&map, key), "tweed and prefix-trie disagree");
    }
    eprintln!("ipv6-20k table: {} KiB", table.memory_bytes() / 1024);
    group.bench_function("ipv6-20k/tweed", |b| {
        b.iter(|| {
            table.lookup_batch(black_box(&keys), &mut out);
            black_box(&out);
        })
    });
    group.bench_function("ipv6-20k/tweed-single", |b| {
        b.iter(|| {
            for (&key, slot) in black_box(&keys).iter().zip(out.iter_mut()) {
                *slot = table.lookup(key);
            }
            black_box(&out);
        })
    });
    group.bench_function("ipv6-20k/prefix-trie", |b| {
        b.iter(|| {
            for (&key, slot) in black_box(&keys).iter().zip(out.iter_mut()) {
                *slot = ref_v6(&map, key);
            }
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, lpm);
criterion_main!(benches);

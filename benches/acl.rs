//! Policy classification: compiled [`Classifier`] vs the linear reference.
//!
//! A Kubernetes-like rule set of 1,000 or 10,000 rules (remote sets of pod
//! /32s, some ipBlocks with except, common ports and a few ranges, mostly
//! TCP/UDP, a few Deny/Log rules in tier 0, default Deny) and a fixed batch of
//! packets, mostly from addresses inside the rules' prefixes plus misses.
//! Everything is generated from a fixed seed.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use tweed_dataplane::table::acl::{
    Classifier, PROTO_ICMP, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PortRange, Rule, RuleAction, RuleId,
    RuleSet, Verdict, classify_linear,
};

const BATCH: usize = 1024;
const PODS: u32 = 4096;
const COMMON_PORTS: [u16; 14] = [
    80, 443, 8080, 8443, 53, 5432, 6379, 3306, 9090, 9100, 27017, 5672, 11211, 2379,
];
const RANGES: [(u16, u16); 4] = [(30000, 32767), (8000, 8999), (1024, 65535), (6000, 6100)];

fn v4(addr: u32, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).expect("length <= 32"))
}

/// Pod `i`'s address: 10.0.0.0/20 spread over a /16.
fn pod(i: u32) -> u32 {
    0x0a00_0000 | (i / 250) << 8 | (i % 250 + 1)
}

/// Label selectors: groups of pods that policies refer to.
fn selectors(rng: &mut StdRng) -> Vec<Vec<u32>> {
    (0..400)
        .map(|_| {
            let size = rng.random_range(1..=12);
            (0..size).map(|_| pod(rng.random_range(0..PODS))).collect()
        })
        .collect()
}

fn ip_block(rng: &mut StdRng) -> (Vec<IpNet>, Vec<IpNet>) {
    match rng.random_range(0..4) {
        0 => (
            vec![v4(0, 0)],
            vec![v4(0x0a00_0000, 8), v4(0xc0a8_0000, 16)],
        ),
        1 => (
            vec![v4(0xac10_0000, 12)],
            vec![v4(0xac10_0000 | rng.random_range(0..4096u32) << 8, 24)],
        ),
        2 => (
            vec![v4(0xc0a8_0000 | rng.random_range(0..256u32) << 8, 24)],
            vec![],
        ),
        _ => (
            vec![v4(0x0a00_0000 | rng.random_range(0..16u32) << 10, 22)],
            vec![],
        ),
    }
}

fn rule_set(n: usize, seed: u64) -> RuleSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let groups = selectors(&mut rng);
    let rules = (0..n)
        .map(|i| {
            // A few cluster-wide Deny/Log rules first, narrow ones.
            let tier0 = i < n / 100;
            let action = if !tier0 {
                RuleAction::Allow
            } else if rng.random_bool(0.5) {
                RuleAction::Deny
            } else {
                RuleAction::Log
            };
            let (remote, remote_except) = match rng.random_range(0..100) {
                0..75 => {
                    let count = rng.random_range(1..=2);
                    let mut pods: Vec<IpNet> = (0..count)
                        .flat_map(|_| groups.choose(&mut rng).cloned().unwrap_or_default())
                        .map(|addr| v4(addr, 32))
                        .collect();
                    pods.sort_unstable();
                    pods.dedup();
                    (pods, vec![])
                }
                75..97 => ip_block(&mut rng),
                _ if tier0 => ip_block(&mut rng),
                // `from: []`: any source, always to a port below.
                _ => (vec![], vec![]),
            };
            let any_source = remote.is_empty();
            let protocol = match rng.random_range(0..100) {
                _ if any_source || tier0 => Some(
                    *[PROTO_TCP, PROTO_UDP]
                        .choose(&mut rng)
                        .unwrap_or(&PROTO_TCP),
                ),
                0..70 => Some(PROTO_TCP),
                70..90 => Some(PROTO_UDP),
                90..92 => Some(PROTO_SCTP),
                92..95 => Some(PROTO_ICMP),
                _ => None,
            };
            let ports = match (protocol, rng.random_range(0..10)) {
                (Some(PROTO_ICMP) | None, _) => None,
                (_, 9) if !any_source && !tier0 => None,
                (_, 8) => RANGES
                    .choose(&mut rng)
                    .map(|&(first, last)| PortRange { first, last }),
                _ => COMMON_PORTS.choose(&mut rng).map(|&p| PortRange::single(p)),
            };
            Rule {
                id: RuleId(i as u32),
                tier: if tier0 { 0 } else { 1 },
                action,
                remote,
                remote_except,
                protocol,
                ports,
            }
        })
        .collect();
    RuleSet {
        rules,
        default: Verdict::Deny,
    }
}

fn packets(seed: u64) -> Vec<(Ipv4Addr, u8, u16)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..BATCH)
        .map(|_| {
            let remote = match rng.random_range(0..100) {
                0..80 => pod(rng.random_range(0..PODS)),
                80..90 => {
                    let base = *[0xac10_0000u32, 0xc0a8_0000].choose(&mut rng).unwrap_or(&0);
                    base | rng.random_range(0..0x10_0000u32) & 0xffff
                }
                _ => rng.random(),
            };
            let protocol = match rng.random_range(0..100) {
                0..70 => PROTO_TCP,
                70..95 => PROTO_UDP,
                _ => PROTO_ICMP,
            };
            let port = match (protocol, rng.random_range(0..100)) {
                (PROTO_ICMP, _) => 0,
                (_, 0..70) => *COMMON_PORTS.choose(&mut rng).unwrap_or(&80),
                (_, 70..85) => rng.random_range(30000..=32767),
                _ => rng.random(),
            };
            (Ipv4Addr::from(remote), protocol, port)
        })
        .collect()
}

fn bench_acl(c: &mut Criterion) {
    let batch = packets(2);
    let mut group = c.benchmark_group("acl");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, n) in [("1k", 1_000), ("10k", 10_000)] {
        let set = rule_set(n, 1);
        let started = Instant::now();
        let classifier = Classifier::compile(&set).expect("the generated set is valid");
        eprintln!(
            "acl/{name}: compiled {n} rules in {:?}: {} outcomes, {} interval maps, {} segments",
            started.elapsed(),
            classifier.outcomes().len(),
            classifier.map_count(),
            classifier.segment_count(),
        );
        let allowed = batch
            .iter()
            .filter(|&&(a, p, port)| {
                classifier.classify_v4(u32::from(a), p, port).verdict == Verdict::Allow
            })
            .count();
        let mut depth: Vec<usize> = batch
            .iter()
            .filter_map(|&(a, p, port)| classifier.classify_v4(u32::from(a), p, port).rule)
            .map(|id| id.0 as usize)
            .collect();
        depth.sort_unstable();
        eprintln!(
            "acl/{name}: {allowed} of {BATCH} packets allowed, {} by a rule; deciding rule position p10/p50/p90 {:?}",
            depth.len(),
            [depth.len() / 10, depth.len() / 2, depth.len() * 9 / 10]
                .map(|i| depth.get(i).copied().unwrap_or(0)),
        );

        group.sample_size(100);
        group.bench_function(format!("{name}/tweed"), |b| {
            b.iter(|| {
                let mut sum = 0u32;
                for &(remote, protocol, port) in &batch {
                    sum = sum.wrapping_add(classifier.classify_index_v4(
                        u32::from(black_box(remote)),
                        protocol,
                        port,
                    ));
                }
                sum
            })
        });
        // A linear walk over 10,000 rules costs milliseconds per batch.
        group.sample_size(10);
        group.bench_function(format!("{name}/linear"), |b| {
            b.iter(|| {
                let mut allowed = 0usize;
                for &(remote, protocol, port) in &batch {
                    let outcome =
                        classify_linear(&set, IpAddr::V4(black_box(remote)), protocol, port);
                    allowed += usize::from(outcome.verdict == Verdict::Allow);
                }
                allowed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_acl);
criterion_main!(benches);

//! Choosing a new connection's backend: tweed's service table (one hash probe
//! and one Maglev slot) with 1,000 and 10,000 Services of three endpoints,
//! beside a model of kube-proxy's iptables mode in the same run: the
//! `KUBE-SERVICES` chain matched rule by rule (destination address, protocol,
//! port) until the Service's rule, then a random pick among its endpoints.
//! The model is only the walk; the end-to-end Service line (issue 14) puts the
//! real rules beside the real pipeline. Each iteration selects for one batch
//! of connections to Services spread over the whole table. `service_build`
//! compiles the whole table; `service_update` changes one Service among them,
//! the whole table built again beside a rebuild that reuses the others.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tweed_dataplane::table::service::{
    Affinity, Frontend, FrontendKind, Origin, Selection, ServiceEndpoint, ServiceKey, ServicePort,
    ServiceTable, TrafficPolicy, maglev,
};

/// Connections per iteration.
const BATCH: usize = 1024;
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 244, 0, 7));

fn vip(i: usize) -> ServiceKey {
    let [_, _, hi, lo] = (i as u32).to_be_bytes();
    ServiceKey {
        ip: IpAddr::V4(Ipv4Addr::new(10, 96, hi, lo)),
        protocol: 6,
        port: 80,
    }
}

fn services(count: usize) -> Vec<ServicePort> {
    (0..count)
        .map(|i| ServicePort {
            name: format!("bench/svc-{i}:http"),
            frontends: vec![Frontend {
                key: vip(i),
                kind: FrontendKind::ClusterIp,
            }],
            endpoints: (0..3u8)
                .map(|e| {
                    let [_, _, hi, lo] = (i as u32).to_be_bytes();
                    ServiceEndpoint {
                        ip: IpAddr::V4(Ipv4Addr::new(10, 244 + e, hi, lo)),
                        port: 8080,
                        local: e == 0,
                        ready: true,
                        serving: true,
                        terminating: false,
                    }
                })
                .collect(),
            internal: TrafficPolicy::Cluster,
            external: TrafficPolicy::Cluster,
            affinity: Affinity::None,
        })
        .collect()
}

/// The iptables model: the chain in order, each rule's match and its endpoints.
fn chain(ports: &[ServicePort]) -> Vec<(ServiceKey, Vec<(IpAddr, u16)>)> {
    ports
        .iter()
        .map(|p| {
            let endpoints = p.endpoints.iter().map(|e| (e.ip, e.port)).collect();
            (p.frontends[0].key, endpoints)
        })
        .collect()
}

fn walk(
    chain: &[(ServiceKey, Vec<(IpAddr, u16)>)],
    to: ServiceKey,
    hash: u64,
) -> Option<(IpAddr, u16)> {
    let (_, endpoints) = chain
        .iter()
        .find(|(key, _)| key.ip == to.ip && key.protocol == to.protocol && key.port == to.port)?;
    endpoints
        .get((hash % endpoints.len() as u64) as usize)
        .copied()
}

fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("service_select");
    group.throughput(Throughput::Elements(BATCH as u64));
    for count in [1_000, 10_000] {
        let ports = services(count);
        let table = ServiceTable::build(&ports).expect("distinct frontends");
        let chain = chain(&ports);
        let targets: Vec<(ServiceKey, u64)> = (0..BATCH as u64)
            .map(|n| {
                let hash = maglev::mix(n);
                (vip((hash % count as u64) as usize), hash)
            })
            .collect();
        group.bench_function(BenchmarkId::new("tweed", count), |b| {
            b.iter(|| {
                for &(to, hash) in &targets {
                    let chosen = table.select(to, CLIENT, hash, Origin::Pod);
                    debug_assert!(matches!(chosen, Selection::Backend { .. }));
                    black_box(chosen);
                }
            })
        });
        group.bench_function(BenchmarkId::new("iptables_chain_model", count), |b| {
            b.iter(|| {
                for &(to, hash) in &targets {
                    black_box(walk(&chain, to, hash));
                }
            })
        });
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("service_build");
    group.sample_size(10);
    for count in [1_000, 10_000] {
        let ports = services(count);
        group.bench_function(BenchmarkId::new("tweed", count), |b| {
            b.iter(|| ServiceTable::build(black_box(&ports)).expect("distinct frontends"))
        });
    }
    group.finish();
}

/// One Service's endpoints change among `count`: the table built again
/// whole (what the dataplane did before) against a rebuild that reuses
/// every unchanged Service's Maglev table.
fn update(c: &mut Criterion) {
    let mut group = c.benchmark_group("service_update");
    group.sample_size(10);
    for count in [1_000, 10_000] {
        let before = services(count);
        let table = ServiceTable::build(&before).expect("distinct frontends");
        let mut after = before.clone();
        after[count / 2].endpoints.pop();
        group.bench_function(BenchmarkId::new("build_whole", count), |b| {
            b.iter(|| ServiceTable::build(black_box(&after)).expect("distinct frontends"))
        });
        group.bench_function(BenchmarkId::new("rebuild_changed", count), |b| {
            b.iter(|| ServiceTable::rebuild(black_box(&after), &table).expect("distinct frontends"))
        });
    }
    group.finish();
}

criterion_group!(benches, select, build, update);
criterion_main!(benches);

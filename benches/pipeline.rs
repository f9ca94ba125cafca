//! The full forwarding decision per 64-byte frame, in batches of 256, over
//! 10,000 routes, 1,000 policy rules on every endpoint and a warm conntrack.
//!
//! - `pipeline/local`: pod → pod on the node (MAC rewrite, TTL−1, checksum).
//! - `pipeline/encap`: pod → pod on a peer node (VXLAN in place).
//! - `pipeline/decap`: VXLAN from a peer → local pod.
//! - `pipeline/reference/etherparse-slice`: etherparse's own full parse of
//!   the same local frames, measured in the same run, as a yardstick: the
//!   decision should cost a small multiple of merely parsing with a library.
//!
//! Frames are restored before every batch (outside the timed part), because
//! the pipeline rewrites them in place.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use ipnet::{IpNet, Ipv4Net};
use tweed_dataplane::frame::Frame;
use tweed_dataplane::pipeline::{Action, Counters, Ingress, Pipeline};
use tweed_dataplane::table::acl::{Classifier, PortRange, Rule, RuleAction, RuleSet, Verdict};
use tweed_dataplane::table::conntrack::{Conntrack, ConntrackConfig};
use tweed_dataplane::table::endpoints::{Endpoint, Mac};
use tweed_dataplane::table::nexthop::{NextHop, PortId};
use tweed_dataplane::table::peers::{Backend, Peer};
use tweed_dataplane::table::tables::{NodeConfig, Tables, TablesWriter};
use tweed_suite::workload;

const BATCH: usize = 256;
const FRAME_LEN: usize = 64;
const PODS: u32 = 64;
const PEERS: u32 = 100;
const RULES: u32 = 1_000;
const BACKGROUND_ROUTES: usize = 10_000;
const GW_MAC: Mac = [0xee, 0xee, 0xee, 0xee, 0xee, 0xee];
const VTEP_MAC: Mac = [0x02, 0, 0, 0, 0xff, 0xff];
const NOW_MS: u64 = 10_000;

fn pod_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 1, i as u8 + 1)
}

fn pod_mac(i: u32) -> Mac {
    [0x02, 0, 0, 0, 1, i as u8]
}

fn peer_ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, i as u8 + 1)
}

fn remote_pod(peer: u32, host: u32) -> Ipv4Addr {
    Ipv4Addr::new(100, 66, peer as u8, host as u8 + 2)
}

fn peer_mac(i: u32) -> Mac {
    [0x02, 0, 0, 0, 2, i as u8]
}

/// 1,000 Kubernetes-like allow rules (a /32 remote and a port each), default allow.
fn rules() -> RuleSet {
    let rules = (0..RULES)
        .map(|i| Rule {
            remote: vec![IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(100, 65, (i / 250) as u8, (i % 250) as u8), 32)
                    .expect("/32"),
            )],
            protocol: Some(if i % 2 == 0 { 6 } else { 17 }),
            ports: Some(PortRange::single(1000 + i as u16)),
            ..Rule::any(i, 1, RuleAction::Allow)
        })
        .collect();
    RuleSet {
        rules,
        default: Verdict::Allow,
    }
}

fn tables() -> Arc<Tables> {
    let mut writer = TablesWriter::new(NodeConfig {
        gateway_mac: GW_MAC,
        vtep_mac: VTEP_MAC,
        ..NodeConfig::default()
    });
    for (prefix, len) in workload::ipv4_routes(BACKGROUND_ROUTES, 1) {
        let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(prefix), len).expect("valid prefix"));
        writer.set_route(net, NextHop::Host).expect("route");
    }
    let policy = Arc::new(Classifier::compile(&rules()).expect("rules compile"));
    for i in 0..PODS {
        writer
            .upsert_endpoint(Endpoint {
                port: PortId(i),
                name: format!("bench/pod-{i}"),
                mac: pod_mac(i),
                ipv4: Some(pod_ip(i)),
                ipv6: None,
                identity: i,
                ingress: policy.clone(),
                egress: policy.clone(),
                rule_names: Default::default(),
            })
            .expect("endpoint");
    }
    for i in 0..PEERS {
        writer
            .upsert_peer(Peer {
                name: format!("node-{i}"),
                subnets: vec![IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::new(100, 66, i as u8, 0), 24).expect("/24"),
                )],
                underlay_ip: IpAddr::V4(peer_ip(i)),
                vtep_mac: peer_mac(i),
                backend: Backend::Vxlan,
                source_ports: None,
                partial_checksums: false,
            })
            .expect("peer");
    }
    writer.publish()
}

/// A 64-byte Ethernet/IPv4/UDP frame.
fn udp_frame(src_mac: Mac, dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let payload = [0u8; FRAME_LEN - 14 - 20 - 8];
    let mut out = Vec::with_capacity(FRAME_LEN);
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, 9000)
        .write(&mut out, &payload)
        .expect("frame");
    out
}

fn tap(eth: &[u8]) -> Frame {
    let mut bytes = vec![0u8; 10];
    bytes.extend_from_slice(eth);
    Frame::from_bytes(&bytes)
}

fn local_frames() -> Vec<Frame> {
    (0..BATCH as u32)
        .map(|i| {
            tap(&udp_frame(
                pod_mac(0),
                GW_MAC,
                pod_ip(0),
                pod_ip(1 + i % (PODS - 1)),
                20000 + i as u16,
            ))
        })
        .collect()
}

fn encap_frames() -> Vec<Frame> {
    (0..BATCH as u32)
        .map(|i| {
            tap(&udp_frame(
                pod_mac(0),
                GW_MAC,
                pod_ip(0),
                remote_pod(i % PEERS, i / PEERS),
                20000 + i as u16,
            ))
        })
        .collect()
}

fn decap_frames() -> Vec<Frame> {
    (0..BATCH as u32)
        .map(|i| {
            let mut payload = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
            payload.extend_from_slice(&udp_frame(
                peer_mac(0),
                VTEP_MAC,
                remote_pod(0, i % 200),
                pod_ip(i % PODS),
                30000 + i as u16,
            ));
            Frame::from_bytes(&payload)
        })
        .collect()
}

fn bench_case(
    c: &mut Criterion,
    id: &str,
    tables: &Tables,
    conntrack: &Conntrack,
    ingress: Ingress,
    frames: Vec<Frame>,
) {
    let pipeline = Pipeline::new(tables, conntrack, NOW_MS);
    let mut counters = Counters::default();
    let mut actions = Vec::with_capacity(BATCH);
    // Warm the conntrack: the first pass creates every flow.
    let mut warm = frames.clone();
    pipeline.process_batch(ingress, &mut warm, &mut actions, &mut counters);
    assert!(
        actions.iter().all(|a| !matches!(a, Action::Drop(_))),
        "{id}: {:?}",
        actions.first()
    );
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(id, |b| {
        b.iter_batched_ref(
            || frames.clone(),
            |batch| {
                pipeline.process_batch(ingress, batch, &mut actions, &mut counters);
                black_box(&actions);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let tables = tables();
    let conntrack = Conntrack::new(ConntrackConfig::new(1 << 16, [7, 11, 13, 17]));
    let from_peer = Ingress::Underlay {
        backend: Backend::Vxlan,
        src: SocketAddr::new(IpAddr::V4(peer_ip(0)), 4789),
    };
    bench_case(
        c,
        "local",
        &tables,
        &conntrack,
        Ingress::Port(PortId(0)),
        local_frames(),
    );
    bench_case(
        c,
        "encap",
        &tables,
        &conntrack,
        Ingress::Port(PortId(0)),
        encap_frames(),
    );
    bench_case(c, "decap", &tables, &conntrack, from_peer, decap_frames());

    let frames = local_frames();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("reference/etherparse-slice", |b| {
        b.iter(|| {
            for frame in &frames {
                black_box(etherparse::SlicedPacket::from_ethernet(&frame.data()[10..]).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);

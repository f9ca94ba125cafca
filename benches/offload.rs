//! The per-byte work of the overlay path, on one 64 KiB TCP super-frame:
//!
//! - `checksum/64KiB`: tweed's Internet checksum against a byte-pair
//!   reference (RFC 1071 as written) over the same bytes;
//! - `split/64KiB`: a super-frame cut into 1,398-byte segments by copying
//!   every segment into a buffer (`gso::segment_each`, what the worker did)
//!   against planning headers only and leaving the payload in place
//!   (`gso::plan`, what it does for a peer that wants full checksums),
//!   and planning with partial checksums (`tweed/plan-partial`: what it does
//!   for a tweed peer, which sums no payload);
//! - `merge/64KiB`: the segments, as a `UDP_GRO` read holds them, merged by
//!   copying into a super-frame (`gro::TcpGro`) against finding the run and
//!   writing its headers only (`gro_run`), verifying every segment's
//!   checksum (`tweed/run`) or trusting the partial checksums a tweed peer
//!   flagged (`tweed/run-partial`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use tweed_dataplane::offload::checksum;
use tweed_dataplane::offload::gro::TcpGro;
use tweed_dataplane::offload::gro_run::{self, Run};
use tweed_dataplane::offload::gso::SegmentChecksum::{Full, Partial};
use tweed_dataplane::offload::gso::{self, GatherPlan};
use tweed_dataplane::wire::virtio_net::{F_NEEDS_CSUM, GSO_TCPV4, LEN, VirtioNetHdr};
use tweed_dataplane::wire::vxlan;

const PAYLOAD: usize = 65_000;
const MSS: u16 = 1398;

/// RFC 1071 as written: 16-bit words, one at a time.
fn reference_sum(data: &[u8]) -> u32 {
    let mut acc = 0u32;
    for pair in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn super_frame() -> (Vec<u8>, VirtioNetHdr) {
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 31) as u8).collect();
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 244, 1, 2], [10, 244, 2, 5], 64)
        .tcp(40000, 80, 1, 64000)
        .ack(9)
        .write(&mut frame, &payload)
        .expect("a valid frame");
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: MSS,
        csum_start: 34,
        csum_offset: 16,
    };
    (frame, hdr)
}

fn offload(c: &mut Criterion) {
    let (frame, hdr) = super_frame();

    let mut group = c.benchmark_group("checksum/64KiB");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    group.bench_function("tweed", |b| {
        b.iter(|| checksum::sum(black_box(&frame[54..]), 0))
    });
    group.bench_function("reference/rfc1071-pairs", |b| {
        b.iter(|| reference_sum(black_box(&frame[54..])))
    });
    group.finish();

    let mut group = c.benchmark_group("split/64KiB");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    let mut plan = GatherPlan::default();
    group.bench_function("tweed/plan", |b| {
        b.iter(|| gso::plan(black_box(&frame), &hdr, &[0; 8], true, Full, &mut plan))
    });
    group.bench_function("tweed/plan-partial", |b| {
        b.iter(|| gso::plan(black_box(&frame), &hdr, &[0; 8], true, Partial, &mut plan))
    });
    let mut scratch = Vec::new();
    let mut out = Vec::with_capacity(80_000);
    group.bench_function("reference/copy-segments", |b| {
        b.iter(|| {
            out.clear();
            gso::segment_each(black_box(&frame), &hdr, &mut scratch, |s| {
                out.extend_from_slice(&[0; 8]);
                out.extend_from_slice(s);
            })
        })
    });
    group.finish();

    // The segments as one UDP_GRO read of VXLAN datagrams.
    let mut read = Vec::new();
    let mut segments = Vec::new();
    gso::segment_each(&frame, &hdr, &mut scratch, |s| {
        let mut header = [0; vxlan::HEADER_LEN];
        vxlan::write_header(&mut header, 1, false);
        read.extend_from_slice(&header);
        read.extend_from_slice(s);
        let mut f = vec![0; LEN];
        f.extend_from_slice(s);
        segments.push(f);
    })
    .expect("segments");
    let segment = segments[0].len() - LEN + vxlan::HEADER_LEN;
    let mut group = c.benchmark_group("merge/64KiB");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    let mut run = Run::default();
    let mut headers = Vec::new();
    group.bench_function("tweed/run", |b| {
        b.iter(|| {
            gro_run::find(
                black_box(&read),
                segment,
                vxlan::HEADER_LEN,
                false,
                &mut run,
            );
            gro_run::super_headers(&segments[0], &run, &mut headers)
        })
    });
    group.bench_function("tweed/run-partial", |b| {
        b.iter(|| {
            gro_run::find(black_box(&read), segment, vxlan::HEADER_LEN, true, &mut run);
            gro_run::super_headers(&segments[0], &run, &mut headers)
        })
    });
    let mut gro = TcpGro::new();
    group.bench_function("reference/copy-merge", |b| {
        b.iter(|| {
            for s in &segments {
                gro.push(black_box(s));
            }
            gro.flush().map(|f| f.len())
        })
    });
    group.finish();
}

criterion_group!(benches, offload);
criterion_main!(benches);

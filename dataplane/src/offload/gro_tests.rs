//! Tests of [`super::TcpGro`] with segments built by etherparse (and by
//! [`crate::offload::gso::segment_each`] for the round trip).

use super::*;
use crate::offload::gso::segment_each;
use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TcpHeader,
    TransportSlice,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const V4_SRC: [u8; 4] = [10, 244, 1, 2];
const V4_DST: [u8; 4] = [10, 244, 2, 2];
const V6_SRC: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// NOP NOP timestamp.
const TS_OPTION: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];

/// Test-local RFC 1071 fold, independent of the code under test.
fn ref_fold(bytes: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for c in bytes.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        acc += u32::from(w);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// How to build one segment.
#[derive(Clone)]
struct Seg {
    v6: bool,
    seq: u32,
    ack: u32,
    window: u16,
    psh: bool,
    fin: bool,
    syn: bool,
    rst: bool,
    urg: bool,
    cwr: bool,
    ttl: u8,
    df: bool,
    id: u16,
    ip_options: bool,
    tcp_options: Vec<u8>,
    src_port: u16,
    payload: Vec<u8>,
}

impl Seg {
    fn new(seq: u32, payload: Vec<u8>) -> Self {
        Self {
            v6: false,
            seq,
            ack: 0x1234_5678,
            window: 501,
            psh: false,
            fin: false,
            syn: false,
            rst: false,
            urg: false,
            cwr: false,
            ttl: 63,
            df: true,
            id: 100,
            ip_options: false,
            tcp_options: TS_OPTION.to_vec(),
            src_port: 40000,
            payload,
        }
    }

    /// The frame as the decapsulation hands it to a tap: an all-zero
    /// virtio-net header, then Ethernet, IP and TCP with a full checksum.
    fn build(&self) -> Vec<u8> {
        let mut tcp = TcpHeader::new(self.src_port, 5201, self.seq, self.window);
        tcp.ack = true;
        tcp.acknowledgment_number = self.ack;
        tcp.psh = self.psh;
        tcp.fin = self.fin;
        tcp.syn = self.syn;
        tcp.rst = self.rst;
        tcp.urg = self.urg;
        tcp.cwr = self.cwr;
        tcp.set_options_raw(&self.tcp_options).unwrap();
        let mut frame = vec![0u8; E];
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B);
        if self.v6 {
            builder
                .ipv6(V6_SRC, V6_DST, self.ttl)
                .tcp_header(tcp)
                .write(&mut frame, &self.payload)
                .unwrap();
        } else {
            let mut ip = Ipv4Header::new(0, self.ttl, IpNumber::TCP, V4_SRC, V4_DST).unwrap();
            ip.identification = self.id;
            ip.dont_fragment = self.df;
            if self.ip_options {
                ip.options = [0x94, 0x04, 0x00, 0x00].into();
            }
            builder
                .ip(IpHeaders::Ipv4(ip, Default::default()))
                .tcp_header(tcp)
                .write(&mut frame, &self.payload)
                .unwrap();
        }
        frame
    }
}

fn payload(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    rng.fill(&mut p[..]);
    p
}

/// `count` consecutive segments of `mss` bytes (the last `last` bytes).
fn train(rng: &mut StdRng, v6: bool, count: usize, mss: usize, last: usize) -> Vec<Seg> {
    let mut seq = rng.random::<u32>();
    (0..count)
        .map(|i| {
            let len = if i + 1 == count { last } else { mss };
            let mut s = Seg::new(seq, payload(rng, len));
            s.v6 = v6;
            s.id = 100u16.wrapping_add(i as u16);
            seq = seq.wrapping_add(len as u32);
            s
        })
        .collect()
}

/// Pushes every frame, flushing and re-offering on refusal, writing
/// unmergeable frames as they are; returns what would reach the tap.
fn coalesce(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut gro = TcpGro::new();
    let mut out = Vec::new();
    for f in frames {
        if gro.push(f) {
            continue;
        }
        if let Some(done) = gro.flush() {
            out.push(done.to_vec());
        }
        if !gro.push(f) {
            out.push(f.clone());
        }
    }
    if let Some(done) = gro.flush() {
        out.push(done.to_vec());
    }
    out
}

/// Checks a merged frame with etherparse and an independent checksum, and
/// returns its TCP payload.
fn verify_merged(merged: &[u8], segs: &[Seg]) -> Vec<u8> {
    let hdr = VirtioNetHdr::parse(merged).unwrap();
    let eth = &merged[E..];
    let p = SlicedPacket::from_ethernet(eth).unwrap();
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("merged frame is not TCP");
    };
    let first = &segs[0];
    let l4 = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(usize::from(h.total_len()), eth.len() - 14);
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
            assert_eq!(h.identification(), first.id);
            assert_eq!(h.dont_fragment(), first.df);
            assert_eq!(hdr.gso_type, GSO_TCPV4);
            14 + 20
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert_eq!(usize::from(ip.header().payload_length()), eth.len() - 54);
            assert_eq!(hdr.gso_type, GSO_TCPV6);
            14 + 40
        }
        other => panic!("unexpected network layer {other:?}"),
    };
    let headers = l4 + 20 + first.tcp_options.len();
    assert_eq!(hdr.flags, F_NEEDS_CSUM);
    assert_eq!(usize::from(hdr.gso_size), first.payload.len());
    assert_eq!(usize::from(hdr.hdr_len), headers);
    assert_eq!(usize::from(hdr.csum_start), l4);
    assert_eq!(hdr.csum_offset, 16);
    assert_eq!(tcp.sequence_number(), first.seq);
    assert_eq!(tcp.acknowledgment_number(), first.ack);
    assert_eq!(tcp.options(), first.tcp_options.as_slice());
    assert_eq!(tcp.psh(), segs.iter().any(|s| s.psh));
    assert!(tcp.ack() && !tcp.fin() && !tcp.syn() && !tcp.rst());
    // What the kernel will do with NEEDS_CSUM: sum from csum_start to the
    // end (the field holds the pseudo-header sum), store the complement.
    // That must equal the checksum etherparse computes for the frame.
    let final_csum = !ref_fold(&eth[l4..]);
    let expected = match &p.net {
        Some(NetSlice::Ipv4(ip)) => tcp
            .calc_checksum_ipv4(ip.header().source(), ip.header().destination())
            .unwrap(),
        Some(NetSlice::Ipv6(ip)) => tcp
            .calc_checksum_ipv6(ip.header().source(), ip.header().destination())
            .unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(final_csum, expected);
    tcp.payload().to_vec()
}

fn concat(segs: &[Seg]) -> Vec<u8> {
    segs.iter().flat_map(|s| s.payload.clone()).collect()
}

#[test]
fn merges_a_train_of_ipv4_segments() {
    let mut rng = StdRng::seed_from_u64(1);
    let segs = train(&mut rng, false, 10, 1398, 700);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 1);
    assert_eq!(verify_merged(&out[0], &segs), concat(&segs));
}

#[test]
fn merges_a_train_of_ipv6_segments() {
    let mut rng = StdRng::seed_from_u64(2);
    let segs = train(&mut rng, true, 5, 1378, 1378);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 1);
    assert_eq!(verify_merged(&out[0], &segs), concat(&segs));
}

#[test]
fn a_single_segment_comes_back_unchanged() {
    let mut rng = StdRng::seed_from_u64(3);
    let frame = Seg::new(7, payload(&mut rng, 100)).build();
    let mut gro = TcpGro::new();
    assert!(gro.push(&frame));
    assert_eq!(gro.segments(), 1);
    assert_eq!(gro.flush(), Some(&frame[..]));
    assert!(!gro.is_open());
    assert_eq!(gro.flush(), None);
}

#[test]
fn psh_ends_the_super_frame() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut segs = train(&mut rng, false, 6, 1000, 1000);
    segs[2].psh = true;
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    assert_eq!(verify_merged(&out[0], &segs[..3]), concat(&segs[..3]));
    assert_eq!(verify_merged(&out[1], &segs[3..]), concat(&segs[3..]));
}

#[test]
fn a_short_segment_ends_the_super_frame() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut segs = train(&mut rng, false, 3, 1000, 400);
    let next_seq = segs[2].seq.wrapping_add(400);
    let mut more = Seg::new(next_seq, payload(&mut rng, 1000));
    more.id = 103;
    segs.push(more);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    assert_eq!(verify_merged(&out[0], &segs[..3]), concat(&segs[..3]));
    assert_eq!(out[1], frames[3]);
}

#[test]
fn a_longer_segment_is_not_merged() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut segs = train(&mut rng, false, 2, 500, 500);
    let mut big = Seg::new(segs[1].seq.wrapping_add(500), payload(&mut rng, 800));
    big.id = 102;
    segs.push(big);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    assert_eq!(verify_merged(&out[0], &segs[..2]), concat(&segs[..2]));
    assert_eq!(out[1], frames[2]);
}

/// Builds two segments, lets `change` alter the second, and expects them
/// not to merge (both come back as they were).
fn refuses(name: &str, change: impl FnOnce(&mut Seg)) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut segs = train(&mut rng, false, 2, 600, 600);
    change(&mut segs[1]);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out, frames, "{name}: must not merge");
}

#[test]
fn refuses_segments_that_do_not_continue_the_flow() {
    refuses("sequence gap", |s| s.seq = s.seq.wrapping_add(1));
    refuses("other ack", |s| s.ack += 1);
    refuses("other window", |s| s.window += 1);
    refuses("other port", |s| s.src_port += 1);
    refuses("other ttl", |s| s.ttl -= 1);
    refuses("other DF", |s| s.df = false);
    refuses("other timestamp", |s| s.tcp_options[11] += 1);
    refuses("other ip version", |s| s.v6 = true);
}

#[test]
fn refuses_flags_other_than_ack_and_psh() {
    refuses("fin", |s| s.fin = true);
    refuses("syn", |s| s.syn = true);
    refuses("rst", |s| s.rst = true);
    refuses("urg", |s| s.urg = true);
    refuses("cwr", |s| s.cwr = true);
}

#[test]
fn never_opens_with_unmergeable_frames() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut gro = TcpGro::new();
    let base = Seg::new(1, payload(&mut rng, 300));
    let mut fin = base.clone();
    fin.fin = true;
    let mut options = base.clone();
    options.ip_options = true;
    let mut empty = base.clone();
    empty.payload.clear();
    for (name, frame) in [
        ("fin", fin.build()),
        ("ipv4 options", options.build()),
        ("no payload", empty.build()),
    ] {
        assert!(!gro.push(&frame), "{name}");
        assert!(!gro.is_open(), "{name}");
    }
    // A virtio-net header asking for a partial checksum or GSO.
    for byte in [0usize, 1] {
        let mut frame = base.build();
        frame[byte] = 1;
        assert!(!gro.push(&frame), "vnet byte {byte}");
    }
    // A UDP packet, an IPv4 fragment, and bytes too short to parse.
    let mut udp = vec![0u8; E];
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_SRC, V4_DST, 64)
        .udp(1, 2)
        .write(&mut udp, &[0; 100])
        .unwrap();
    assert!(!gro.push(&udp));
    let mut fragment = base.build();
    fragment[E + 14 + 6] |= 0x20;
    assert!(!gro.push(&fragment));
    let whole = base.build();
    for len in 0..whole.len() {
        assert!(!gro.push(&whole[..len]), "truncated to {len}");
    }
    assert!(!gro.is_open());
}

#[test]
fn non_df_segments_need_incrementing_ids() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut segs = train(&mut rng, false, 3, 500, 500);
    for s in &mut segs {
        s.df = false;
    }
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    assert_eq!(coalesce(&frames).len(), 1);
    segs[2].id = segs[1].id;
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], frames[2]);
}

#[test]
fn a_bad_checksum_is_never_merged() {
    let mut rng = StdRng::seed_from_u64(10);
    let segs = train(&mut rng, false, 4, 800, 800);
    for bad in 0..4 {
        let mut frames: Vec<_> = segs.iter().map(Seg::build).collect();
        let last = frames[bad].len() - 1;
        frames[bad][last] ^= 0x55;
        let out = coalesce(&frames);
        assert!(
            out.contains(&frames[bad]),
            "corrupt segment {bad} must reach the tap as it came"
        );
        let merged: Vec<u8> = out
            .iter()
            .filter(|f| **f != frames[bad])
            .flat_map(|f| {
                if f[0] == 0 {
                    f[E + 14 + 20 + 32..].to_vec()
                } else {
                    let n = segs.iter().position(|s| s.seq == read_seq(f)).unwrap();
                    let count = (f.len() - (E + 14 + 20 + 32)) / 800;
                    verify_merged(f, &segs[n..n + count])
                }
            })
            .collect();
        let good: Vec<u8> = segs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != bad)
            .flat_map(|(_, s)| s.payload.clone())
            .collect();
        assert_eq!(merged, good, "corrupt segment {bad}");
    }
}

/// `frame` as a peer that left its checksum partial hands it over: the
/// checksum field holding the pseudo-header sum, the virtio-net header
/// asking for the checksum at `csum_start`/`csum_offset`.
fn partial(frame: &[u8], csum_start: u16, csum_offset: u16) -> Vec<u8> {
    let mut out = frame.to_vec();
    let seg = parse_at(&out, E).unwrap();
    let l4_len = out.len() - seg.l4;
    let sum = checksum::fold(pseudo(&out, &seg, l4_len));
    put16(&mut out, seg.l4 + TCP_CSUM_OFFSET, sum);
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        csum_start,
        csum_offset,
        ..VirtioNetHdr::default()
    };
    hdr.write(out.first_chunk_mut::<E>().unwrap());
    out
}

#[test]
fn partial_checksums_at_the_tcp_checksum_are_trusted_and_merged() {
    let mut rng = StdRng::seed_from_u64(11);
    for v6 in [false, true] {
        let segs = train(&mut rng, v6, 5, 1000, 400);
        let l4 = if v6 { 54 } else { 34 };
        let frames: Vec<_> = segs.iter().map(|s| partial(&s.build(), l4, 16)).collect();
        let out = coalesce(&frames);
        assert_eq!(out.len(), 1, "v6 {v6}");
        assert_eq!(verify_merged(&out[0], &segs), concat(&segs));
        // A partial checksum anywhere else is not merged.
        let elsewhere: Vec<_> = segs.iter().map(|s| partial(&s.build(), l4, 6)).collect();
        assert_eq!(coalesce(&elsewhere), elsewhere);
    }
}

fn read_seq(frame: &[u8]) -> u32 {
    let at = E + 14 + 20 + 4;
    u32::from_be_bytes(frame[at..at + 4].try_into().unwrap())
}

#[test]
fn stops_at_the_ip_length_limit_and_segment_count() {
    let mut rng = StdRng::seed_from_u64(11);
    // 50 segments of 1448 bytes exceed 64 KiB: two super-frames.
    let segs = train(&mut rng, false, 50, 1448, 1448);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    let per_frame = (MAX_IP_LEN - 20 - 32) / 1448;
    assert_eq!(
        verify_merged(&out[0], &segs[..per_frame]),
        concat(&segs[..per_frame])
    );
    assert_eq!(
        verify_merged(&out[1], &segs[per_frame..]),
        concat(&segs[per_frame..])
    );
    // 70 tiny segments: at most MAX_SEGMENTS per super-frame.
    let segs = train(&mut rng, true, 70, 10, 10);
    let frames: Vec<_> = segs.iter().map(Seg::build).collect();
    let out = coalesce(&frames);
    assert_eq!(out.len(), 2);
    assert_eq!(
        verify_merged(&out[0], &segs[..MAX_SEGMENTS]),
        concat(&segs[..MAX_SEGMENTS])
    );
}

/// Segmenting a super-frame with [`segment_each`] and coalescing the
/// segments gives back the super-frame's payload, headers and MSS, and
/// re-segmenting the result gives the same segments.
#[test]
fn round_trips_with_software_segmentation() {
    let mut rng = StdRng::seed_from_u64(12);
    for v6 in [false, true] {
        for (len, mss) in [(60_000usize, 1398u16), (5000, 1000), (1001, 1000)] {
            let seg = Seg::new(rng.random(), payload(&mut rng, len));
            let mut seg = seg;
            seg.v6 = v6;
            let frame = seg.build();
            let eth = &frame[E..];
            let l4 = if v6 { 14 + 40 } else { 14 + 20 };
            let hdr = VirtioNetHdr {
                flags: 0,
                gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
                hdr_len: 0,
                gso_size: mss,
                csum_start: l4 as u16,
                csum_offset: 16,
            };
            let mut scratch = Vec::new();
            let mut segments = Vec::new();
            segment_each(eth, &hdr, &mut scratch, |s| {
                let mut f = vec![0u8; E];
                f.extend_from_slice(s);
                segments.push(f);
            })
            .unwrap();
            let out = coalesce(&segments);
            assert_eq!(out.len(), 1, "v6 {v6} len {len}");
            let merged = &out[0];
            let merged_hdr = VirtioNetHdr::parse(merged).unwrap();
            assert_eq!(merged_hdr.gso_size, mss);
            let p = SlicedPacket::from_ethernet(&merged[E..]).unwrap();
            let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
                panic!("not TCP");
            };
            assert_eq!(tcp.payload(), &seg.payload[..]);
            let mut again = Vec::new();
            segment_each(&merged[E..], &merged_hdr, &mut scratch, |s| {
                let mut f = vec![0u8; E];
                f.extend_from_slice(s);
                again.push(f);
            })
            .unwrap();
            assert_eq!(again, segments, "v6 {v6} len {len}");
        }
    }
}

//! Tests of [`super::find`] and [`super::super_headers`]: a super-frame is
//! segmented (by `gso::segment_each`), the segments are VXLAN-encapsulated
//! and laid end to end as a `UDP_GRO` read would hold them, and the run
//! found must rebuild exactly what [`crate::offload::gro::TcpGro`] merges
//! from the same segments.

use super::*;
use crate::offload::gro::TcpGro;
use crate::offload::gso::segment_each;
use crate::offload::test_frames::tcp4_super_frame;
use crate::wire::vxlan;

const VXLAN: usize = vxlan::HEADER_LEN;

/// The Ethernet segments of a `len`-byte TCP payload cut at `mss`.
fn segments(len: usize, mss: u16) -> Vec<Vec<u8>> {
    let (frame, hdr) = tcp4_super_frame(len, mss);
    let mut out = Vec::new();
    segment_each(&frame, &hdr, &mut Vec::new(), |s| out.push(s.to_vec())).unwrap();
    out
}

/// The segments as one `UDP_GRO` read: VXLAN (VNI `vni(i)`) + frame each.
fn read_of(segments: &[Vec<u8>], vni: impl Fn(usize) -> u32) -> (Vec<u8>, usize) {
    let mut read = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let mut header = [0; VXLAN];
        vxlan::write_header(&mut header, vni(i), false);
        read.extend_from_slice(&header);
        read.extend_from_slice(s);
    }
    (read, VXLAN + segments[0].len())
}

/// A frame behind an empty virtio-net header.
fn with_vnet(eth: &[u8]) -> Vec<u8> {
    let mut f = vec![0; virtio_net::LEN];
    f.extend_from_slice(eth);
    f
}

#[test]
fn a_read_of_one_flow_is_one_run_that_rebuilds_what_tcp_gro_merges() {
    let segs = segments(20_000, 1398);
    let (read, segment) = read_of(&segs, |_| 7);
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    assert_eq!(run.count, segs.len());
    assert_eq!(run.mss, 1398);

    let mut gro = TcpGro::new();
    for s in &segs {
        assert!(gro.push(&with_vnet(s)));
    }
    let merged = gro.flush().unwrap().to_vec();

    let mut rebuilt = Vec::new();
    assert!(super_headers(&with_vnet(&segs[0]), &run, &mut rebuilt));
    for p in &run.payloads {
        rebuilt.extend_from_slice(&read[p.clone()]);
    }
    assert_eq!(rebuilt, merged);
}

#[test]
fn a_corrupt_segment_ends_the_run_before_it() {
    let segs = segments(10_000, 1398);
    let (mut read, segment) = read_of(&segs, |_| 7);
    // A payload byte of the fourth datagram.
    read[3 * segment + segment - 5] ^= 0x40;
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    assert_eq!(run.count, 3);
    assert_eq!(run.payloads.len(), 3);
}

#[test]
fn partial_checksums_are_trusted_only_when_the_sender_said_so() {
    let mut segs = segments(10_000, 1398);
    // What a sender that leaves checksums partial puts there instead: any
    // value but the full checksum (34: Ethernet and IPv4 headers).
    for s in &mut segs {
        s[34 + 16] ^= 0x5a;
    }
    let (read, segment) = read_of(&segs, |_| 7);
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    assert_eq!(run.count, 0, "full checksums are verified");
    find(&read, segment, VXLAN, true, &mut run);
    assert_eq!(run.count, segs.len(), "partial ones are not");
}

#[test]
fn another_vni_ends_the_run() {
    let segs = segments(10_000, 1398);
    let (read, segment) = read_of(&segs, |i| if i < 2 { 7 } else { 8 });
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    assert_eq!(run.count, 2);
}

#[test]
fn a_first_datagram_that_is_no_segment_makes_no_run() {
    let segs = segments(3000, 1398);
    let (mut read, segment) = read_of(&segs, |_| 7);
    // The first inner frame claims to be ARP.
    read[VXLAN + 12] = 0x08;
    read[VXLAN + 13] = 0x06;
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    assert_eq!(run.count, 0);
    // Garbage, empty and truncated reads make no run and do not panic.
    for len in [0, 1, 7, 8, 40, 60, segment - 1] {
        find(
            &read[..len.min(read.len())],
            segment,
            VXLAN,
            false,
            &mut run,
        );
        assert!(run.count <= 1);
    }
    find(&read, 0, VXLAN, false, &mut run);
    find(&read, 1, VXLAN, false, &mut run);
    find(&read, segment, 10_000, false, &mut run);
    assert_eq!(run.count, 0);
}

#[test]
fn headers_of_another_frame_are_refused() {
    let segs = segments(10_000, 1398);
    let (read, segment) = read_of(&segs, |_| 7);
    let mut run = Run::default();
    find(&read, segment, VXLAN, false, &mut run);
    let mut out = Vec::new();
    // The last segment is shorter than the first.
    assert!(!super_headers(
        &with_vnet(segs.last().unwrap()),
        &run,
        &mut out
    ));
    assert!(!super_headers(&[0; 20], &run, &mut out));
}

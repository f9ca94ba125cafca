//! Tests of UDP segmentation (`GSO_UDP_L4`): a super-frame as a socket
//! with `UDP_SEGMENT` hands it to a tap with USO, cut into datagrams that
//! etherparse reads back, checksums checked independently.

use etherparse::{IpNumber, Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use super::*;
use crate::wire::transport::UDP_CSUM_OFFSET;
use crate::wire::virtio_net::{F_NEEDS_CSUM, GSO_UDP_L4};

/// A USO super-frame of `len` payload bytes, `gso_size` per datagram:
/// the UDP checksum field holds the pseudo-header sum of the whole.
fn super_frame(v4: bool, len: usize, gso_size: u16) -> (Vec<u8>, VirtioNetHdr, Vec<u8>) {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut frame = Vec::new();
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let l4 = if v4 {
        let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, [10, 1, 2, 3], [10, 9, 8, 7]).unwrap();
        ip.identification = 0xfff0;
        builder
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(4433, 443)
            .write(&mut frame, &payload)
            .unwrap();
        34
    } else {
        builder
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .udp(4433, 443)
            .write(&mut frame, &payload)
            .unwrap();
        54
    };
    let udp_len = (frame.len() - l4) as u32;
    let pseudo = if v4 {
        checksum::pseudo_header_v4([10, 1, 2, 3], [10, 9, 8, 7], PROTO_UDP, udp_len)
    } else {
        checksum::pseudo_header_v6([0xfd; 16], [0xfe; 16], PROTO_UDP, udp_len)
    };
    put16(&mut frame, l4 + UDP_CSUM_OFFSET, checksum::fold(pseudo));
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_UDP_L4,
        hdr_len: (l4 + UDP_LEN) as u16,
        gso_size,
        csum_start: l4 as u16,
        csum_offset: UDP_CSUM_OFFSET as u16,
    };
    (frame, hdr, payload)
}

/// Every datagram: a valid UDP packet with its own length and a checksum
/// that verifies; returns the payloads in order and the IPv4 ids.
fn check(datagrams: &[Vec<u8>], gso_size: usize) -> (Vec<u8>, Vec<u16>) {
    let mut carried = Vec::new();
    let mut ids = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        let packet = SlicedPacket::from_ethernet(d).unwrap();
        let Some(TransportSlice::Udp(udp)) = &packet.transport else {
            panic!("datagram {i} is not UDP")
        };
        assert_eq!(usize::from(udp.length()), UDP_LEN + udp.payload().len());
        assert!(udp.payload().len() <= gso_size);
        let expected = match &packet.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                assert_eq!(usize::from(h.total_len()), d.len() - 14);
                ids.push(h.identification());
                udp.to_header()
                    .calc_checksum_ipv4_raw(h.source(), h.destination(), udp.payload())
                    .unwrap()
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                assert_eq!(usize::from(h.payload_length()), d.len() - 54);
                udp.to_header()
                    .calc_checksum_ipv6_raw(h.source(), h.destination(), udp.payload())
                    .unwrap()
            }
            other => panic!("unexpected network layer {other:?}"),
        };
        assert_eq!(udp.checksum(), expected, "datagram {i}");
        carried.extend_from_slice(udp.payload());
    }
    (carried, ids)
}

#[test]
fn a_uso_super_frame_becomes_datagrams_that_carry_every_byte() {
    for v4 in [true, false] {
        for (len, gso_size) in [(10_000, 1200), (1200, 1200), (5, 1200), (64_000, 1400)] {
            let (frame, hdr, payload) = super_frame(v4, len, gso_size);
            let mut datagrams = Vec::new();
            let n = segment_each(&frame, &hdr, &mut Vec::new(), |d| {
                datagrams.push(d.to_vec())
            })
            .unwrap();
            assert_eq!(n, len.div_ceil(usize::from(gso_size)));
            let (carried, ids) = check(&datagrams, usize::from(gso_size));
            assert_eq!(carried, payload, "v4 {v4} len {len}");
            if v4 {
                let want: Vec<u16> = (0..n as u16).map(|i| 0xfff0u16.wrapping_add(i)).collect();
                assert_eq!(ids, want, "identification counts up and wraps");
            }
        }
    }
}

#[test]
fn planned_udp_segments_match_the_copied_ones_and_partial_ones_complete() {
    for v4 in [true, false] {
        let (frame, hdr, _) = super_frame(v4, 7000, 1300);
        let mut copied = Vec::new();
        segment_each(&frame, &hdr, &mut Vec::new(), |d| copied.push(d.to_vec())).unwrap();
        let l4 = usize::from(hdr.csum_start);
        for csum in [SegmentChecksum::Full, SegmentChecksum::Partial] {
            let mut planned = GatherPlan::default();
            plan(&frame, &hdr, &[], true, csum, &mut planned).unwrap();
            assert_eq!(planned.parts.len(), copied.len());
            for (part, whole) in planned.parts.iter().zip(&copied) {
                let mut d = planned.headers[part.header.clone()].to_vec();
                d.extend_from_slice(&frame[part.payload.clone()]);
                if csum == SegmentChecksum::Partial {
                    checksum::complete_partial(&mut d, l4, UDP_CSUM_OFFSET).unwrap();
                    if d[l4 + 6..l4 + 8] == [0, 0] {
                        d[l4 + 6..l4 + 8].copy_from_slice(&[0xff, 0xff]);
                    }
                }
                assert_eq!(&d, whole, "v4 {v4} {csum:?}");
            }
        }
    }
}

#[test]
fn uso_refuses_what_it_cannot_cut() {
    let (frame, hdr, _) = super_frame(true, 3000, 1000);
    let err = |frame: &[u8], hdr: &VirtioNetHdr| {
        segment_each(frame, hdr, &mut Vec::new(), |_| {}).unwrap_err()
    };
    let mut tcp = frame.clone();
    tcp[14 + 9] = 6;
    assert_eq!(
        err(&tcp, &hdr),
        GsoError::WrongProtocol {
            kind: GsoKind::UdpL4,
            protocol: 6
        }
    );
    let mut at_tcp_offset = hdr;
    at_tcp_offset.csum_offset = 16;
    assert!(matches!(
        err(&frame, &at_tcp_offset),
        GsoError::ChecksumOffsetMismatch { .. }
    ));
    assert!(matches!(
        err(&frame[..14 + 20 + 4], &hdr),
        GsoError::IpLengthMismatch { .. } | GsoError::Truncated { .. }
    ));
    let empty = super_frame(false, 0, 1000);
    assert_eq!(err(&empty.0, &empty.1), GsoError::EmptyPayload);
}

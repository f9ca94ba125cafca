use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::offload::checksum::{self, complete_partial, pseudo_header_v4, pseudo_header_v6};

const CLIENT4: [u8; 4] = [10, 244, 0, 7];
const VIP4: [u8; 4] = [10, 96, 0, 10];
const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
const VIP6: [u8; 16] = [0xfd, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];

fn tcp4(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT4, VIP4, 64)
        .tcp(40000, 80, 1, 65535)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(CLIENT4, VIP4, 64)
        .udp(40000, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn tcp6(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(CLIENT6, VIP6, 64)
        .tcp(40000, 80, 1, 65535)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(CLIENT6, VIP6, 64)
        .udp(40000, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// Where the transport header starts.
fn l4_start(packet: &[u8]) -> usize {
    if packet[0] >> 4 == 4 {
        usize::from(packet[0] & 0x0f) * 4
    } else {
        40
    }
}

/// The pseudo-header sum of `packet` as it stands.
fn pseudo(packet: &[u8]) -> u32 {
    let l4 = l4_start(packet);
    let len = (packet.len() - l4) as u32;
    if packet[0] >> 4 == 4 {
        let (src, dst) = (
            packet[12..16].try_into().unwrap(),
            packet[16..20].try_into().unwrap(),
        );
        pseudo_header_v4(src, dst, packet[9], len)
    } else {
        let (src, dst) = (
            packet[8..24].try_into().unwrap(),
            packet[24..40].try_into().unwrap(),
        );
        pseudo_header_v6(src, dst, packet[6], len)
    }
}

/// Both checksums verify from scratch.
fn assert_valid(packet: &[u8]) {
    if packet[0] >> 4 == 4 {
        assert_eq!(
            checksum::fold(checksum::sum(&packet[..20], 0)),
            0xffff,
            "IPv4 header checksum"
        );
    }
    let l4 = l4_start(packet);
    assert_eq!(
        checksum::fold(checksum::sum(&packet[l4..], pseudo(packet))),
        0xffff,
        "transport checksum"
    );
}

fn csum_at(packet: &[u8]) -> usize {
    let protocol = if packet[0] >> 4 == 4 {
        packet[9]
    } else {
        packet[6]
    };
    l4_start(packet) + crate::wire::transport::csum_offset(protocol).unwrap()
}

/// Leaves the transport checksum partial, as a pod's kernel hands it over.
fn make_partial(packet: &mut [u8]) {
    let at = csum_at(packet);
    let folded = checksum::fold(pseudo(packet));
    packet[at..at + 2].copy_from_slice(&folded.to_be_bytes());
}

fn backend4() -> Translation {
    Translation {
        side: Side::Destination,
        ip: IpAddr::V4(Ipv4Addr::new(10, 244, 1, 5)),
        port: 8080,
    }
}

#[test]
fn a_request_goes_to_its_backend_and_the_reply_comes_back_as_the_service() {
    for build in [tcp4, udp4] {
        let mut packet = build(b"hello, service");
        translate(&mut packet, backend4(), false).unwrap();
        assert_eq!(packet[16..20], [10, 244, 1, 5]);
        let l4 = l4_start(&packet);
        assert_eq!(packet[l4 + 2..l4 + 4], 8080u16.to_be_bytes());
        assert_eq!(packet[12..16], CLIENT4, "the source is kept");
        assert_valid(&packet);

        let back = Translation {
            side: Side::Source,
            ip: IpAddr::V4(Ipv4Addr::from(VIP4)),
            port: 80,
        };
        let mut reply = packet.clone();
        translate(&mut reply, back, false).unwrap();
        assert_eq!(reply[12..16], VIP4);
        assert_eq!(reply[l4..l4 + 2], 80u16.to_be_bytes());
        assert_valid(&reply);
    }
}

#[test]
fn ipv6_packets_translate_with_their_transport_checksum() {
    for build in [tcp6, udp6] {
        let mut packet = build(&[7; 333]);
        let to = Translation {
            side: Side::Destination,
            ip: IpAddr::V6(Ipv6Addr::new(0xfd44, 0, 0, 0, 0, 0, 0x1234, 5)),
            port: 65535,
        };
        translate(&mut packet, to, false).unwrap();
        assert_eq!(
            packet[24..40],
            Ipv6Addr::new(0xfd44, 0, 0, 0, 0, 0, 0x1234, 5).octets()
        );
        assert_valid(&packet);
    }
}

#[test]
fn a_partial_checksum_follows_the_addresses_and_completes_valid() {
    for build in [tcp4, udp4, tcp6, udp6] {
        let mut packet = build(&[0xab; 1001]);
        make_partial(&mut packet);
        let to = if packet[0] >> 4 == 4 {
            backend4()
        } else {
            Translation {
                side: Side::Destination,
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                port: 9,
            }
        };
        translate(&mut packet, to, true).unwrap();
        let l4 = l4_start(&packet);
        let offset = csum_at(&packet) - l4;
        complete_partial(&mut packet, l4, offset).unwrap();
        assert_valid(&packet);
    }
}

#[test]
fn udp_over_ipv4_without_a_checksum_stays_without_one() {
    let mut packet = udp4(b"no checksum");
    let at = csum_at(&packet);
    packet[at..at + 2].copy_from_slice(&[0, 0]);
    translate(&mut packet, backend4(), false).unwrap();
    assert_eq!(packet[at..at + 2], [0, 0]);
    assert_eq!(checksum::fold(checksum::sum(&packet[..20], 0)), 0xffff);
}

#[test]
fn random_packets_and_translations_keep_valid_checksums() {
    let mut rng = StdRng::seed_from_u64(1624);
    for round in 0..2_000 {
        let payload: Vec<u8> = (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect();
        let v4 = round % 2 == 0;
        let mut packet = match (v4, rng.random_bool(0.5)) {
            (true, true) => tcp4(&payload),
            (true, false) => udp4(&payload),
            (false, true) => tcp6(&payload),
            (false, false) => udp6(&payload),
        };
        let ip = if v4 {
            IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))
        } else {
            IpAddr::V6(Ipv6Addr::from(rng.random::<u128>()))
        };
        let side = if rng.random_bool(0.5) {
            Side::Source
        } else {
            Side::Destination
        };
        let partial = rng.random_bool(0.5);
        if partial {
            make_partial(&mut packet);
        }
        translate(
            &mut packet,
            Translation {
                side,
                ip,
                port: rng.random(),
            },
            partial,
        )
        .unwrap();
        if partial {
            let l4 = l4_start(&packet);
            let offset = csum_at(&packet) - l4;
            complete_partial(&mut packet, l4, offset).unwrap();
        }
        assert_valid(&packet);
    }
}

#[test]
fn what_cannot_be_translated_is_refused_and_left_unchanged() {
    let mut later_fragment = tcp4(b"x");
    later_fragment[6..8].copy_from_slice(&185u16.to_be_bytes());
    let mut icmp = tcp4(b"x");
    icmp[9] = 1;
    let v6_address = Translation {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..backend4()
    };
    let cases: [(Vec<u8>, Translation, NatError); 5] = [
        (later_fragment, backend4(), NatError::LaterFragment(1480)),
        (icmp, backend4(), NatError::Protocol(1)),
        (
            tcp4(b"x")[..30].to_vec(),
            backend4(),
            NatError::Truncated { len: 30, need: 40 },
        ),
        (
            tcp4(b"x"),
            v6_address,
            NatError::Family {
                packet: 4,
                new: v6_address.ip,
            },
        ),
        (vec![0x50; 60], backend4(), NatError::NotIp(5)),
    ];
    for (mut packet, to, want) in cases {
        let before = packet.clone();
        assert_eq!(translate(&mut packet, to, false), Err(want));
        assert_eq!(packet, before);
    }
    assert_eq!(
        translate(&mut [], backend4(), false),
        Err(NatError::Truncated { len: 0, need: 1 })
    );
}

/// An SCTP packet (an INIT-like chunk) from the client to the Service's
/// port 80, over IPv6 when `v6`, else IPv4, its CRC32c filled in.
fn sctp(v6: bool) -> Vec<u8> {
    let mut chunk = vec![0x9c, 0x40, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0];
    chunk.extend_from_slice(&[1, 0, 0, 20, 0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0]);
    chunk.extend_from_slice(&[0, 10, 0, 10, 0, 0, 0, 1]);
    assert!(super::crc32c::sctp_fill(&mut chunk));
    let mut out = Vec::new();
    let builder = if v6 {
        PacketBuilder::ipv6(CLIENT6, VIP6, 64)
    } else {
        PacketBuilder::ipv4(CLIENT4, VIP4, 64)
    };
    builder
        .write(&mut out, etherparse::IpNumber(PROTO_SCTP), &chunk)
        .unwrap();
    out
}

/// The SCTP packet's CRC32c holds, and the IPv4 header checksum too.
fn assert_sctp_valid(packet: &[u8]) {
    let l4 = l4_start(packet);
    let sctp = &packet[l4..];
    assert_eq!(
        super::crc32c::sctp_carried(sctp),
        super::crc32c::sctp_checksum(sctp),
        "SCTP checksum"
    );
    if packet[0] >> 4 == 4 {
        assert_eq!(
            checksum::finish(checksum::sum(&packet[..l4], 0)),
            0,
            "IPv4 header checksum"
        );
    }
}

#[test]
fn sctp_translates_both_ways_with_its_crc32c_computed_again() {
    for v6 in [false, true] {
        let mut packet = sctp(v6);
        let (to, back) = if v6 {
            let backend = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 1, 5);
            (
                Translation {
                    side: Side::Destination,
                    ip: IpAddr::V6(backend),
                    port: 3868,
                },
                Translation {
                    side: Side::Source,
                    ip: IpAddr::V6(Ipv6Addr::from(VIP6)),
                    port: 80,
                },
            )
        } else {
            (
                Translation {
                    port: 3868,
                    ..backend4()
                },
                Translation {
                    side: Side::Source,
                    ip: IpAddr::V4(Ipv4Addr::from(VIP4)),
                    port: 80,
                },
            )
        };
        translate(&mut packet, to, false).unwrap();
        let l4 = l4_start(&packet);
        assert_eq!(packet[l4 + 2..l4 + 4], 3868u16.to_be_bytes());
        assert_eq!(
            packet[l4..l4 + 2],
            40000u16.to_be_bytes(),
            "source port kept"
        );
        assert_sctp_valid(&packet);
        translate(&mut packet, back, false).unwrap();
        assert_eq!(packet[l4..l4 + 2], 80u16.to_be_bytes());
        assert_sctp_valid(&packet);
    }
}

#[test]
fn a_corrupt_sctp_packet_is_refused_not_repaired_and_a_partial_one_keeps_its_field() {
    let mut corrupt = sctp(false);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let before = corrupt.clone();
    assert!(matches!(
        translate(&mut corrupt, backend4(), false),
        Err(NatError::SctpChecksum { .. })
    ));
    assert_eq!(corrupt, before, "left unchanged");

    // Left for the receiver to compute: the field is not touched.
    let mut partial = sctp(false);
    let l4 = l4_start(&partial);
    partial[l4 + 8..l4 + 12].fill(0);
    translate(&mut partial, backend4(), true).unwrap();
    assert_eq!(partial[l4 + 8..l4 + 12], [0; 4]);
    assert_eq!(partial[l4 + 2..l4 + 4], 8080u16.to_be_bytes());

    let mut short = sctp(false)[..20 + 11].to_vec();
    assert_eq!(
        translate(&mut short, backend4(), false),
        Err(NatError::Truncated { len: 31, need: 32 })
    );
}

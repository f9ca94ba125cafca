//! Answers the dataplane gives in the gateway's name: ARP replies (proxy ARP),
//! neighbour advertisements, echo replies and ICMP errors.
//!
//! These are the slow path, so they are built with etherparse's
//! `PacketBuilder` (which computes every checksum) into a fresh Ethernet
//! frame; the caller puts it back into the frame buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4,
    icmpv6::{self, NeighborAdvertisementHeader},
};

use super::parse::{ETH_LEN, ETHERTYPE_ARP};
use crate::table::endpoints::Mac;
use crate::table::tables::{GATEWAY_V4, GATEWAY_V6};

/// Most of the offending packet an ICMPv4 error quotes: the reply stays
/// within 576 bytes (RFC 1812 §4.3.2.3).
const ICMPV4_QUOTE: usize = 576 - 20 - 8;
/// Most of the offending packet an ICMPv6 error quotes: the reply stays
/// within the IPv6 minimum MTU of 1280 (RFC 4443 §2.4(c)).
const ICMPV6_QUOTE: usize = 1280 - 40 - 8;

/// The ICMP errors the pipeline sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// No route to the destination network.
    NoRoute,
    /// TTL or hop limit exhausted in transit.
    TimeExceeded,
    /// Larger than the path MTU: "fragmentation needed" (IPv4) or "packet too
    /// big" (IPv6), carrying the MTU.
    TooBig(u16),
    /// Nothing listens on the destination port: a Service without endpoints.
    PortUnreachable,
}

/// An ARP reply saying `gateway_mac` has `target_ip`, to the asker.
pub fn arp_reply(
    gateway_mac: Mac,
    target_ip: Ipv4Addr,
    asker_mac: Mac,
    asker_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETH_LEN + 28);
    frame.extend_from_slice(&asker_mac);
    frame.extend_from_slice(&gateway_mac);
    frame.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // Ethernet (1), IPv4 (0x0800), sizes 6 and 4, operation reply (2).
    frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    frame.extend_from_slice(&gateway_mac);
    frame.extend_from_slice(&target_ip.octets());
    frame.extend_from_slice(&asker_mac);
    frame.extend_from_slice(&asker_ip.octets());
    frame
}

/// A solicited neighbour advertisement saying `gateway_mac` has `target`
/// (RFC 4861 §7.2.4), to the soliciting node (or all nodes if it had no address yet).
pub fn neighbour_advertisement(
    gateway_mac: Mac,
    target: Ipv6Addr,
    asker_mac: Mac,
    asker_ip: Ipv6Addr,
) -> Vec<u8> {
    let solicited = !asker_ip.is_unspecified();
    let dst = if solicited {
        asker_ip
    } else {
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)
    };
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&target.octets());
    // Target link-layer address option: type 2, length 1 (8 octets).
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&gateway_mac);
    let header = NeighborAdvertisementHeader {
        router: true,
        solicited,
        r#override: true,
    };
    build(
        PacketBuilder::ethernet2(gateway_mac, asker_mac)
            .ipv6(target.octets(), dst.octets(), 255)
            .icmpv6(Icmpv6Type::NeighborAdvertisement(header)),
        &body,
    )
}

/// An echo reply from `from` to the asker, quoting the request's identifier,
/// sequence and data.
pub fn echo_reply(
    gateway_mac: Mac,
    asker_mac: Mac,
    from: IpAddr,
    to: IpAddr,
    rest: [u8; 4],
    data: &[u8],
) -> Vec<u8> {
    let id = u16::from_be_bytes([rest[0], rest[1]]);
    let seq = u16::from_be_bytes([rest[2], rest[3]]);
    let eth = PacketBuilder::ethernet2(gateway_mac, asker_mac);
    match (from, to) {
        (IpAddr::V4(from), IpAddr::V4(to)) => build(
            eth.ipv4(from.octets(), to.octets(), 64)
                .icmpv4_echo_reply(id, seq),
            data,
        ),
        (IpAddr::V6(from), IpAddr::V6(to)) => build(
            eth.ipv6(from.octets(), to.octets(), 64)
                .icmpv6_echo_reply(id, seq),
            data,
        ),
        _ => Vec::new(),
    }
}

/// An ICMP error from the gateway about `offending` (the IP packet that
/// caused it), addressed to its source.
pub fn icmp_error(
    gateway_mac: Mac,
    asker_mac: Mac,
    error: IcmpError,
    offending: &[u8],
    src: IpAddr,
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(gateway_mac, asker_mac);
    match src {
        IpAddr::V4(to) => {
            let kind = match error {
                IcmpError::NoRoute => {
                    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Network)
                }
                IcmpError::TimeExceeded => {
                    Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit)
                }
                IcmpError::TooBig(mtu) => Icmpv4Type::DestinationUnreachable(
                    icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
                ),
                IcmpError::PortUnreachable => {
                    Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
                }
            };
            let quote = &offending[..offending.len().min(ICMPV4_QUOTE)];
            build(
                eth.ipv4(GATEWAY_V4.octets(), to.octets(), 64).icmpv4(kind),
                quote,
            )
        }
        IpAddr::V6(to) => {
            let kind = match error {
                IcmpError::NoRoute => {
                    Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::NoRoute)
                }
                IcmpError::TimeExceeded => {
                    Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
                }
                IcmpError::TooBig(mtu) => Icmpv6Type::PacketTooBig {
                    mtu: u32::from(mtu),
                },
                IcmpError::PortUnreachable => {
                    Icmpv6Type::DestinationUnreachable(icmpv6::DestUnreachableCode::Port)
                }
            };
            let quote = &offending[..offending.len().min(ICMPV6_QUOTE)];
            build(
                eth.ipv6(GATEWAY_V6.octets(), to.octets(), 64).icmpv6(kind),
                quote,
            )
        }
    }
}

/// Writes a builder's packet; our headers are always valid and small, so the
/// only failure (a payload too large for its length field) yields an empty
/// frame, which the caller treats as nothing to send.
fn build<B: BuildTo>(builder: B, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETH_LEN + 40 + 8 + payload.len());
    if builder.build_to(&mut out, payload) {
        out
    } else {
        Vec::new()
    }
}

/// The `write` of etherparse's final builder steps, under one name.
trait BuildTo {
    fn build_to(self, out: &mut Vec<u8>, payload: &[u8]) -> bool;
}

impl BuildTo for etherparse::PacketBuilderStep<etherparse::Icmpv4Header> {
    fn build_to(self, out: &mut Vec<u8>, payload: &[u8]) -> bool {
        self.write(out, payload).is_ok()
    }
}

impl BuildTo for etherparse::PacketBuilderStep<etherparse::Icmpv6Header> {
    fn build_to(self, out: &mut Vec<u8>, payload: &[u8]) -> bool {
        self.write(out, payload).is_ok()
    }
}

//! Flow keys and their direction-independent (canonical) packing into slot words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The 5-tuple of a packet, as seen on the wire.
///
/// For ICMP echo, the caller puts the echo identifier in both ports (so a
/// request and its reply are each other's [`FlowKey::reversed`]) and may fold
/// the type into them as it sees fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// Source port (or ICMP echo identifier).
    pub src_port: u16,
    /// Destination port (or ICMP echo identifier).
    pub dst_port: u16,
}

impl FlowKey {
    /// The key of a packet travelling the other way.
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }
}

/// Bits of the key word that hold the key (ports, protocol, family); the
/// rest of that word holds flow metadata.
pub(super) const KEY_MASK: u64 = (1 << 48) - 1;
/// Family bits of the key word; zero means the slot is empty.
pub(super) const FAMILY_MASK: u64 = 0xff << 40;

const FAMILY_V4: u64 = 4;
const FAMILY_V6: u64 = 6;

/// A key with its two endpoints ordered, so a packet and its reply pack to
/// the same words. Endpoint "A" is the smaller `(address, port)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Canon {
    /// `[A high, A low, B high, B low]` address halves.
    pub addrs: [u64; 4],
    /// `port A | port B << 16 | protocol << 32 | family << 40`.
    pub key: u64,
    /// Whether the packet's source is endpoint B.
    pub src_is_b: bool,
}

impl Canon {
    /// Packs `key`. A mixed-family key (never on the wire) is packed as IPv6
    /// with the IPv4 side mapped.
    pub fn new(key: &FlowKey) -> Canon {
        let (family, src, dst) = match (key.src, key.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                FAMILY_V4,
                u128::from(u32::from(s)),
                u128::from(u32::from(d)),
            ),
            (s, d) => (FAMILY_V6, v6_bits(s), v6_bits(d)),
        };
        let src_is_b = (src, key.src_port) > (dst, key.dst_port);
        let ((a, port_a), (b, port_b)) = if src_is_b {
            ((dst, key.dst_port), (src, key.src_port))
        } else {
            ((src, key.src_port), (dst, key.dst_port))
        };
        Canon {
            addrs: [(a >> 64) as u64, a as u64, (b >> 64) as u64, b as u64],
            key: u64::from(port_a)
                | u64::from(port_b) << 16
                | u64::from(key.protocol) << 32
                | family << 40,
            src_is_b,
        }
    }

    /// The IP protocol number.
    pub fn protocol(&self) -> u8 {
        protocol_of(self.key)
    }
}

/// The protocol stored in a key word.
pub(super) fn protocol_of(key_word: u64) -> u8 {
    (key_word >> 32) as u8
}

/// Rebuilds the key of the packet sent by endpoint B (`from_b`) or A.
pub(super) fn unpack(addrs: &[u64; 4], key_word: u64, from_b: bool) -> FlowKey {
    let a = u128::from(addrs[0]) << 64 | u128::from(addrs[1]);
    let b = u128::from(addrs[2]) << 64 | u128::from(addrs[3]);
    let v4 = (key_word & FAMILY_MASK) >> 40 == FAMILY_V4;
    let addr = |bits: u128| -> IpAddr {
        if v4 {
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    };
    let port_a = key_word as u16;
    let port_b = (key_word >> 16) as u16;
    let (src, src_port, dst, dst_port) = if from_b {
        (b, port_b, a, port_a)
    } else {
        (a, port_a, b, port_b)
    };
    FlowKey {
        src: addr(src),
        dst: addr(dst),
        protocol: protocol_of(key_word),
        src_port,
        dst_port,
    }
}

fn v6_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

//! Parsing a frame into the few facts the forwarding decision needs.
//!
//! Headers are validated with etherparse; what comes out is a plain [`Parsed`]
//! value with offsets into the frame, so the caller can rewrite the bytes in
//! place afterwards. Every way a frame can be malformed maps to a
//! [`DropReason`]: nothing here panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpPacketSlice, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice,
    Ipv6HeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

use super::drop::DropReason;
use crate::table::endpoints::Mac;

pub use crate::wire::ethernet::{ETH_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// IP protocol numbers tweed looks at.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = crate::wire::transport::PROTO_TCP;
    /// UDP.
    pub const UDP: u8 = crate::wire::transport::PROTO_UDP;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = crate::wire::transport::PROTO_SCTP;
}

/// The facts of a frame, with offsets relative to the start of its Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Destination MAC.
    pub dst_mac: Mac,
    /// Source MAC.
    pub src_mac: Mac,
    /// What the frame carries.
    pub l3: L3,
}

/// What an Ethernet frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    /// An Ethernet/IPv4 ARP packet.
    Arp(Arp),
    /// An IP packet.
    Ip(Ip),
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 for a request, 2 for a reply.
    pub operation: u16,
    /// The sender's MAC.
    pub sender_mac: Mac,
    /// The sender's IP.
    pub sender_ip: Ipv4Addr,
    /// The IP being asked for.
    pub target_ip: Ipv4Addr,
}

/// An IPv4 or IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the transport header.
    pub l4: usize,
    /// Length of the IP packet as its header says (never beyond the frame).
    pub len: usize,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DF flag; always true for IPv6 (routers never fragment it).
    pub dont_fragment: bool,
    /// The transport header's facts.
    pub transport: Transport,
    /// Where this packet is a fragment of a larger datagram; `None` if whole.
    pub fragment: Option<Fragmentation>,
}

/// A fragment's place in its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragmentation {
    /// The datagram's identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// The fragment's offset in the datagram, in 8-byte units.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl Fragmentation {
    /// Whether this is the first fragment, the one with the transport header.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// The transport header's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP or UDP (or SCTP): ports, and TCP's flag byte.
    Ports {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
        /// The TCP flag byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); `None` for UDP/SCTP.
        tcp_flags: Option<u8>,
    },
    /// ICMP or ICMPv6.
    Icmp {
        /// The message type.
        kind: u8,
        /// The message code.
        code: u8,
        /// Bytes 4..8 of the message (identifier and sequence for echo).
        rest: [u8; 4],
    },
    /// Any other protocol: no ports.
    Other,
    /// A later fragment (not the first): its datagram's transport header
    /// was in the first fragment.
    Later,
}

impl Ip {
    /// Whether this is IPv6.
    pub fn is_v6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// The source and destination ports used for flows and policy: transport
    /// ports, or for ICMP echo the identifier on both sides (so a reply maps to
    /// its request's flow), else zero.
    pub fn flow_ports(&self) -> (u16, u16) {
        match self.transport {
            Transport::Ports { src, dst, .. } => (src, dst),
            Transport::Icmp { kind, rest, .. } if is_echo(self.is_v6(), kind) => {
                let id = u16::from_be_bytes([rest[0], rest[1]]);
                (id, id)
            }
            _ => (0, 0),
        }
    }

    /// TCP's flag byte, if TCP.
    pub fn tcp_flags(&self) -> Option<u8> {
        match self.transport {
            Transport::Ports { tcp_flags, .. } => tcp_flags,
            _ => None,
        }
    }
}

/// Whether an ICMP type is an echo request or reply.
pub fn is_echo(v6: bool, kind: u8) -> bool {
    if v6 {
        kind == 128 || kind == 129
    } else {
        kind == 8 || kind == 0
    }
}

/// Whether an ICMP type is an error message (which must never trigger another).
pub fn is_icmp_error(v6: bool, kind: u8) -> bool {
    if v6 {
        kind < 128
    } else {
        matches!(kind, 3 | 4 | 5 | 11 | 12)
    }
}

/// Parses an Ethernet frame.
pub fn parse_ethernet(frame: &[u8]) -> Result<Parsed, DropReason> {
    let header: &[u8; ETH_LEN] = frame
        .get(..ETH_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::Truncated)?;
    let dst_mac = mac_at(header, 0);
    let src_mac = mac_at(header, 6);
    let ethertype = u16::from_be_bytes([header[12], header[13]]);
    let rest = &frame[ETH_LEN..];
    let l3 = match ethertype {
        ETHERTYPE_IPV4 => L3::Ip(parse_ipv4(rest, ETH_LEN)?),
        ETHERTYPE_IPV6 => L3::Ip(parse_ipv6(rest, ETH_LEN)?),
        ETHERTYPE_ARP => L3::Arp(parse_arp(rest)?),
        _ => return Err(DropReason::UnknownEthertype),
    };
    Ok(Parsed {
        dst_mac,
        src_mac,
        l3,
    })
}

/// Parses a bare IP packet (flannel's UDP encapsulation), offsets relative to
/// its first byte.
pub fn parse_ip(packet: &[u8]) -> Result<Ip, DropReason> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(packet, 0),
        Some(6) => parse_ipv6(packet, 0),
        Some(_) => Err(DropReason::MalformedIp),
        None => Err(DropReason::Truncated),
    }
}

fn mac_at(header: &[u8; ETH_LEN], at: usize) -> Mac {
    let mut mac = [0; 6];
    mac.copy_from_slice(&header[at..at + 6]);
    mac
}

fn parse_arp(bytes: &[u8]) -> Result<Arp, DropReason> {
    let arp = ArpPacketSlice::from_slice(bytes).map_err(|_| DropReason::MalformedArp)?;
    if arp.hw_addr_type().0 != 1 || arp.proto_addr_type().0 != ETHERTYPE_IPV4 {
        return Err(DropReason::MalformedArp);
    }
    let (Ok(sender_mac), Ok(sender_ip), Ok(target_ip)) = (
        <[u8; 6]>::try_from(arp.sender_hw_addr()),
        <[u8; 4]>::try_from(arp.sender_protocol_addr()),
        <[u8; 4]>::try_from(arp.target_protocol_addr()),
    ) else {
        return Err(DropReason::MalformedArp);
    };
    Ok(Arp {
        operation: arp.operation().0,
        sender_mac,
        sender_ip: Ipv4Addr::from(sender_ip),
        target_ip: Ipv4Addr::from(target_ip),
    })
}

fn parse_ipv4(bytes: &[u8], l3: usize) -> Result<Ip, DropReason> {
    let header = Ipv4HeaderSlice::from_slice(bytes).map_err(|e| match e {
        etherparse::err::ipv4::HeaderSliceError::Len(_) => DropReason::Truncated,
        etherparse::err::ipv4::HeaderSliceError::Content(_) => DropReason::MalformedIp,
    })?;
    let header_len = header.slice().len();
    let len = usize::from(header.total_len());
    if len < header_len || len > bytes.len() {
        return Err(DropReason::MalformedIp);
    }
    let offset = header.fragments_offset().value();
    let fragment = (offset != 0 || header.more_fragments()).then(|| Fragmentation {
        id: u32::from(header.identification()),
        offset,
        more: header.more_fragments(),
    });
    let protocol = header.protocol().0;
    let transport = if offset != 0 {
        Transport::Later
    } else {
        parse_transport(protocol, false, &bytes[header_len..len], fragment.is_some())?
    };
    Ok(Ip {
        l3,
        l4: l3 + header_len,
        len,
        src: IpAddr::V4(header.source_addr()),
        dst: IpAddr::V4(header.destination_addr()),
        protocol,
        ttl: header.ttl(),
        dont_fragment: header.dont_fragment(),
        transport,
        fragment,
    })
}

fn parse_ipv6(bytes: &[u8], l3: usize) -> Result<Ip, DropReason> {
    let header = Ipv6HeaderSlice::from_slice(bytes).map_err(|e| match e {
        etherparse::err::ipv6::HeaderSliceError::Len(_) => DropReason::Truncated,
        etherparse::err::ipv6::HeaderSliceError::Content(_) => DropReason::MalformedIp,
    })?;
    const FIXED: usize = 40;
    let len = FIXED + usize::from(header.payload_length());
    if len > bytes.len() {
        return Err(DropReason::MalformedIp);
    }
    let payload = &bytes[FIXED..len];
    let next = header.next_header();
    let (protocol, l4_payload, fragment) = if is_extension_header(next) {
        let (exts, protocol, rest) =
            Ipv6ExtensionsSlice::from_slice(next, payload).map_err(|_| DropReason::MalformedIp)?;
        let fragment = exts
            .is_fragmenting_payload()
            .then(|| {
                exts.into_iter().find_map(|ext| match ext {
                    Ipv6ExtensionSlice::Fragment(f) if f.is_fragmenting_payload() => {
                        Some(Fragmentation {
                            id: f.identification(),
                            offset: f.fragment_offset().value(),
                            more: f.more_fragments(),
                        })
                    }
                    _ => None,
                })
            })
            .flatten();
        (protocol.0, rest, fragment)
    } else {
        (next.0, payload, None)
    };
    let transport = match fragment {
        Some(f) if !f.is_first() => Transport::Later,
        _ => parse_transport(protocol, true, l4_payload, fragment.is_some())?,
    };
    Ok(Ip {
        l3,
        l4: l3 + (len - l4_payload.len()),
        len,
        src: IpAddr::V6(Ipv6Addr::from(header.source())),
        dst: IpAddr::V6(Ipv6Addr::from(header.destination())),
        protocol,
        ttl: header.hop_limit(),
        dont_fragment: true,
        transport,
        fragment,
    })
}

fn is_extension_header(next: IpNumber) -> bool {
    matches!(next.0, 0 | 43 | 44 | 51 | 60 | 135 | 139 | 140)
}

/// The transport header's facts; `partial`: the packet is a datagram's first
/// fragment, so its length fields cover more than `l4` holds.
fn parse_transport(
    protocol: u8,
    v6: bool,
    l4: &[u8],
    partial: bool,
) -> Result<Transport, DropReason> {
    match protocol {
        proto::TCP => {
            let tcp = TcpHeaderSlice::from_slice(l4).map_err(|_| DropReason::MalformedL4)?;
            let flags = tcp
                .slice()
                .get(13)
                .copied()
                .ok_or(DropReason::MalformedL4)?;
            Ok(Transport::Ports {
                src: tcp.source_port(),
                dst: tcp.destination_port(),
                tcp_flags: Some(flags),
            })
        }
        proto::UDP => {
            let udp = UdpHeaderSlice::from_slice(l4).map_err(|_| DropReason::MalformedL4)?;
            let length = usize::from(udp.length());
            // Zero is legal only in IPv6 jumbograms, which tweed does not carry.
            if length < 8 || (length > l4.len() && !partial) {
                return Err(DropReason::MalformedL4);
            }
            Ok(Transport::Ports {
                src: udp.source_port(),
                dst: udp.destination_port(),
                tcp_flags: None,
            })
        }
        proto::SCTP => {
            let ports = l4.get(..4).ok_or(DropReason::MalformedL4)?;
            Ok(Transport::Ports {
                src: u16::from_be_bytes([ports[0], ports[1]]),
                dst: u16::from_be_bytes([ports[2], ports[3]]),
                tcp_flags: None,
            })
        }
        proto::ICMP | proto::ICMPV6 if (protocol == proto::ICMPV6) == v6 => {
            let header = l4.get(..8).ok_or(DropReason::MalformedL4)?;
            Ok(Transport::Icmp {
                kind: header[0],
                code: header[1],
                rest: [header[4], header[5], header[6], header[7]],
            })
        }
        _ => Ok(Transport::Other),
    }
}

/// The flow of the packet quoted in an ICMP error (its IP header and at least
/// the first 8 bytes of its transport header), leniently: the quote is
/// truncated by design, so its length fields are not checked against it.
pub fn parse_quoted(quoted: &[u8]) -> Option<crate::table::conntrack::FlowKey> {
    let version = quoted.first()? >> 4;
    let (src, dst, protocol, l4) = match version {
        4 => {
            let header_len = usize::from(quoted.first()? & 0x0f) * 4;
            let header = quoted.get(..header_len.max(20))?;
            let src: [u8; 4] = header.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = header.get(16..20)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                header[9],
                quoted.get(header_len..)?,
            )
        }
        6 => {
            let header = quoted.get(..40)?;
            let src: [u8; 16] = header.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = header.get(24..40)?.try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                header[6],
                quoted.get(40..)?,
            )
        }
        _ => return None,
    };
    let (src_port, dst_port) = match protocol {
        proto::TCP | proto::UDP | proto::SCTP => {
            let ports = l4.get(..4)?;
            (
                u16::from_be_bytes([ports[0], ports[1]]),
                u16::from_be_bytes([ports[2], ports[3]]),
            )
        }
        proto::ICMP | proto::ICMPV6 => {
            let header = l4.get(..6)?;
            if is_echo(protocol == proto::ICMPV6, header[0]) {
                let id = u16::from_be_bytes([header[4], header[5]]);
                (id, id)
            } else {
                (0, 0)
            }
        }
        _ => (0, 0),
    };
    Some(crate::table::conntrack::FlowKey {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
    })
}

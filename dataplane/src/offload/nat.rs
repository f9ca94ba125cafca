//! Address and port translation of an IP packet in place: a Service request's
//! destination rewritten to its backend, a reply's source back to the Service.
//! The IPv4 header checksum and the TCP or UDP checksum are updated from the
//! changed words (RFC 1624), never summed again, so the cost does not grow
//! with the payload.
//!
//! A checksum left partial (`partial`: the field holds the pseudo-header's
//! folded sum, for the kernel or the receiver to complete) changes with the
//! addresses only: the port is part of the data summed later.
//!
//! SCTP's CRC32c covers no addresses and cannot be updated from a changed
//! word: the packet's checksum is checked, then computed again after the
//! port changes (a packet that arrived corrupt is refused, not repaired).
//! Only a whole SCTP packet is translated, so the packet handed over must
//! end where its IP payload ends.

use std::net::IpAddr;

use super::checksum::{change, fold, update};
use super::crc32c::{self, SCTP_CSUM_OFFSET, SCTP_LEN};
use crate::wire::transport::{
    PROTO_SCTP, PROTO_TCP, PROTO_UDP, TCP_CSUM_OFFSET, TCP_LEN, UDP_CSUM_OFFSET, UDP_LEN,
};

/// Which end of the packet is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The source address and port (a reply leaving as the Service).
    Source,
    /// The destination address and port (a request going to a backend).
    Destination,
}

/// One translation: which end becomes which address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The end rewritten.
    pub side: Side,
    /// Its new address (of the packet's family).
    pub ip: IpAddr,
    /// Its new port.
    pub port: u16,
}

/// Why a packet could not be translated (it is left unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NatError {
    /// The packet ends before the headers the translation rewrites.
    #[error("packet of {len} bytes is shorter than its headers ({need} bytes)")]
    Truncated {
        /// The packet's length.
        len: usize,
        /// The length its headers need.
        need: usize,
    },
    /// Not IPv4 or IPv6.
    #[error("IP version {0} is neither 4 nor 6")]
    NotIp(u8),
    /// The new address is of the other family.
    #[error("an IPv{packet} packet cannot take address {new}")]
    Family {
        /// The packet's IP version.
        packet: u8,
        /// The address asked for.
        new: IpAddr,
    },
    /// Not TCP, UDP or SCTP right after the IP header (another protocol, or
    /// IPv6 extension headers).
    #[error("protocol {0} after the IP header is not TCP, UDP or SCTP")]
    Protocol(u8),
    /// An SCTP packet whose CRC32c is wrong: translating it would hide that.
    #[error("SCTP checksum {carried:#010x} is wrong (the packet sums to {computed:#010x})")]
    SctpChecksum {
        /// What the packet carries.
        carried: u32,
        /// What its bytes sum to.
        computed: u32,
    },
    /// An IPv4 fragment after the first: it carries no ports.
    #[error("an IPv4 fragment at offset {0} carries no ports to translate")]
    LaterFragment(u16),
}

/// Translates `packet` (starting at its IP header) as `to` says; `partial`
/// tells whether its TCP or UDP checksum is left partial.
pub fn translate(packet: &mut [u8], to: Translation, partial: bool) -> Result<(), NatError> {
    let at = locate(packet, to)?;
    // SCTP's CRC32c is checked before anything changes, so a corrupt
    // packet is left as it came.
    if at.sctp && !partial {
        let sctp = &packet[at.l4..];
        let computed = crc32c::sctp_checksum(sctp).unwrap_or_default();
        let carried = crc32c::sctp_carried(sctp).unwrap_or_default();
        if carried != computed {
            return Err(NatError::SctpChecksum { carried, computed });
        }
    }
    let mut new_bytes = [0; 16];
    match to.ip {
        IpAddr::V4(v4) => new_bytes[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => new_bytes.copy_from_slice(&v6.octets()),
    }
    let new_ip = &new_bytes[..at.ip_len];
    let old_ip = &packet[at.ip..at.ip + at.ip_len];
    let address_change = change(old_ip, new_ip);
    let port_change = change(&packet[at.port..at.port + 2], &to.port.to_be_bytes());

    if let Some(header_csum) = at.header_csum {
        let old = u16::from_be_bytes([packet[header_csum], packet[header_csum + 1]]);
        let new = update(old, address_change);
        packet[header_csum..header_csum + 2].copy_from_slice(&new.to_be_bytes());
    }
    let old = u16::from_be_bytes([packet[at.l4_csum], packet[at.l4_csum + 1]]);
    let new = if at.sctp {
        // Computed over the rewritten packet below.
        None
    } else if partial {
        Some(fold(u32::from(old) + address_change))
    } else if at.checksum_optional && old == 0 {
        // IPv4 UDP without a checksum stays without one.
        None
    } else {
        let sum = update(old, address_change + port_change);
        // UDP sends a computed zero as all ones (RFC 768).
        Some(if at.udp { nonzero(sum) } else { sum })
    };
    if let Some(new) = new {
        packet[at.l4_csum..at.l4_csum + 2].copy_from_slice(&new.to_be_bytes());
    }
    packet[at.ip..at.ip + at.ip_len].copy_from_slice(new_ip);
    packet[at.port..at.port + 2].copy_from_slice(&to.port.to_be_bytes());
    if at.sctp && !partial {
        crc32c::sctp_fill(&mut packet[at.l4..]);
    }
    Ok(())
}

/// Where a translation writes, checked to lie inside the packet.
struct Places {
    ip: usize,
    ip_len: usize,
    port: usize,
    header_csum: Option<usize>,
    l4_csum: usize,
    /// UDP: a computed zero is sent as all ones.
    udp: bool,
    /// UDP over IPv4: a zero checksum means none.
    checksum_optional: bool,
    /// Where the transport header starts.
    l4: usize,
    /// SCTP: a CRC32c over the packet instead of a sum.
    sctp: bool,
}

fn locate(packet: &[u8], to: Translation) -> Result<Places, NatError> {
    let len = packet.len();
    let need = |need: usize| {
        if len < need {
            Err(NatError::Truncated { len, need })
        } else {
            Ok(())
        }
    };
    need(1)?;
    let version = packet[0] >> 4;
    let source = to.side == Side::Source;
    let (ip, ip_len, l4, protocol, header_csum) = match (version, to.ip) {
        (4, IpAddr::V4(_)) => {
            need(20)?;
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            need(ihl.max(20))?;
            let offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
            if offset != 0 {
                return Err(NatError::LaterFragment(offset * 8));
            }
            (
                if source { 12 } else { 16 },
                4,
                ihl.max(20),
                packet[9],
                Some(10),
            )
        }
        (6, IpAddr::V6(_)) => {
            need(40)?;
            (if source { 8 } else { 24 }, 16, 40, packet[6], None)
        }
        (4 | 6, new) => {
            return Err(NatError::Family {
                packet: version,
                new,
            });
        }
        (other, _) => return Err(NatError::NotIp(other)),
    };
    let (csum, header_len) = match protocol {
        PROTO_TCP => (TCP_CSUM_OFFSET, TCP_LEN),
        PROTO_UDP => (UDP_CSUM_OFFSET, UDP_LEN),
        PROTO_SCTP => (SCTP_CSUM_OFFSET, SCTP_LEN),
        other => return Err(NatError::Protocol(other)),
    };
    need(l4 + header_len)?;
    Ok(Places {
        ip,
        ip_len,
        port: l4 + if source { 0 } else { 2 },
        header_csum,
        l4_csum: l4 + csum,
        udp: protocol == PROTO_UDP,
        checksum_optional: protocol == PROTO_UDP && version == 4,
        l4,
        sctp: protocol == PROTO_SCTP,
    })
}

fn nonzero(sum: u16) -> u16 {
    if sum == 0 { 0xffff } else { sum }
}

#[cfg(test)]
#[path = "nat_tests.rs"]
mod tests;

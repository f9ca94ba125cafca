//! What the forwarding stages share about the frame in hand: where it came
//! from ([`Origin`]), where its Ethernet header starts ([`E`]), and the two
//! edits every path makes, a forwarded packet's header rewrite and an
//! answer in place of the frame. Below `forward`, `gateway`, `encap`,
//! `service` and `underlay`, so none of them imports another for these.

use super::Action;
use super::drop::DropReason;
use super::parse::Ip;
use crate::frame::Frame;
use crate::offload::checksum;
use crate::table::endpoints::{Endpoint, Mac};
use crate::wire::virtio_net;

/// Offset of the Ethernet header in a normalized frame (after the virtio-net header).
pub(super) const E: usize = virtio_net::LEN;

/// Who sent the packet being forwarded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'t> {
    /// A local pod (already checked against spoofing).
    Pod(&'t Endpoint),
    /// The host port.
    Host,
    /// A peer node, through the overlay (already decapsulated and checked).
    Peer,
}

/// Trims the frame to its IP packet, rewrites the Ethernet addresses and decrements TTL / hop limit (patching
/// the IPv4 header checksum incrementally, RFC 1624).
pub(super) fn rewrite(frame: &mut Frame, dst_mac: Mac, src_mac: Mac, ip: &Ip) {
    // Link-layer padding (or anything else after the IP packet) is not forwarded.
    frame.truncate(E + ip.l3 + ip.len);
    let bytes = frame.data_mut();
    if let Some(eth) = bytes.get_mut(E..E + 12) {
        eth[..6].copy_from_slice(&dst_mac);
        eth[6..].copy_from_slice(&src_mac);
    }
    let Some(header) = bytes.get_mut(E + ip.l3..E + ip.l4) else {
        return;
    };
    if ip.is_v6() {
        if let Some(hop_limit) = header.get_mut(7) {
            *hop_limit = hop_limit.saturating_sub(1);
        }
    } else {
        // The header was validated by the parser; a failure leaves it as it was.
        let _ = checksum::ipv4_decrement_ttl(header);
    }
}

/// Replaces the frame with an answer behind an empty virtio-net header. An
/// empty answer (the builders' "cannot happen") drops the frame for `reason`.
pub(super) fn put_reply(frame: &mut Frame, answer: &[u8], reason: DropReason) -> Action {
    if answer.is_empty() {
        return Action::Drop(reason);
    }
    let mut bytes = Vec::with_capacity(E + answer.len());
    bytes.resize(E, 0);
    bytes.extend_from_slice(answer);
    frame.replace(&bytes);
    Action::Reply
}

//! Packets from peer nodes: decapsulation and the checks that guard it.
//!
//! An encapsulated packet is accepted only from a known peer's underlay
//! address and a source port its dataplane sends from, in the backend that
//! peer speaks, with our VNI and VTEP MAC
//! (VXLAN), and with an inner source that routes back to that same peer
//! (reverse-path check: a peer may only speak for its own pod subnets).
//! It is then normalized into a tap frame and forwarded, to local pods and
//! to the node's own overlay address ([`NextHop::Node`]) only: a peer's
//! packet for anything else the host routes (the default route) is dropped,
//! so no peer can use this node as a relay.
//!
//! A VXLAN header with [`vxlan::FLAG_PARTIAL_CSUM`] (only a tweed peer told
//! that this node accepts it sets it) carries a TCP or UDP packet whose
//! checksum was left partial: the frame reaches the tap with `NEEDS_CSUM`
//! at that checksum, as a NIC with checksum offload would hand it over, and
//! the pod's kernel trusts it. The flag on anything else is a `bad_vxlan`
//! drop.

use std::net::{IpAddr, SocketAddr};

use super::drop::DropReason;
use super::encap::partial_csum_place;
use super::frame_edit::{E, Origin};
use super::parse::{self, ETH_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, L3};
use super::trace::{Stage, Tracer};
use super::{Action, Counters, Pipeline};
use crate::frame::Frame;
use crate::table::nexthop::NextHop;
use crate::table::peers::{Backend, Peer};
use crate::wire::virtio_net::{F_NEEDS_CSUM, VirtioNetHdr};
use crate::wire::vxlan::{self, Vxlan};

impl Pipeline<'_> {
    /// A UDP payload from the underlay socket of `backend`, sent from `src`.
    pub(super) fn underlay_frame<T: Tracer>(
        &self,
        backend: Backend,
        src: SocketAddr,
        frame: &mut Frame,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> Action {
        let node = &self.tables.node;
        let Some((peer_id, peer)) = self.tables.peers.by_underlay(src.ip()) else {
            tracer.stage(|| Stage::Decap {
                peer: None,
                passed: false,
            });
            return Action::Drop(DropReason::UnknownPeer);
        };
        if peer.backend != backend {
            return Action::Drop(DropReason::WrongBackend);
        }
        if !sent_by_dataplane(peer, backend, src.port(), node.udp_port) {
            tracer.stage(|| Stage::Decap {
                peer: Some(peer_id),
                passed: false,
            });
            return Action::Drop(DropReason::WrongSourcePort);
        }
        let mut vnet = VirtioNetHdr::default();
        let (ip, src_mac) = match backend {
            Backend::Vxlan => {
                let (vni_valid, vni, partial) = match Vxlan::new_checked(frame.data()) {
                    Ok(header) => (header.vni_valid(), header.vni(), header.partial_csum()),
                    Err(_) => return Action::Drop(DropReason::Truncated),
                };
                if !vni_valid {
                    return Action::Drop(DropReason::BadVxlan);
                }
                if vni != node.vni {
                    return Action::Drop(DropReason::WrongVni);
                }
                let parsed = match parse::parse_ethernet(&frame.data()[vxlan::HEADER_LEN..]) {
                    Ok(parsed) => parsed,
                    Err(reason) => return Action::Drop(reason),
                };
                if parsed.dst_mac != node.vtep_mac {
                    return Action::Drop(DropReason::WrongInnerMac);
                }
                let L3::Ip(ip) = parsed.l3 else {
                    return Action::Drop(DropReason::ArpIgnored);
                };
                // Held frames are decided again as they came: before any rewrite.
                if let Err(action) = self.fragment_ports::<T>(&ip) {
                    return action;
                }
                if partial {
                    // The peer left the L4 checksum partial: the pod's
                    // kernel gets it as a NIC would hand it over.
                    let Some((start, offset)) = partial_csum_place(&ip) else {
                        return Action::Drop(DropReason::BadVxlan);
                    };
                    vnet = VirtioNetHdr {
                        flags: F_NEEDS_CSUM,
                        csum_start: start as u16,
                        csum_offset: offset as u16,
                        ..VirtioNetHdr::default()
                    };
                }
                // [VXLAN 8][Ethernet] → [virtio-net 10][Ethernet]
                frame.pull_front(vxlan::HEADER_LEN);
                let Some(header) = frame.push_front(E) else {
                    return Action::Drop(DropReason::Truncated);
                };
                let Some(header) = header.first_chunk_mut::<E>() else {
                    return Action::Drop(DropReason::Truncated);
                };
                vnet.write(header);
                (ip, parsed.src_mac)
            }
            Backend::Udp => {
                let mut ip = match parse::parse_ip(frame.data()) {
                    Ok(ip) => ip,
                    Err(reason) => return Action::Drop(reason),
                };
                if let Err(action) = self.fragment_ports::<T>(&ip) {
                    return action;
                }
                // [IP] → [virtio-net 10][Ethernet 14][IP]
                let ethertype = if ip.is_v6() {
                    ETHERTYPE_IPV6
                } else {
                    ETHERTYPE_IPV4
                };
                let Some(header) = frame.push_front(E + ETH_LEN) else {
                    return Action::Drop(DropReason::Truncated);
                };
                header.fill(0);
                header[E + 12..E + 14].copy_from_slice(&ethertype.to_be_bytes());
                ip.l3 += ETH_LEN;
                ip.l4 += ETH_LEN;
                (ip, peer.vtep_mac)
            }
        };
        frame.truncate(E + ip.l3 + ip.len);
        let passed =
            self.tables.route(ip.src) == Some(NextHop::Remote(peer_id)) && !is_special(ip.src);
        tracer.stage(|| Stage::Decap {
            peer: Some(peer_id),
            passed,
        });
        if !passed {
            return Action::Drop(DropReason::DecapSpoofed);
        }
        self.forward(Origin::Peer, frame, vnet, src_mac, ip, counters, tracer)
    }
}

/// Whether the outer source port is one the peer's dataplane sends from:
/// the UDP backend sends from its own port (tweed and flannel alike); a
/// tweed node publishes the ports it sends VXLAN from. A process on the
/// peer node without root cannot bind those ports while its dataplane holds
/// them, and a pod's datagram the peer masquerades keeps the pod's own port
/// (which the sending dataplane refuses to let out anyway: `tunnel_port`).
fn sent_by_dataplane(peer: &Peer, backend: Backend, port: u16, udp_port: u16) -> bool {
    match backend {
        Backend::Udp => port == udp_port,
        Backend::Vxlan => peer.source_ports.is_none_or(|ports| ports.contains(port)),
    }
}

fn is_special(ip: IpAddr) -> bool {
    ip.is_unspecified() || ip.is_multicast() || ip.is_loopback()
}

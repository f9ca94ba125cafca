//! Encapsulation towards a peer node: VXLAN (RFC 7348) or flannel's UDP
//! format (the bare IP packet as the UDP payload).
//!
//! The packet path encapsulates in place: a tap frame is
//! `[virtio-net 10][Ethernet 14][IP …]`, so the VXLAN header fits in the last
//! 8 bytes of the virtio-net header and UDP encapsulation just skips the first
//! 24. [`encapsulate`] does the same for the parts of a split frame.

use std::net::{IpAddr, SocketAddr};

use super::drop::DropReason;
use super::frame_edit::{E, Origin, rewrite};
use super::parse::{ETH_LEN, Ip};
use super::reply::IcmpError;
use super::{Action, Counters, Encap, Pipeline, Split};
use crate::frame::Frame;
use crate::offload::checksum::{self, ChecksumError};
use crate::table::endpoints::Mac;
use crate::table::nexthop::PeerId;
use crate::table::peers::Backend;
use crate::wire::virtio_net::VirtioNetHdr;
use crate::wire::{transport, vxlan};

impl Pipeline<'_> {
    /// Encapsulates a routed packet to `peer`, or splits or refuses it when it
    /// is larger than the overlay's MTU.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encap(
        &self,
        from: Origin<'_>,
        frame: &mut Frame,
        vnet: VirtioNetHdr,
        src_mac: Mac,
        ip: &Ip,
        peer_id: PeerId,
        counters: &mut Counters,
    ) -> Action {
        let node = &self.tables.node;
        let Some(peer) = self.tables.peers.get(peer_id) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let port = match peer.backend {
            Backend::Vxlan => node.vxlan_port,
            Backend::Udp => node.udp_port,
        };
        let encap = Encap {
            peer: peer_id,
            dst: SocketAddr::new(peer.underlay_ip, port),
            flow_hash: flow_hash(ip),
        };
        let mtu = node.overlay_mtu;
        // A tweed peer that accepts them gets partial checksums as the pod's
        // kernel left them, flagged in the VXLAN header; everyone else gets
        // them completed.
        let partial = peer.partial_checksums && peer.backend == Backend::Vxlan;
        if ip.len > usize::from(mtu) {
            let split = if vnet.is_gso() {
                Split::Segment(vnet)
            } else if !ip.dont_fragment {
                // Fragments travel whole, their checksum complete.
                if complete_if_partial(frame, vnet).is_err() {
                    return Action::Drop(DropReason::BadVnetHeader);
                }
                Split::Fragment(mtu)
            } else {
                return self.answer_error(
                    from,
                    frame,
                    src_mac,
                    ip,
                    IcmpError::TooBig(mtu),
                    DropReason::TooBig,
                    counters,
                );
            };
            rewrite(frame, peer.vtep_mac, node.vtep_mac, ip);
            return Action::EncapSplit(encap, split);
        }
        rewrite(frame, peer.vtep_mac, node.vtep_mac, ip);
        let leave_partial = partial && vnet.needs_csum() && partial_at_l4(vnet, ip);
        if !leave_partial && complete_if_partial(frame, vnet).is_err() {
            return Action::Drop(DropReason::BadVnetHeader);
        }
        frame.truncate(E + ip.l3 + ip.len);
        match peer.backend {
            Backend::Vxlan => {
                frame.pull_front(E - vxlan::HEADER_LEN);
                if let Some(header) = frame.data_mut().first_chunk_mut::<{ vxlan::HEADER_LEN }>() {
                    vxlan::write_header(header, node.vni, leave_partial);
                }
            }
            Backend::Udp => {
                frame.pull_front(E + ETH_LEN);
            }
        }
        Action::Encap(encap)
    }
}

/// Completes the frame's L4 checksum if its virtio-net header says it is
/// partial.
fn complete_if_partial(frame: &mut Frame, vnet: VirtioNetHdr) -> Result<(), ChecksumError> {
    if vnet.needs_csum() {
        let start = usize::from(vnet.csum_start);
        let offset = usize::from(vnet.csum_offset);
        checksum::complete_partial(&mut frame.data_mut()[E..], start, offset)?;
    }
    Ok(())
}

/// Where a partial checksum of the packet `ip` lies, as `(csum_start,
/// csum_offset)` from the start of the Ethernet frame: in the TCP or UDP
/// header of an unfragmented packet, the only place a receiver looks for
/// it ([`crate::wire::vxlan::FLAG_PARTIAL_CSUM`]). `None` for anything else.
pub(super) fn partial_csum_place(ip: &Ip) -> Option<(usize, usize)> {
    if ip.fragment.is_some() {
        return None;
    }
    Some((ip.l4, transport::csum_offset(ip.protocol)?))
}

/// Whether `vnet`'s partial checksum lies where [`partial_csum_place`] says
/// a receiver will look for it.
fn partial_at_l4(vnet: VirtioNetHdr, ip: &Ip) -> bool {
    partial_csum_place(ip).is_some_and(|(start, offset)| {
        usize::from(vnet.csum_start) == start && usize::from(vnet.csum_offset) == offset
    })
}

/// Appends the UDP payload that carries `eth_frame` (one part of a split
/// frame) to `out`: a VXLAN header and the frame, or the bare IP packet.
pub fn encapsulate(eth_frame: &[u8], backend: Backend, vni: u32, out: &mut Vec<u8>) {
    match backend {
        Backend::Vxlan => {
            let mut header = [0; vxlan::HEADER_LEN];
            vxlan::write_header(&mut header, vni, false);
            out.extend_from_slice(&header);
            out.extend_from_slice(eth_frame);
        }
        Backend::Udp => out.extend_from_slice(eth_frame.get(ETH_LEN..).unwrap_or(&[])),
    }
}

/// A hash of the packet's flow, so that every packet of a flow leaves with the
/// same outer source port and flows spread over the underlay's paths.
pub fn flow_hash(ip: &Ip) -> u32 {
    let (sport, dport) = ip.flow_ports();
    let fold = |addr: IpAddr| -> u64 {
        match addr {
            IpAddr::V4(v4) => u64::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                (bits as u64) ^ ((bits >> 64) as u64)
            }
        }
    };
    let mut h = fold(ip.src).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= fold(ip.dst).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= (u64::from(sport) << 24 | u64::from(dport) << 8 | u64::from(ip.protocol))
        .wrapping_mul(0x1656_67b1_9e37_79f9);
    h ^= h >> 29;
    (h ^ (h >> 32)) as u32
}

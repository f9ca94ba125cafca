//! The output of [`Action::EncapSplit`](super::Action::EncapSplit): the
//! datagrams a frame larger than the overlay's MTU becomes, planned here
//! (pure) and sent by the worker.
//!
//! A TCP or UDP super-frame is cut the way the kernel's TSO or USO would,
//! without copying its payload: each segment's headers (behind the VXLAN
//! header, or without the Ethernet header for flannel's UDP format) are
//! written to the plan, its payload stays in the frame, and the worker hands
//! both to one gathered `sendmsg` with UDP GSO. An IPv4 packet without DF is fragmented;
//! its fragments are written out whole (rare, small).

use thiserror::Error;

use super::Split;
use super::encap::encapsulate;
use super::parse::ETH_LEN;
use crate::offload::fragment::{self, FragmentError};
use crate::offload::gso::{self, GatherPart, GatherPlan, GsoError, SegmentChecksum};
use crate::table::peers::Backend;
use crate::wire::vxlan;

/// Why a frame could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SplitError {
    /// The super-frame could not be segmented.
    #[error("segmenting the super-frame")]
    Segment(#[source] GsoError),
    /// The packet could not be fragmented.
    #[error("fragmenting the packet")]
    Fragment(#[source] FragmentError),
}

/// Plans the datagrams (UDP payloads for `backend`) that `eth_frame`, an
/// Ethernet frame the pipeline rewrote for the peer, is split into. The
/// plan's payload ranges refer to `eth_frame`. With `partial_csum` (a VXLAN
/// peer that accepts it), segments keep partial TCP checksums and their
/// VXLAN headers say so.
pub fn plan(
    eth_frame: &[u8],
    split: Split,
    backend: Backend,
    vni: u32,
    partial_csum: bool,
    plan: &mut GatherPlan,
    scratch: &mut Vec<u8>,
) -> Result<usize, SplitError> {
    match split {
        Split::Segment(hdr) => {
            let mut header = [0; vxlan::HEADER_LEN];
            let (prefix, keep_ethernet, csum): (&[u8], bool, _) = match backend {
                Backend::Vxlan => {
                    vxlan::write_header(&mut header, vni, partial_csum);
                    let csum = if partial_csum {
                        SegmentChecksum::Partial
                    } else {
                        SegmentChecksum::Full
                    };
                    (&header, true, csum)
                }
                Backend::Udp => (&[], false, SegmentChecksum::Full),
            };
            gso::plan(eth_frame, &hdr, prefix, keep_ethernet, csum, plan)
                .map_err(SplitError::Segment)
        }
        Split::Fragment(mtu) => {
            plan.clear();
            let (l2, ip) = eth_frame.split_at(eth_frame.len().min(ETH_LEN));
            let GatherPlan { headers, parts } = plan;
            let mut inner = Vec::new();
            fragment::fragment_ipv4(ip, mtu, scratch, |piece| {
                inner.clear();
                inner.extend_from_slice(l2);
                inner.extend_from_slice(piece);
                let start = headers.len();
                encapsulate(&inner, backend, vni, headers);
                parts.push(GatherPart {
                    header: start..headers.len(),
                    payload: 0..0,
                });
            })
            .map_err(SplitError::Fragment)?;
            Ok(parts.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{PacketBuilder, SlicedPacket};

    use super::*;
    use crate::offload::test_frames::tcp4_super_frame;

    fn datagrams(frame: &[u8], plan: &GatherPlan) -> Vec<Vec<u8>> {
        plan.parts
            .iter()
            .map(|p| {
                let mut d = plan.headers[p.header.clone()].to_vec();
                d.extend_from_slice(&frame[p.payload.clone()]);
                d
            })
            .collect()
    }

    #[test]
    fn a_super_frame_becomes_vxlan_segments_that_parse_and_carry_every_byte() {
        let (frame, hdr) = tcp4_super_frame(10_000, 1398);
        let mut plan_out = GatherPlan::default();
        let n = plan(
            &frame,
            Split::Segment(hdr),
            Backend::Vxlan,
            7,
            false,
            &mut plan_out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(n, 8);
        let mut carried = Vec::new();
        for d in datagrams(&frame, &plan_out) {
            assert_eq!(&d[..8], &[8, 0, 0, 0, 0, 0, 7, 0], "VXLAN header, VNI 7");
            let packet = SlicedPacket::from_ethernet(&d[8..]).unwrap();
            let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
                panic!()
            };
            carried.extend_from_slice(tcp.payload());
        }
        assert_eq!(carried, frame[54..]);
    }

    #[test]
    fn a_peer_that_accepts_partial_checksums_gets_flagged_segments() {
        let (frame, hdr) = tcp4_super_frame(5000, 1398);
        let mut plan_out = GatherPlan::default();
        for partial in [false, true] {
            plan(
                &frame,
                Split::Segment(hdr),
                Backend::Vxlan,
                7,
                partial,
                &mut plan_out,
                &mut Vec::new(),
            )
            .unwrap();
            for d in datagrams(&frame, &plan_out) {
                let header = vxlan::Vxlan::new_checked(&d[..]).unwrap();
                assert_eq!(header.partial_csum(), partial);
                let packet = SlicedPacket::from_ethernet(header.payload()).unwrap();
                let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
                    panic!()
                };
                let Some(etherparse::NetSlice::Ipv4(ip)) = packet.net else {
                    panic!()
                };
                let header = ip.header();
                let full = tcp
                    .to_header()
                    .calc_checksum_ipv4_raw(header.source(), header.destination(), tcp.payload())
                    .unwrap();
                assert_eq!(tcp.checksum() == full, !partial, "partial {partial}");
            }
        }
    }

    #[test]
    fn a_udp_super_frame_becomes_one_vxlan_datagram_per_segment() {
        let payload = vec![3u8; 5000];
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 244, 1, 2], [10, 244, 2, 5], 64)
            .udp(4433, 443)
            .write(&mut frame, &payload)
            .unwrap();
        let hdr = crate::wire::virtio_net::VirtioNetHdr {
            flags: crate::wire::virtio_net::F_NEEDS_CSUM,
            gso_type: crate::wire::virtio_net::GSO_UDP_L4,
            hdr_len: 42,
            gso_size: 1200,
            csum_start: 34,
            csum_offset: 6,
        };
        let mut plan_out = GatherPlan::default();
        let n = plan(
            &frame,
            Split::Segment(hdr),
            Backend::Vxlan,
            7,
            true,
            &mut plan_out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(n, 5);
        let mut carried = 0;
        for d in datagrams(&frame, &plan_out) {
            let header = vxlan::Vxlan::new_checked(&d[..]).unwrap();
            assert!(header.partial_csum());
            let packet = SlicedPacket::from_ethernet(header.payload()).unwrap();
            let Some(etherparse::TransportSlice::Udp(udp)) = packet.transport else {
                panic!()
            };
            assert_eq!(usize::from(udp.length()), 8 + udp.payload().len());
            carried += udp.payload().len();
        }
        assert_eq!(carried, payload.len());
    }

    #[test]
    fn the_udp_format_carries_bare_ip_segments() {
        let (frame, hdr) = tcp4_super_frame(3000, 1398);
        let mut plan_out = GatherPlan::default();
        plan(
            &frame,
            Split::Segment(hdr),
            Backend::Udp,
            1,
            false,
            &mut plan_out,
            &mut Vec::new(),
        )
        .unwrap();
        for d in datagrams(&frame, &plan_out) {
            assert_eq!(d[0] >> 4, 4, "an IPv4 packet first");
            SlicedPacket::from_ip(&d).unwrap();
        }
    }

    #[test]
    fn an_oversized_packet_without_df_becomes_whole_fragments() {
        let payload = vec![5u8; 3000];
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 244, 1, 2], [10, 244, 2, 5], 63)
            .udp(1, 2)
            .write(&mut frame, &payload)
            .unwrap();
        frame[ETH_LEN + 6] &= !0x40; // etherparse sets DF
        let mut plan_out = GatherPlan::default();
        let n = plan(
            &frame,
            Split::Fragment(1400),
            Backend::Vxlan,
            1,
            false,
            &mut plan_out,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(n, 3);
        assert!(plan_out.parts.iter().all(|p| p.payload.is_empty()));
        let bad = plan(
            &frame[..20],
            Split::Segment(tcp4_super_frame(10, 1398).1),
            Backend::Vxlan,
            1,
            false,
            &mut plan_out,
            &mut Vec::new(),
        );
        assert!(matches!(bad, Err(SplitError::Segment(_))));
    }
}

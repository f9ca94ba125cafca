//! What the pipeline decided for a frame.

use std::net::SocketAddr;

use super::drop::DropReason;
use crate::table::nexthop::{PeerId, PortId};
use crate::wire::virtio_net::VirtioNetHdr;

/// The one thing to do with a frame. Unless the action says otherwise, the
/// frame's bytes have been rewritten to be sent as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Write the frame (virtio-net header + Ethernet frame) to this pod's tap.
    Deliver(PortId),
    /// Write the frame (virtio-net header + Ethernet frame) to the host port.
    ToHost,
    /// Send the frame, now the UDP payload (VXLAN header + inner frame, or the
    /// bare IP packet), to the peer's underlay address.
    Encap(Encap),
    /// The frame (virtio-net header + Ethernet frame) is larger than the
    /// underlay allows in one datagram: split it, then encapsulate each part
    /// with [`super::encap::encapsulate`] and send it to the peer.
    EncapSplit(Encap, Split),
    /// The frame was replaced by an answer (ARP, neighbour advertisement, echo
    /// reply, ICMP error); write it back out of the port it came from.
    Reply,
    /// A later fragment whose datagram's first fragment has not been seen:
    /// keep a copy and decide it again once that has come (a bounded time).
    Hold,
    /// Discard the frame.
    Drop(DropReason),
}

/// Where an encapsulated frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encap {
    /// The peer it is for.
    pub peer: PeerId,
    /// The peer's underlay address and port.
    pub dst: SocketAddr,
    /// A hash of the inner flow, for the outer source port (RFC 7348 §5).
    pub flow_hash: u32,
}

/// How an oversized frame is to be split before encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// A TCP GSO super-frame: segment it in software (TSO) per this header.
    Segment(VirtioNetHdr),
    /// An IPv4 packet without DF: fragment it to this MTU.
    Fragment(u16),
}

//! The port seam: how frames enter and leave a worker, as batches.
//!
//! A worker moves batches between ports and the pipeline: it receives a
//! batch into its frame buffers ([`RxPort`]), the pipeline decides it, the
//! pipeline's output stage ([`crate::pipeline::output`]) turns the
//! decisions into transmissions, and the ports carry them out
//! ([`TxPorts`]): whole frames and gathered frames (headers plus payload
//! slices) to taps, datagrams and GSO segment plans to the underlay.
//!
//! The underlay is read through [`UnderlayRx`] (one read may hold many
//! datagrams of one flow, as `UDP_GRO` returns them).
//!
//! Implementations: the daemon's taps (io_uring batches or a syscall per
//! frame with epoll) and underlay sockets ([`crate::daemon::ports`]), and
//! the in-memory ports of [`super::memory`] that the simulation tests join
//! two dataplanes with.
//!
//! Why traits with static dispatch rather than an enum or `dyn`: the output
//! stage is generic over [`TxPorts`], so the daemon's path compiles to
//! direct calls (no indirect call per packet, no match over back ends that
//! a test port would add to the hot path), while the in-memory ports live
//! in tests without touching the daemon. The receive side is chosen once
//! per batch (the daemon's [`RxPort`] is a small enum over the two tap
//! back ends, matched once per batch).

use std::io::{self, IoSlice};
use std::net::SocketAddr;

use crate::frame::Frame;
use crate::offload::gso::GatherPlan;
use crate::table::nexthop::PortId;
use crate::table::peers::Backend;
pub use tweed_sys::mmsg::GroDatagram;

/// A tap a frame is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tap {
    /// A pod's tap.
    Pod(PortId),
    /// The host port (tweed0).
    Host,
}

/// How an encapsulated datagram leaves: the backend's socket, and the inner
/// flow's hash (VXLAN picks its source port by it, RFC 7348 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// The overlay backend.
    pub backend: Backend,
    /// A hash of the inner flow.
    pub flow_hash: u32,
}

/// What one batch receive got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Frames read, at the front of the buffers, in order.
    pub frames: usize,
    /// Whether a read failed (not "nothing to read").
    pub failed: bool,
}

/// A port frames are read from in batches.
pub trait RxPort {
    /// Reads up to `frames.len()` frames into `frames` (each with its
    /// virtio-net header, as a tap hands it over); the frames that came are
    /// at the front, in order.
    fn recv_batch(&mut self, frames: &mut [Frame]) -> Received;
}

/// An underlay port datagrams are read from, several of one flow at a time
/// where it can (`UDP_GRO`).
pub trait UnderlayRx {
    /// Reads one datagram, or several of one flow laid end to end (all
    /// `segment` bytes long but the last), into `buf` without waiting
    /// (`WouldBlock` when none is there).
    fn recv_gro(&mut self, buf: &mut [u8]) -> io::Result<GroDatagram>;
}

/// The transmit side of a worker's ports for one batch, whose frames live
/// for `'f`. Frames and datagrams may be queued until [`TxPorts::flush`];
/// the calls that take borrowed buffers of shorter life transmit at once,
/// after everything queued before them for the same kind of port, so the
/// order of one flow's frames is kept. Implementations count what they sent
/// and what failed.
pub trait TxPorts<'f> {
    /// A whole frame (virtio-net header + Ethernet frame of `bytes`
    /// Ethernet bytes) to a tap.
    fn frame(&mut self, to: Tap, frame: &'f [u8], bytes: u64);
    /// A frame gathered from `parts` (virtio-net header and headers first),
    /// standing for `packets` frames of `bytes` Ethernet bytes in all.
    fn gathered(&mut self, to: Tap, parts: &[IoSlice<'_>], packets: u64, bytes: u64);
    /// One datagram (the UDP payload) to `dst`.
    fn datagram(&mut self, via: Via, frame: &'f [u8], dst: SocketAddr);
    /// The datagrams of `plan` (its headers, payload ranges of `frame`) to
    /// `dst`, with UDP GSO where the port can.
    fn segments(&mut self, via: Via, dst: SocketAddr, frame: &[u8], plan: &GatherPlan);
    /// Transmits everything queued.
    fn flush(&mut self);
}

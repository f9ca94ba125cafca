//! The forwarding decision: a pure function of (tables, frame) → [`Action`].
//!
//! ```text
//! pod port ─▶ parse ─▶ anti-spoof ─▶ ARP/ND/echo for the gateway: answer
//!          ─▶ native Service? backend (see `service`) ─▶ conntrack (a reply from a
//!             translated flow's backend: source back to the frontend)
//!          ─▶ egress policy ─▶ route ─┬─ local pod: ingress policy ─▶ MAC rewrite, TTL−1 ─▶ Deliver
//!                                                 ├─ peer: MTU check ─▶ VXLAN/UDP encapsulation ─▶ Encap
//!                                                 ├─ host, node: MAC rewrite, TTL−1 ─▶ ToHost
//!                                                 └─ none: ICMP unreachable
//! underlay ─▶ known peer? right VNI? inner source in the peer's subnets?
//!          ─▶ (as above, to local pods and the node's own overlay address only)
//! ```
//!
//! [`Pipeline::process`] rewrites the frame in place and returns what to do
//! with it; the caller does the I/O. Time comes in as `now_ms`. The same code
//! runs in the workers, the benchmarks, the tests and `trace` (through a
//! [`trace::Tracer`], which also makes it a dry run).
//!
//! Frames from taps (pod ports and the host port) start with the 10-byte
//! virtio-net header; frames from the underlay are the UDP payload.

pub mod action;
pub mod counters;
pub mod drop;
pub mod encap;
pub mod flow_tag;
mod forward;
mod frame_edit;
mod gateway;
pub mod output;
pub mod parse;
pub mod reply;
mod service;
pub mod split;
pub mod trace;
mod underlay;

use std::net::SocketAddr;

pub use action::{Action, Encap, Split};
pub use counters::{Counters, FlowLog};
pub use drop::DropReason;
use trace::{NoTrace, Stage, Tracer};

use crate::frame::Frame;
use crate::table::conntrack::Conntrack;
use crate::table::nexthop::PortId;
use crate::table::peers::Backend;
use crate::table::tables::Tables;
use crate::wire::virtio_net::{self, VirtioNetHdr};

/// The smallest segment size a GSO super-frame may ask for: Linux's
/// smallest TCP MSS (`TCP_MIN_MSS`). Below it a 64 KB super-frame would be
/// split into thousands of packets.
pub const MIN_GSO_SIZE: u16 = 88;

/// Where a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// A pod's tap.
    Port(PortId),
    /// The host port (tweed0).
    Host,
    /// An underlay socket of this backend, from this address.
    Underlay { backend: Backend, src: SocketAddr },
}

/// The forwarding decision over one snapshot of the tables.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'a> {
    tables: &'a Tables,
    conntrack: &'a Conntrack,
    now_ms: u64,
}

impl<'a> Pipeline<'a> {
    /// A pipeline over these tables at time `now_ms`.
    pub fn new(tables: &'a Tables, conntrack: &'a Conntrack, now_ms: u64) -> Self {
        Self {
            tables,
            conntrack,
            now_ms,
        }
    }

    /// Decides the fate of one frame, rewriting it in place.
    #[inline]
    pub fn process(&self, ingress: Ingress, frame: &mut Frame, counters: &mut Counters) -> Action {
        self.process_traced(ingress, frame, counters, &mut NoTrace)
    }

    /// Decides a batch: `actions[i]` is the fate of `frames[i]`.
    pub fn process_batch(
        &self,
        ingress: Ingress,
        frames: &mut [Frame],
        actions: &mut Vec<Action>,
        counters: &mut Counters,
    ) {
        actions.clear();
        actions.extend(
            frames
                .iter_mut()
                .map(|frame| self.process(ingress, frame, counters)),
        );
    }

    /// [`Pipeline::process`] reporting every stage to `tracer`; with a
    /// recording tracer nothing but the frame and `counters` changes.
    pub fn process_traced<T: Tracer>(
        &self,
        ingress: Ingress,
        frame: &mut Frame,
        counters: &mut Counters,
        tracer: &mut T,
    ) -> Action {
        let action = match ingress {
            Ingress::Port(port) => self.tap_frame(Some(port), frame, counters, tracer),
            Ingress::Host => self.tap_frame(None, frame, counters, tracer),
            Ingress::Underlay { backend, src } => {
                self.underlay_frame(backend, src, frame, counters, tracer)
            }
        };
        counters.count(&action);
        tracer.stage(|| Stage::Action(action));
        action
    }

    /// The virtio-net header at the front of a tap frame.
    fn vnet_header(frame: &Frame) -> Result<VirtioNetHdr, DropReason> {
        if frame.len() < virtio_net::LEN {
            return Err(DropReason::Truncated);
        }
        let vnet = VirtioNetHdr::parse(frame.data()).map_err(|_| DropReason::BadVnetHeader)?;
        if vnet.is_gso() && vnet.gso_size < MIN_GSO_SIZE {
            return Err(DropReason::GsoTooSmall);
        }
        Ok(vnet)
    }
}

#[cfg(test)]
mod tests;

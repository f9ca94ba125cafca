//! The pipeline's output stage: what a batch's ports transmit for its
//! [`Action`]s (pure; the ports do the I/O through [`TxPorts`]).
//!
//! - frames for a pod go to its tap, consecutive segments of one TCP flow
//!   merged into one super-frame first ([`TcpGro`]), so the pod's kernel
//!   takes one trip through its stack for many segments;
//! - frames for the host and answers (to the tap they came from) go as they
//!   are;
//! - encapsulated frames go to their peer as one datagram each;
//! - a frame larger than the overlay allows ([`Action::EncapSplit`]) is
//!   planned here as the datagrams it becomes ([`split::plan`]: segment
//!   headers written out, payload left in the frame) and handed to the
//!   underlay port as one plan, which sends it with gathered UDP GSO.
//!
//! Order: a flow's frames leave in the order they were decided. A merged
//! super-frame leaves before any later frame for a tap, and a plan after
//! the datagrams queued before it (the [`TxPorts`] contract).

use std::io::IoSlice;

use super::split;
use super::{Action, Encap};
use crate::frame::Frame;
use crate::offload::gro::TcpGro;
use crate::offload::gso::GatherPlan;
use crate::port::seam::{Tap, TxPorts, Via};
use crate::table::nexthop::PortId;
use crate::table::tables::Tables;
use crate::wire::virtio_net;

/// The output stage's state, reused from batch to batch (no allocation per
/// frame once its buffers have grown).
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to a pod being merged into one super-frame.
    gro: TcpGro,
    /// The pod `gro` is merging frames for.
    gro_to: Option<PortId>,
    /// Ethernet bytes of the frames `gro` merged (for the port counters).
    gro_bytes: u64,
    /// The datagrams a frame is split into, reused.
    plan: GatherPlan,
    /// Room for fragments while they are planned.
    scratch: Vec<u8>,
}

/// What an [`Output::emit`] could not hand to the ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Emitted {
    /// Oversized frames whose headers did not allow a split (dropped).
    pub unsplittable: u64,
}

impl Output {
    /// A fresh output stage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hands `frames[k]` to `tx` as `actions[k]` says, for every `k` of
    /// `actions`, then flushes `tx`. `ingress` is the tap the batch was
    /// read from: answers go back to it (none for underlay batches).
    pub fn emit<'f, T: TxPorts<'f>>(
        &mut self,
        tables: &Tables,
        ingress: Option<Tap>,
        frames: &'f [Frame],
        actions: &[Action],
        tx: &mut T,
    ) -> Emitted {
        let mut emitted = Emitted::default();
        for (frame, &action) in frames.iter().zip(actions) {
            let frame = frame.data();
            match action {
                Action::Deliver(port) => {
                    let bytes = eth_bytes(frame);
                    if self.gro_to == Some(port) && self.gro.push(frame) {
                        self.gro_bytes += bytes;
                        continue;
                    }
                    self.flush_gro(tx);
                    if self.gro.push(frame) {
                        self.gro_to = Some(port);
                        self.gro_bytes = bytes;
                        continue;
                    }
                    tx.frame(Tap::Pod(port), frame, bytes);
                }
                Action::ToHost => tx.frame(Tap::Host, frame, eth_bytes(frame)),
                Action::Reply => {
                    // The answer may go to the tap a super-frame is for.
                    self.flush_gro(tx);
                    if let Some(to) = ingress {
                        tx.frame(to, frame, eth_bytes(frame));
                    }
                }
                Action::Encap(encap) => {
                    if let Some((via, _)) = via(tables, encap) {
                        tx.datagram(via, frame, encap.dst);
                    }
                }
                Action::EncapSplit(encap, how) => {
                    let Some((via, partial)) = via(tables, encap) else {
                        continue;
                    };
                    let eth = frame.get(virtio_net::LEN..).unwrap_or_default();
                    let planned = split::plan(
                        eth,
                        how,
                        via.backend,
                        tables.node.vni,
                        partial,
                        &mut self.plan,
                        &mut self.scratch,
                    );
                    match planned {
                        Ok(_) => tx.segments(via, encap.dst, eth, &self.plan),
                        Err(_) => emitted.unsplittable += 1,
                    }
                }
                Action::Drop(_) | Action::Hold => {}
            }
        }
        self.flush_gro(tx);
        tx.flush();
        emitted
    }

    /// Writes the super-frame being merged, if any, to its pod's tap.
    fn flush_gro<'f, T: TxPorts<'f>>(&mut self, tx: &mut T) {
        let Some(port) = self.gro_to.take() else {
            return;
        };
        let packets = self.gro.segments() as u64;
        let bytes = std::mem::take(&mut self.gro_bytes);
        if let Some(frame) = self.gro.flush() {
            tx.gathered(Tap::Pod(port), &[IoSlice::new(frame)], packets, bytes);
        }
    }
}

/// How a frame for `encap`'s peer leaves, and whether the peer takes inner
/// checksums left partial (none if the peer went): one peer lookup per frame.
fn via(tables: &Tables, encap: Encap) -> Option<(Via, bool)> {
    tables.peers.get(encap.peer).map(|peer| {
        let via = Via {
            backend: peer.backend,
            flow_hash: encap.flow_hash,
        };
        (via, peer.partial_checksums)
    })
}

/// The Ethernet bytes of a tap frame (without its virtio-net header).
fn eth_bytes(frame: &[u8]) -> u64 {
    frame.len().saturating_sub(virtio_net::LEN) as u64
}

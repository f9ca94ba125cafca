//! The daemon's side of the port seam ([`crate::port::seam`]): a worker's
//! tap queues (io_uring batches, or a syscall per frame with epoll) and its
//! underlay sockets, as the [`RxPort`] a batch is read from and the
//! [`TxPorts`] the pipeline's output stage transmits through.
//!
//! Both are built per batch from the worker's handles (no allocation: the
//! queues of pending writes and datagrams are recycled from batch to batch)
//! and dispatch statically; the back end is matched once per call, not
//! through a virtual call per packet.

use std::io::{self, ErrorKind, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use super::shared::{PortCounters, PortIo, WorkerCounters};
use super::sources::UringSources;
use super::tx::{send_all, send_plan};
use crate::frame::Frame;
use crate::offload::gso::GatherPlan;
use crate::port::seam::{GroDatagram, Received, RxPort, Tap, TxPorts, UnderlayRx, Via};
use crate::table::peers::Backend;
use tweed_sys::mmsg::{self, MAX_BATCH};
use tweed_sys::tap::TapQueue;
use tweed_sys::uring::{self, Ring};

/// A worker's queue of one tap, to read a batch from.
pub(super) enum TapRx<'a> {
    /// Epoll: a `read` per frame until the queue is empty.
    Epoll(&'a TapQueue),
    /// io_uring: one `io_uring_enter` for as many reads as the source's
    /// last batch suggests.
    Uring {
        uring: &'a mut UringSources,
        token: u64,
        queue: &'a TapQueue,
        results: &'a mut Vec<i32>,
    },
}

impl RxPort for TapRx<'_> {
    fn recv_batch(&mut self, frames: &mut [Frame]) -> Received {
        match self {
            TapRx::Epoll(queue) => read_each(queue, frames),
            TapRx::Uring {
                uring,
                token,
                queue,
                results,
            } => read_batch(uring, *token, queue, results, frames),
        }
    }
}

/// Reads frames from a tap queue, one syscall each, until it is empty.
fn read_each(queue: &TapQueue, frames: &mut [Frame]) -> Received {
    let mut got = Received::default();
    while got.frames < frames.len() {
        let frame = &mut frames[got.frames];
        match queue.read(frame.read_buffer()) {
            Ok(len) => {
                frame.set_len(len);
                got.frames += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                got.failed = true;
                break;
            }
        }
    }
    got
}

/// Reads a batch with one `io_uring_enter`; the frames that came are moved
/// to the front, in order, and the source's next batch size is recorded.
fn read_batch(
    uring: &mut UringSources,
    token: u64,
    queue: &TapQueue,
    results: &mut Vec<i32>,
    frames: &mut [Frame],
) -> Received {
    let depth = uring.depth(token).min(frames.len());
    let bufs = frames[..depth].iter_mut().map(|f| f.read_buffer());
    if let Err(e) = uring.ring().read_batch(queue.as_fd(), bufs, results) {
        tracing::debug!(error = %e, "tap read batch failed");
        return Received {
            frames: 0,
            failed: true,
        };
    }
    let mut got = Received::default();
    for (k, &result) in results.iter().enumerate() {
        if result > 0 {
            frames.swap(got.frames, k);
            frames[got.frames].set_len(result as usize);
            got.frames += 1;
        } else if result != -libc::EAGAIN && result != -libc::EINTR {
            got.failed = true;
        }
    }
    // A failing queue is not read again until it says so.
    uring.read(token, depth, if got.failed { 0 } else { got.frames });
    got
}

/// An underlay socket with `UDP_GRO` on, to read from.
pub(super) struct UdpRx(pub RawFd);

impl UnderlayRx for UdpRx {
    fn recv_gro(&mut self, buf: &mut [u8]) -> io::Result<GroDatagram> {
        mmsg::recv_gro(self.0, buf)
    }
}

/// A worker's underlay sockets.
#[derive(Clone, Copy)]
pub(super) struct Sockets<'a> {
    /// The VXLAN socket (receives; sends when there are no senders).
    pub vxlan: &'a UdpSocket,
    /// The flannel-UDP socket.
    pub udp: &'a UdpSocket,
    /// Sockets on ephemeral ports for sending VXLAN.
    pub vxlan_senders: &'a [UdpSocket],
}

impl Sockets<'_> {
    /// The socket a datagram leaves from: for VXLAN the sender the flow
    /// hash picks, so the outer source port varies per flow (RFC 7348 §5);
    /// for flannel UDP the UDP socket.
    fn socket(&self, via: Via) -> RawFd {
        match via.backend {
            Backend::Vxlan if !self.vxlan_senders.is_empty() => {
                let i = via.flow_hash as usize % self.vxlan_senders.len();
                self.vxlan_senders[i].as_raw_fd()
            }
            Backend::Vxlan => self.vxlan.as_raw_fd(),
            Backend::Udp => self.udp.as_raw_fd(),
        }
    }
}

/// The buffers a [`WorkerTx`] queues in, kept by the worker between
/// batches (empty, their capacity reused).
#[derive(Debug, Default)]
pub(super) struct TxQueues {
    writes: Vec<PendingWrite<'static>>,
    datagrams: Vec<(RawFd, &'static [u8], SocketAddr)>,
}

/// A frame of the batch queued for a tap (io_uring).
#[derive(Debug, Clone, Copy)]
struct PendingWrite<'f> {
    to: Tap,
    frame: &'f [u8],
    bytes: u64,
}

/// A worker's ports for transmitting one batch whose frames live for `'f`.
pub(super) struct WorkerTx<'a, 'f> {
    /// The worker's queue index on every tap.
    pub index: usize,
    /// The published port handles.
    pub ports: &'a PortIo,
    /// The worker's ring, when it runs io_uring (tap writes are batched).
    pub ring: Option<&'a mut Ring>,
    /// Its underlay sockets.
    pub sockets: Sockets<'a>,
    /// Where sends and failures are counted.
    pub counters: &'a mut WorkerCounters,
    /// Whether UDP GSO sends work (cleared when the kernel refuses them).
    pub gso: &'a mut bool,
    /// Results of io_uring batches.
    pub results: &'a mut Vec<i32>,
    writes: Vec<PendingWrite<'f>>,
    datagrams: Vec<(RawFd, &'f [u8], SocketAddr)>,
}

impl<'a, 'f> WorkerTx<'a, 'f> {
    /// Ports over these handles, queueing in `queues` (taken; give them back
    /// with [`WorkerTx::finish`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        ports: &'a PortIo,
        ring: Option<&'a mut Ring>,
        sockets: Sockets<'a>,
        counters: &'a mut WorkerCounters,
        gso: &'a mut bool,
        results: &'a mut Vec<i32>,
        queues: &mut TxQueues,
    ) -> Self {
        WorkerTx {
            index,
            ports,
            ring,
            sockets,
            counters,
            gso,
            results,
            writes: recycle(std::mem::take(&mut queues.writes)),
            datagrams: recycle(std::mem::take(&mut queues.datagrams)),
        }
    }

    /// Transmits what is still queued and hands the queues back.
    pub fn finish(mut self, queues: &mut TxQueues) {
        self.flush();
        queues.writes = recycle(std::mem::take(&mut self.writes));
        queues.datagrams = recycle(std::mem::take(&mut self.datagrams));
    }

    fn queue(&self, to: Tap) -> Option<&'a TapQueue> {
        tap_queue(self.ports, to, self.index)
    }

    /// Writes the queued frames with one `io_uring_enter` and counts them.
    fn flush_writes(&mut self) {
        if self.writes.is_empty() {
            return;
        }
        let Some(ring) = self.ring.as_deref_mut() else {
            self.writes.clear();
            return;
        };
        let (ports, index) = (self.ports, self.index);
        let missing = self
            .writes
            .iter()
            .filter(|w| tap_queue(ports, w.to, index).is_none())
            .count() as u64;
        let batch = self
            .writes
            .iter()
            .filter_map(|w| tap_queue(ports, w.to, index).map(|q| (q.as_fd(), w.frame)));
        let written = ring.write_each(batch, self.results);
        self.counters.io_errors += missing;
        if written.is_err() {
            self.counters.io_errors += self.writes.len() as u64 - missing;
            self.writes.clear();
            return;
        }
        let mut results = self.results.iter();
        for w in self.writes.drain(..) {
            if tap_queue(ports, w.to, index).is_none() {
                continue;
            }
            match results.next() {
                Some(&r) if r >= 0 => {
                    let c = port_counters(self.counters, w.to);
                    c.tx_packets += 1;
                    c.tx_bytes += w.bytes;
                }
                _ => self.counters.io_errors += 1,
            }
        }
    }

    /// Sends the queued datagrams, one `sendmmsg` per run of datagrams for
    /// the same socket.
    fn flush_datagrams(&mut self) {
        let mut i = 0;
        while i < self.datagrams.len() {
            let fd = self.datagrams[i].0;
            let mut j = i + 1;
            while j < self.datagrams.len() && self.datagrams[j].0 == fd && j - i < MAX_BATCH {
                j += 1;
            }
            let msgs: Vec<(&[u8], SocketAddr)> = self.datagrams[i..j]
                .iter()
                .map(|&(_, frame, dst)| (frame, dst))
                .collect();
            send_all(self.counters, fd, &msgs);
            i = j;
        }
        self.datagrams.clear();
    }
}

impl<'f> TxPorts<'f> for WorkerTx<'_, 'f> {
    fn frame(&mut self, to: Tap, frame: &'f [u8], bytes: u64) {
        if self.ring.is_some() {
            self.writes.push(PendingWrite { to, frame, bytes });
            if self.writes.len() >= uring::MAX_BATCH {
                self.flush_writes();
            }
            return;
        }
        let written = self.queue(to).map(|q| q.write(frame));
        count_write(
            self.counters,
            to,
            written.is_some_and(|r| r.is_ok()),
            1,
            bytes,
        );
    }

    fn gathered(&mut self, to: Tap, parts: &[IoSlice<'_>], packets: u64, bytes: u64) {
        self.flush_writes();
        let written = self.queue(to).map(|q| match parts {
            [one] => q.write(one),
            _ => q.write_vectored(parts),
        });
        count_write(
            self.counters,
            to,
            written.is_some_and(|r| r.is_ok()),
            packets,
            bytes,
        );
    }

    fn datagram(&mut self, via: Via, frame: &'f [u8], dst: SocketAddr) {
        let fd = self.sockets.socket(via);
        self.datagrams.push((fd, frame, dst));
    }

    fn segments(&mut self, via: Via, dst: SocketAddr, frame: &[u8], plan: &GatherPlan) {
        // Earlier datagrams of the same flow leave first.
        self.flush_datagrams();
        let fd = self.sockets.socket(via);
        send_plan(self.counters, self.gso, fd, dst, frame, plan);
    }

    fn flush(&mut self) {
        self.flush_writes();
        self.flush_datagrams();
    }
}

/// The worker's queue of a tap.
pub(super) fn tap_queue(ports: &PortIo, to: Tap, index: usize) -> Option<&TapQueue> {
    match to {
        Tap::Pod(port) => ports.pods.get(&port).and_then(|h| h.queues.get(index)),
        Tap::Host => ports.host.as_ref().and_then(|h| h.queues.get(index)),
    }
}

/// The counters of a tap.
pub(super) fn port_counters(counters: &mut WorkerCounters, tap: Tap) -> &mut PortCounters {
    match tap {
        Tap::Pod(port) => counters.ports.entry(port).or_default(),
        Tap::Host => &mut counters.host,
    }
}

/// Counts a write of `packets` frames (`bytes` Ethernet bytes in all).
fn count_write(counters: &mut WorkerCounters, to: Tap, ok: bool, packets: u64, bytes: u64) {
    if ok {
        let c = port_counters(counters, to);
        c.tx_packets += packets;
        c.tx_bytes += bytes;
    } else {
        counters.io_errors += packets;
    }
}

/// An empty vector with `v`'s allocation, for elements that differ only in
/// their lifetimes (same layout, so the standard library collects in place).
fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

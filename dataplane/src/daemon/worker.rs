//! A worker thread: it owns its buffers, its queue of every tap and its
//! underlay sockets; it reads a batch, decides it with the pipeline over the
//! current snapshot, and writes the batch out.
//!
//! The only shared state it touches per batch is two `ArcSwap` loads (tables,
//! port handles) and conntrack; its counters are its own and are published to
//! a slot a few times a second.
//!
//! Offloads at the edges, so that the pipeline still decides one packet at a
//! time:
//!
//! - underlay reads use `UDP_GRO`: one read may hold many datagrams of one
//!   flow, which are split into frames before the pipeline;
//! - the segments of a split super-frame leave in gathered UDP GSO sends
//!   (one `sendmsg` for up to 64 datagrams, their payload never copied),
//!   other encapsulated frames of a batch in `sendmmsg` calls;
//! - the segments of one TCP flow at the start of a `UDP_GRO` read are
//!   decided once, by their first, and written to the pod's tap as one
//!   super-frame gathered from the read ([`gro_run`]);
//! - other consecutive frames of one TCP flow delivered to a pod are merged
//!   into a super-frame ([`TcpGro`]) and written to its tap in one go.
//!
//! Tap I/O runs on one of two back ends ([`super::io`]): with epoll a read
//! and a write are a syscall per frame; with io_uring a worker reads a batch
//! of frames from a tap with one `io_uring_enter` and queues the frames it
//! delivers to taps, writing them in one `io_uring_enter` at the end of the
//! batch (or before anything that must not overtake them).

use std::io::{ErrorKind, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::{PortCounters, PortIo, Shared, WorkerCounters};
use super::sources::Sources;
use super::tx::{send_all, send_plan, socket};
use crate::frame::Frame;
use crate::offload::gro::TcpGro;
use crate::offload::gro_run::{self, Run};
use crate::offload::gso::GatherPlan;
use crate::offload::udp_gro;
use crate::pipeline::parse::ETH_LEN;
use crate::pipeline::{Action, DropReason, Encap, Ingress, Pipeline, Split, split};
use crate::sys::mmsg::{self, MAX_BATCH};
use crate::sys::tap::TapQueue;
use crate::table::fragments;
use crate::table::nexthop::PortId;
use crate::table::peers::Backend;
use crate::table::tables::Tables;
use crate::wire::{virtio_net, vxlan};

/// Frames read from one source before moving to the next (fairness).
pub const BATCH: usize = 64;
/// The most workers a dataplane runs (each opens one queue of every tap).
pub const MAX_WORKERS: usize = 64;
/// Room for the largest frame a tap hands over (a 64 KiB GSO super-frame and
/// its virtio-net header) or the largest UDP datagram.
const FRAME_CAPACITY: usize = 65_536 + virtio_net::LEN + ETH_LEN;
/// Later fragments a worker holds for their first fragment at most.
const MAX_HELD: usize = 64;
/// How often counters are published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Epoll token of the VXLAN socket.
pub const TOKEN_VXLAN: u64 = u64::MAX;
/// Epoll token of the flannel-UDP socket.
pub const TOKEN_UDP: u64 = u64::MAX - 1;
/// Epoll token of the host port's queue.
pub const TOKEN_HOST: u64 = u64::MAX - 2;
/// io_uring token of the worker's wake-up eventfd.
pub const TOKEN_WAKE: u64 = u64::MAX - 3;
/// How long a worker waits for traffic before it looks at its flags.
const WAIT: Duration = Duration::from_millis(100);

/// Epoll token of a pod port's queue.
pub fn port_token(port: PortId) -> u64 {
    u64::from(port.0)
}

/// What a worker owns.
#[derive(Debug)]
pub struct WorkerIo {
    /// The worker's index: the queue it owns on every tap.
    pub index: usize,
    /// Where it waits for readable sources (epoll set or io_uring).
    pub sources: Sources,
    /// It never sleeps: each wait only looks (`--busy-poll`).
    pub busy_poll: bool,
    /// Its VXLAN socket (SO_REUSEPORT with the other workers').
    pub vxlan: UdpSocket,
    /// Its flannel-UDP socket.
    pub udp: UdpSocket,
    /// Sockets on ephemeral ports for sending VXLAN: the flow hash picks one,
    /// so the outer source port varies per flow (RFC 7348 §5).
    pub vxlan_senders: Vec<UdpSocket>,
}

/// Runs a worker until `shared.shutdown` is set.
pub fn run(shared: Arc<Shared>, io: WorkerIo, clock: Instant) {
    let mut worker = Worker {
        frames: (0..BATCH)
            .map(|_| Frame::with_capacity(FRAME_CAPACITY))
            .collect(),
        sources: vec![SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
        actions: Vec::with_capacity(BATCH),
        counters: WorkerCounters::default(),
        events: Vec::with_capacity(256),
        writes: Vec::with_capacity(BATCH),
        results: Vec::with_capacity(BATCH),
        scratch: Vec::new(),
        rx: RxDatagram {
            buf: vec![0; FRAME_CAPACITY],
            len: 0,
            segment: 0,
            offset: 0,
            from: SocketAddr::from(([0, 0, 0, 0], 0)),
        },
        tx: Vec::with_capacity(BATCH),
        plan: GatherPlan::default(),
        run: Run::default(),
        run_headers: Vec::new(),
        gso: true,
        gro: TcpGro::new(),
        gro_port: None,
        gro_bytes: 0,
        held: Vec::new(),
        published: Instant::now(),
        io,
    };
    while !shared.shutdown.load(Ordering::Relaxed) {
        worker.poll(&shared, clock);
    }
    worker.publish(&shared);
}

struct Worker {
    io: WorkerIo,
    frames: Vec<Frame>,
    sources: Vec<SocketAddr>,
    actions: Vec<Action>,
    counters: WorkerCounters,
    /// Tokens of the sources to read this round.
    events: Vec<u64>,
    /// Frames of the batch to write to taps (io_uring only).
    writes: Vec<PendingWrite>,
    /// Results of the last io_uring batch.
    results: Vec<i32>,
    scratch: Vec<u8>,
    /// The last underlay read, possibly several datagrams (`UDP_GRO`).
    rx: RxDatagram,
    /// Encapsulated frames of the batch waiting for `sendmmsg`: socket,
    /// frame index, destination.
    tx: Vec<(RawFd, usize, SocketAddr)>,
    /// The datagrams a super-frame is split into (headers and payload
    /// ranges), reused.
    plan: GatherPlan,
    /// The run of one flow's segments found in the last underlay read.
    run: Run,
    /// The headers of the super-frame that carries `run`.
    run_headers: Vec<u8>,
    /// Whether UDP GSO sends work (cleared when the kernel refuses them).
    gso: bool,
    /// Frames to a pod being merged into one super-frame.
    gro: TcpGro,
    /// The pod `gro` is merging frames for.
    gro_port: Option<PortId>,
    /// Ethernet bytes of the frames `gro` merged (for the port counters).
    gro_bytes: u64,
    /// Later fragments that came before their datagram's first fragment.
    held: Vec<Held>,
    published: Instant,
}

/// A frame of the batch queued for a tap (io_uring): frame `k` to `port`'s
/// queue, or the host's.
#[derive(Debug, Clone, Copy)]
struct PendingWrite {
    port: Option<PortId>,
    k: usize,
    bytes: u64,
}

/// A frame the pipeline asked to hold ([`Action::Hold`]), as it was read.
struct Held {
    ingress: Ingress,
    bytes: Vec<u8>,
    since_ms: u64,
}

/// One underlay read and how far the worker has split it.
struct RxDatagram {
    buf: Vec<u8>,
    len: usize,
    /// Length of each datagram in `buf` (the last may be shorter).
    segment: usize,
    /// Start of the next datagram to hand to the pipeline.
    offset: usize,
    from: SocketAddr,
}

impl RxDatagram {
    /// The next datagram not yet handed over, if any.
    fn next(&mut self) -> Option<&[u8]> {
        let rest = self.buf.get(self.offset..self.len)?;
        let datagram = udp_gro::datagrams(rest, self.segment).next()?;
        self.offset += datagram.len();
        Some(datagram)
    }

    fn drained(&self) -> bool {
        self.offset >= self.len
    }
}

impl Worker {
    fn poll(&mut self, shared: &Shared, clock: Instant) {
        let ports = shared.ports.load_full();
        let wait = if self.io.busy_poll {
            Duration::ZERO
        } else {
            WAIT
        };
        if let Err(e) = self.io.sources.wait(&ports, &mut self.events, wait) {
            if e.kind() != ErrorKind::Interrupted {
                tracing::warn!(worker = self.io.index, error = %e, "waiting for traffic failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        let tables = shared.tables.load();
        let ports = shared.ports.load();
        let now_ms = clock.elapsed().as_millis() as u64;
        for i in 0..self.events.len() {
            let token = self.events[i];
            match token {
                TOKEN_VXLAN | TOKEN_UDP => {
                    let backend = if token == TOKEN_VXLAN {
                        Backend::Vxlan
                    } else {
                        Backend::Udp
                    };
                    let drained = self.read_underlay(shared, &tables, &ports, backend, now_ms);
                    if !drained && let Some(uring) = self.io.sources.ring() {
                        uring.left_readable(token);
                    }
                }
                TOKEN_HOST => {
                    if let Some(host) = ports.host.as_ref() {
                        self.read_tap(
                            shared,
                            &tables,
                            &ports,
                            (Ingress::Host, token),
                            &host.queues,
                            now_ms,
                        );
                    }
                }
                id => {
                    let port = PortId(id as u32);
                    if let Some(handles) = ports.pods.get(&port) {
                        self.read_tap(
                            shared,
                            &tables,
                            &ports,
                            (Ingress::Port(port), token),
                            &handles.queues,
                            now_ms,
                        );
                    }
                }
            }
        }
        if !self.held.is_empty() {
            self.retry_held(shared, &tables, &ports, now_ms);
        }
        self.write_flow_logs();
        if self.published.elapsed() >= PUBLISH_EVERY {
            self.publish(shared);
        }
    }

    fn publish(&mut self, shared: &Shared) {
        if let Some(slot) = shared.counters.get(self.io.index)
            && let Ok(mut slot) = slot.lock()
        {
            *slot = self.counters.clone();
        }
        self.published = Instant::now();
    }

    fn write_flow_logs(&mut self) {
        for log in self.counters.pipeline.flow_logs.drain(..) {
            let f = &log.flow;
            tracing::info!(
                target: "tweed::flow",
                at_ms = log.at_ms,
                endpoint = %log.endpoint,
                direction = if log.ingress { "ingress" } else { "egress" },
                src = %f.src, dst = %f.dst, protocol = f.protocol, src_port = f.src_port, dst_port = f.dst_port,
                rule = log.rule.0,
                policy = log.rule_name.as_deref().unwrap_or("-"),
                verdict = if log.allowed { "allow" } else { "deny" },
                "flow log"
            );
        }
    }

    fn read_tap(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        ports: &PortIo,
        (ingress, token): (Ingress, u64),
        queues: &[TapQueue],
        now_ms: u64,
    ) {
        let Some(queue) = queues.get(self.io.index) else {
            return;
        };
        let n = if self.io.sources.ring().is_some() {
            self.read_tap_batch(ingress, token, queue)
        } else {
            self.read_tap_frames(ingress, queue)
        };
        self.decide(shared, tables, n, |_| ingress, now_ms);
        self.dispatch(tables, ports, n, Some(queue));
    }

    /// Reads up to [`BATCH`] frames from a tap queue, one syscall each.
    fn read_tap_frames(&mut self, ingress: Ingress, queue: &TapQueue) -> usize {
        let mut n = 0;
        while n < BATCH {
            match queue.read(self.frames[n].read_buffer()) {
                Ok(len) => {
                    self.frames[n].set_len(len);
                    let counters = self.port_counters(ingress);
                    counters.rx_packets += 1;
                    counters.rx_bytes += len.saturating_sub(virtio_net::LEN) as u64;
                    n += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.counters.io_errors += 1;
                    break;
                }
            }
        }
        n
    }

    /// Reads a batch of frames from a tap queue with one `io_uring_enter`
    /// (as many reads as the source's last batch suggests); the frames that
    /// came are moved to the front, in order. Returns how many came.
    fn read_tap_batch(&mut self, ingress: Ingress, token: u64, queue: &TapQueue) -> usize {
        let Some(uring) = self.io.sources.ring() else {
            return 0;
        };
        let depth = uring.depth(token).min(BATCH);
        let bufs = self.frames[..depth].iter_mut().map(|f| f.read_buffer());
        if let Err(e) = uring
            .ring()
            .read_batch(queue.as_fd(), bufs, &mut self.results)
        {
            tracing::debug!(error = %e, "tap read batch failed");
            self.counters.io_errors += 1;
            return 0;
        }
        let mut n = 0;
        let mut failed = false;
        for k in 0..self.results.len() {
            let result = self.results[k];
            if result > 0 {
                let len = result as usize;
                self.frames.swap(n, k);
                self.frames[n].set_len(len);
                let counters = self.port_counters(ingress);
                counters.rx_packets += 1;
                counters.rx_bytes += len.saturating_sub(virtio_net::LEN) as u64;
                n += 1;
            } else if result != -libc::EAGAIN && result != -libc::EINTR {
                failed = true;
            }
        }
        if failed {
            self.counters.io_errors += 1;
        }
        if let Some(uring) = self.io.sources.ring() {
            // A failing queue is not read again until it says so.
            uring.read(token, depth, if failed { 0 } else { n });
        }
        n
    }

    /// Reads underlay datagrams (split from `UDP_GRO` reads) in batches of
    /// up to [`BATCH`]. One batch of fresh reads per wake-up, for fairness;
    /// what is left of the last read is still processed, since epoll will
    /// not report it again. Returns whether the socket was read until empty.
    fn read_underlay(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        ports: &PortIo,
        backend: Backend,
        now_ms: u64,
    ) -> bool {
        let fd = if backend == Backend::Vxlan {
            self.io.vxlan.as_raw_fd()
        } else {
            self.io.udp.as_raw_fd()
        };
        let mut may_read = true;
        let mut drained = false;
        // Datagrams of fresh reads delivered as runs in this call.
        let mut ran = 0;
        loop {
            let mut n = 0;
            while n < BATCH {
                if let Some(datagram) = self.rx.next() {
                    let buffer = self.frames[n].read_buffer();
                    let len = datagram.len().min(buffer.len());
                    buffer[..len].copy_from_slice(&datagram[..len]);
                    self.frames[n].set_len(len);
                    self.sources[n] = self.rx.from;
                    n += 1;
                    continue;
                }
                if !may_read {
                    break;
                }
                match mmsg::recv_gro(fd, &mut self.rx.buf) {
                    Ok(read) => {
                        self.rx.len = read.len;
                        self.rx.segment = read.segment;
                        self.rx.offset = 0;
                        self.rx.from = read.from;
                        if backend == Backend::Vxlan && read.segment < read.len {
                            // Frames of earlier reads leave first.
                            self.decide_underlay(shared, tables, ports, backend, n, now_ms);
                            n = 0;
                            // Runs count against the batch too: no more
                            // fresh reads once a batch's worth went out.
                            ran += self.deliver_run(shared, tables, ports, now_ms);
                            if ran >= BATCH {
                                may_read = false;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        if e.kind() != ErrorKind::WouldBlock {
                            self.counters.io_errors += 1;
                        }
                        may_read = false;
                        drained = true;
                    }
                }
            }
            if n == 0 {
                break;
            }
            self.decide_underlay(shared, tables, ports, backend, n, now_ms);
            may_read = false;
            if self.rx.drained() {
                break;
            }
        }
        drained
    }

    /// Decides and sends the first `n` frames, read from the underlay.
    fn decide_underlay(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        ports: &PortIo,
        backend: Backend,
        n: usize,
        now_ms: u64,
    ) {
        if n == 0 {
            return;
        }
        self.counters.underlay_rx += n as u64;
        let sources = std::mem::take(&mut self.sources);
        self.decide(
            shared,
            tables,
            n,
            |k| Ingress::Underlay {
                backend,
                src: sources[k],
            },
            now_ms,
        );
        self.sources = sources;
        self.dispatch(tables, ports, n, None);
    }

    /// Decides once for the run of one TCP flow's segments at the start of a
    /// fresh `UDP_GRO` read (see [`gro_run`]): the pipeline decides the first,
    /// and if it goes to a pod, the whole run is written to the pod's tap as
    /// one super-frame, gathered from the read (its payload is not copied).
    /// Whatever is not delivered that way stays in the read for the frame
    /// by frame path. Returns how many datagrams it took from the read.
    fn deliver_run(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        ports: &PortIo,
        now_ms: u64,
    ) -> usize {
        let segment = self.rx.segment;
        let read = &self.rx.buf[..self.rx.len];
        gro_run::find(read, segment, vxlan::HEADER_LEN, &mut self.run);
        if self.run.count < 2 {
            return 0;
        }
        let first = &read[..segment.min(read.len())];
        let buffer = self.frames[0].read_buffer();
        let len = first.len().min(buffer.len());
        buffer[..len].copy_from_slice(&first[..len]);
        self.frames[0].set_len(len);
        self.rx.offset = len;
        let deliver = {
            let from = self.rx.from;
            self.decide(
                shared,
                tables,
                1,
                |_| Ingress::Underlay {
                    backend: Backend::Vxlan,
                    src: from,
                },
                now_ms,
            );
            match self.actions[0] {
                Action::Deliver(port) => {
                    gro_run::super_headers(self.frames[0].data(), &self.run, &mut self.run_headers)
                        .then_some(port)
                }
                _ => None,
            }
        };
        self.counters.underlay_rx += 1;
        let Some(port) = deliver else {
            self.dispatch(tables, ports, 1, None);
            return 1;
        };
        let count = self.run.count;
        let read = &self.rx.buf[..self.rx.len];
        let mut iov = Vec::with_capacity(count + 1);
        iov.push(IoSlice::new(&self.run_headers));
        for p in &self.run.payloads {
            iov.push(IoSlice::new(&read[p.clone()]));
        }
        let headers = self.run_headers.len() - virtio_net::LEN;
        let bytes = (headers * count + self.run.payload_len()) as u64;
        let queue = ports
            .pods
            .get(&port)
            .and_then(|h| h.queues.get(self.io.index));
        // Nothing is queued here: every dispatch flushes its writes.
        debug_assert!(self.writes.is_empty());
        let written = queue.map(|q| q.write_vectored(&iov));
        drop(iov);
        match written {
            Some(Ok(_)) => {
                let counters = self.counters.ports.entry(port).or_default();
                counters.tx_packets += count as u64;
                counters.tx_bytes += bytes;
            }
            _ => self.counters.io_errors += count as u64,
        }
        // The pipeline counted the first segment; the others share its fate.
        let others = count as u64 - 1;
        self.counters.underlay_rx += others;
        self.counters.pipeline.delivered += others;
        self.counters.pipeline.conntrack_hits += others;
        self.rx.offset = (count * segment).min(self.rx.len);
        count
    }

    fn decide(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        n: usize,
        ingress: impl Fn(usize) -> Ingress,
        now_ms: u64,
    ) {
        let pipeline = Pipeline::new(tables, &shared.conntrack, now_ms);
        self.actions.clear();
        for k in 0..n {
            let action =
                pipeline.process(ingress(k), &mut self.frames[k], &mut self.counters.pipeline);
            if action == Action::Hold {
                // The pipeline holds before it rewrites anything.
                self.hold(ingress(k), k, now_ms);
            }
            self.actions.push(action);
        }
    }

    /// Keeps a copy of frame `k` to decide again later, if there is room.
    fn hold(&mut self, ingress: Ingress, k: usize, now_ms: u64) {
        if self.held.len() >= MAX_HELD {
            self.counters.pipeline.drops[DropReason::Fragment as usize] += 1;
            return;
        }
        self.held.push(Held {
            ingress,
            bytes: self.frames[k].data().to_vec(),
            since_ms: now_ms,
        });
    }

    /// Decides the held fragments again: those whose first fragment came
    /// go on, the others wait until [`fragments::LIFETIME_MS`] has passed.
    fn retry_held(&mut self, shared: &Shared, tables: &Tables, ports: &PortIo, now_ms: u64) {
        let held = std::mem::take(&mut self.held);
        let mut ingresses = Vec::with_capacity(held.len().min(BATCH));
        let mut since = Vec::with_capacity(held.len().min(BATCH));
        let mut rest = Vec::new();
        for h in held {
            if now_ms.saturating_sub(h.since_ms) >= fragments::LIFETIME_MS {
                self.counters.pipeline.drops[DropReason::Fragment as usize] += 1;
                continue;
            }
            if ingresses.len() == BATCH {
                rest.push(h);
                continue;
            }
            let k = ingresses.len();
            let buffer = self.frames[k].read_buffer();
            let len = h.bytes.len().min(buffer.len());
            buffer[..len].copy_from_slice(&h.bytes[..len]);
            self.frames[k].set_len(len);
            ingresses.push(h.ingress);
            since.push(h.since_ms);
        }
        self.held = rest;
        let before = self.held.len();
        let n = ingresses.len();
        self.decide(shared, tables, n, |k| ingresses[k], now_ms);
        // Frames held again keep the time they were first held.
        let mut first_held = (0..n)
            .filter(|&k| self.actions[k] == Action::Hold)
            .map(|k| since[k]);
        for h in &mut self.held[before..] {
            if let Some(t) = first_held.next() {
                h.since_ms = t;
            }
        }
        self.dispatch(tables, ports, n, None);
    }

    fn port_counters(&mut self, ingress: Ingress) -> &mut PortCounters {
        match ingress {
            Ingress::Port(port) => self.counters.ports.entry(port).or_default(),
            _ => &mut self.counters.host,
        }
    }

    fn dispatch(
        &mut self,
        tables: &Tables,
        ports: &PortIo,
        n: usize,
        ingress_queue: Option<&TapQueue>,
    ) {
        for k in 0..n {
            let action = self.actions[k];
            match action {
                Action::Deliver(port) => {
                    let frame = self.frames[k].data();
                    if self.gro_port == Some(port) && self.gro.push(frame) {
                        self.gro_bytes += frame.len().saturating_sub(virtio_net::LEN) as u64;
                        continue;
                    }
                    self.flush_gro(ports);
                    let frame = self.frames[k].data();
                    let len = frame.len().saturating_sub(virtio_net::LEN) as u64;
                    if self.gro.push(frame) {
                        self.gro_port = Some(port);
                        self.gro_bytes = len;
                        continue;
                    }
                    self.write_or_queue(ports, Some(port), k, len);
                }
                Action::ToHost => {
                    let frame = self.frames[k].data();
                    let len = frame.len().saturating_sub(virtio_net::LEN) as u64;
                    self.write_or_queue(ports, None, k, len);
                }
                Action::Reply => {
                    // The answer may go to the tap a super-frame is for.
                    self.flush_gro(ports);
                    self.flush_writes(ports);
                    if let Some(queue) = ingress_queue
                        && queue.write(self.frames[k].data()).is_err()
                    {
                        self.counters.io_errors += 1;
                    }
                }
                Action::Encap(encap) => {
                    let Some(peer) = tables.peers.get(encap.peer) else {
                        continue;
                    };
                    let fd = socket(&self.io, peer.backend, encap).as_raw_fd();
                    self.tx.push((fd, k, encap.dst));
                }
                Action::EncapSplit(encap, split) => {
                    let Some(peer) = tables.peers.get(encap.peer) else {
                        continue;
                    };
                    // Earlier frames of the same flow leave first.
                    self.flush_tx();
                    self.split_and_send(peer.backend, tables.node.vni, encap, split, k);
                }
                Action::Drop(_) | Action::Hold => {}
            }
        }
        self.flush_gro(ports);
        self.flush_writes(ports);
        self.flush_tx();
    }

    /// Writes frame `k` to `port`'s tap (the host's for `None`) now (epoll)
    /// or queues it for the batch's write (io_uring).
    fn write_or_queue(&mut self, ports: &PortIo, port: Option<PortId>, k: usize, bytes: u64) {
        if self.io.sources.ring().is_some() {
            self.writes.push(PendingWrite { port, k, bytes });
            if self.writes.len() >= crate::sys::uring::MAX_BATCH {
                self.flush_writes(ports);
            }
            return;
        }
        let queue = tap_queue(ports, port, self.io.index);
        write_frame(
            &mut self.counters,
            queue,
            self.frames[k].data(),
            port,
            1,
            bytes,
        );
    }

    /// Writes the queued frames with one `io_uring_enter` and counts them.
    fn flush_writes(&mut self, ports: &PortIo) {
        if self.writes.is_empty() {
            return;
        }
        let index = self.io.index;
        let missing = self
            .writes
            .iter()
            .filter(|w| tap_queue(ports, w.port, index).is_none())
            .count() as u64;
        let frames = &self.frames;
        let batch = self.writes.iter().filter_map(|w| {
            tap_queue(ports, w.port, index).map(|q| (q.as_fd(), frames[w.k].data()))
        });
        let written = match self.io.sources.ring() {
            Some(uring) => uring.ring().write_each(batch, &mut self.results),
            None => Ok(()),
        };
        self.counters.io_errors += missing;
        if written.is_err() {
            self.counters.io_errors += self.writes.len() as u64 - missing;
            self.writes.clear();
            return;
        }
        let mut results = self.results.iter();
        for w in self.writes.drain(..) {
            if tap_queue(ports, w.port, index).is_none() {
                continue;
            }
            match results.next() {
                Some(&r) if r >= 0 => {
                    let counters = match w.port {
                        Some(port) => self.counters.ports.entry(port).or_default(),
                        None => &mut self.counters.host,
                    };
                    counters.tx_packets += 1;
                    counters.tx_bytes += w.bytes;
                }
                _ => self.counters.io_errors += 1,
            }
        }
    }

    /// Writes the super-frame being merged, if any, to its pod's tap, after
    /// the frames queued before it.
    fn flush_gro(&mut self, ports: &PortIo) {
        let Some(port) = self.gro_port.take() else {
            return;
        };
        self.flush_writes(ports);
        let packets = self.gro.segments() as u64;
        let bytes = std::mem::take(&mut self.gro_bytes);
        if let Some(frame) = self.gro.flush() {
            let queue = ports
                .pods
                .get(&port)
                .and_then(|h| h.queues.get(self.io.index));
            write_frame(&mut self.counters, queue, frame, Some(port), packets, bytes);
        }
    }

    /// Sends the batch's encapsulated frames, one `sendmmsg` per run of
    /// frames for the same socket.
    fn flush_tx(&mut self) {
        let mut i = 0;
        while i < self.tx.len() {
            let fd = self.tx[i].0;
            let mut j = i + 1;
            while j < self.tx.len() && self.tx[j].0 == fd && j - i < MAX_BATCH {
                j += 1;
            }
            let msgs: Vec<(&[u8], SocketAddr)> = self.tx[i..j]
                .iter()
                .map(|&(_, k, dst)| (self.frames[k].data(), dst))
                .collect();
            send_all(&mut self.counters, fd, &msgs);
            i = j;
        }
        self.tx.clear();
    }

    /// Segments a GSO super-frame or fragments an IPv4 packet into
    /// encapsulated datagrams and sends them: the payload of a segment is
    /// never copied, only its headers are written.
    fn split_and_send(&mut self, backend: Backend, vni: u32, encap: Encap, split: Split, k: usize) {
        let fd = socket(&self.io, backend, encap).as_raw_fd();
        let eth = self.frames[k].data().get(virtio_net::LEN..).unwrap_or(&[]);
        match split::plan(eth, split, backend, vni, &mut self.plan, &mut self.scratch) {
            Ok(_) => send_plan(
                &mut self.counters,
                &mut self.gso,
                fd,
                encap.dst,
                eth,
                &self.plan,
            ),
            Err(error) => {
                tracing::debug!(%error, "could not split an oversized frame");
                self.counters.io_errors += 1;
            }
        }
    }
}

/// The worker's queue of `port`'s tap (the host's for `None`).
fn tap_queue(ports: &PortIo, port: Option<PortId>, index: usize) -> Option<&TapQueue> {
    match port {
        Some(port) => ports.pods.get(&port).and_then(|h| h.queues.get(index)),
        None => ports.host.as_ref().and_then(|h| h.queues.get(index)),
    }
}

/// Writes one frame (`packets` merged frames of `bytes` Ethernet bytes in
/// all) to a tap and counts it.
fn write_frame(
    counters: &mut WorkerCounters,
    queue: Option<&TapQueue>,
    frame: &[u8],
    port: Option<PortId>,
    packets: u64,
    bytes: u64,
) {
    match queue.map(|q| q.write(frame)) {
        Some(Ok(_)) => {
            let counters = match port {
                Some(port) => counters.ports.entry(port).or_default(),
                None => &mut counters.host,
            };
            counters.tx_packets += packets;
            counters.tx_bytes += bytes;
        }
        _ => counters.io_errors += packets,
    }
}

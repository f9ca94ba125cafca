//! A worker thread: it owns its buffers, its queue of every tap and its
//! underlay sockets; it moves batches between its ports and the pipeline:
//! it reads a batch ([`RxPort`]), has the pipeline decide it over the
//! current snapshot, and has the pipeline's output stage ([`Output`]) hand
//! the result to its ports ([`super::ports::WorkerTx`]) to write out. What
//! goes where, which frames merge and how a super-frame is split are decided
//! there, not here.
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
//!   into a super-frame (by the output stage) and written to its tap in one
//!   go.
//!
//! Tap I/O runs on one of two back ends ([`super::io`]): with epoll a read
//! and a write are a syscall per frame; with io_uring a worker reads a batch
//! of frames from a tap with one `io_uring_enter` and queues the frames it
//! delivers to taps, writing them in one `io_uring_enter` at the end of the
//! batch (or before anything that must not overtake them).
//!
//! Between rounds it waits as its [`IdlePolicy`] says: by default it lingers
//! for a while after traffic before it sleeps ([`super::idle`]).

use std::io::{ErrorKind, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::idle::{IdlePolicy, Wait};
use super::ports::{Sockets, TapRx, TxQueues, UdpRx, WorkerTx, port_counters};
use super::shared::{PortIo, Shared, WorkerCounters};
use super::sources::{Sources, TOKEN_HOST, TOKEN_UDP, TOKEN_VXLAN};
use crate::frame::Frame;
use crate::offload::gro_run::{self, Run};
use crate::offload::udp_gro;
use crate::pipeline::output::Output;
use crate::pipeline::{Action, DropReason, Ingress, Pipeline};
use crate::port::seam::{RxPort, Tap, TxPorts, UnderlayRx};
use crate::table::fragments;
use crate::table::nexthop::PortId;
use crate::table::peers::Backend;
use crate::table::tables::Tables;
use crate::wire::ethernet::ETH_LEN;
use crate::wire::{virtio_net, vxlan};
use tweed_sys::tap::TapQueue;

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

/// How long a worker waits for traffic before it looks at its flags.
const WAIT: Duration = Duration::from_millis(100);

/// What a worker owns.
#[derive(Debug)]
pub struct WorkerIo {
    /// The worker's index: the queue it owns on every tap.
    pub index: usize,
    /// Where it waits for readable sources (epoll set or io_uring).
    pub sources: Sources,
    /// How it waits when idle: sleep, linger after traffic, busy-poll.
    pub idle: IdlePolicy,
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
        results: Vec::with_capacity(BATCH),
        rx: RxDatagram {
            buf: vec![0; FRAME_CAPACITY],
            len: 0,
            segment: 0,
            offset: 0,
            from: SocketAddr::from(([0, 0, 0, 0], 0)),
        },
        queues: TxQueues::default(),
        output: Output::new(),
        run: Run::default(),
        run_headers: Vec::new(),
        gso: true,
        held: Vec::new(),
        published: Instant::now(),
        last_traffic: None,
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
    /// Results of the last io_uring batch.
    results: Vec<i32>,
    /// The last underlay read, possibly several datagrams (`UDP_GRO`).
    rx: RxDatagram,
    /// The queues of pending tap writes and datagrams, between batches.
    queues: TxQueues,
    /// The pipeline's output stage: merging, splitting, what goes where.
    output: Output,
    /// The run of one flow's segments found in the last underlay read.
    run: Run,
    /// The headers of the super-frame that carries `run`.
    run_headers: Vec<u8>,
    /// Whether UDP GSO sends work (cleared when the kernel refuses them).
    gso: bool,
    /// Later fragments that came before their datagram's first fragment.
    held: Vec<Held>,
    published: Instant,
    /// When a round last found traffic (for [`IdlePolicy::Linger`]).
    last_traffic: Option<Instant>,
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
        let wait = match self.io.idle.wait(self.last_traffic.map(|t| t.elapsed())) {
            Wait::Look { yield_first } => {
                if yield_first {
                    std::thread::yield_now();
                }
                Duration::ZERO
            }
            Wait::Sleep => WAIT,
        };
        if let Err(e) = self.io.sources.wait(&ports, &mut self.events, wait) {
            if e.kind() != ErrorKind::Interrupted {
                tracing::warn!(worker = self.io.index, error = %e, "waiting for traffic failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        if !self.events.is_empty() && matches!(self.io.idle, IdlePolicy::Linger(_)) {
            self.last_traffic = Some(Instant::now());
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
            // One shard of Service translations a round: every worker
            // sweeps, so all 16 are gone through within a second or two.
            shared.conntrack.sweep_translations(now_ms, 1);
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
        let mut rx = match self.io.sources.ring() {
            Some(uring) => TapRx::Uring {
                uring,
                token,
                queue,
                results: &mut self.results,
            },
            None => TapRx::Epoll(queue),
        };
        let got = rx.recv_batch(&mut self.frames);
        let n = got.frames;
        if got.failed {
            self.counters.io_errors += 1;
        }
        let tap = match ingress {
            Ingress::Port(port) => Tap::Pod(port),
            _ => Tap::Host,
        };
        let counters = port_counters(&mut self.counters, tap);
        for frame in &self.frames[..n] {
            counters.rx_packets += 1;
            counters.rx_bytes += frame.len().saturating_sub(virtio_net::LEN) as u64;
        }
        self.decide(shared, tables, n, |_| ingress, now_ms);
        self.emit(tables, ports, n, Some(tap));
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
                match UdpRx(fd).recv_gro(&mut self.rx.buf) {
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
        self.emit(tables, ports, n, None);
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
        // A peer's flag that it left the checksums partial (checked against
        // the peer when the pipeline decides the first datagram).
        let partial = vxlan::Vxlan::new_checked(read).is_ok_and(|h| h.partial_csum());
        gro_run::find(read, segment, vxlan::HEADER_LEN, partial, &mut self.run);
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
            self.emit(tables, ports, 1, None);
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
        let mut tx = worker_tx(
            &mut self.io,
            ports,
            &mut self.counters,
            &mut self.gso,
            &mut self.results,
            &mut self.queues,
        );
        tx.gathered(Tap::Pod(port), &iov, count as u64, bytes);
        tx.finish(&mut self.queues);
        drop(iov);
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
        self.emit(tables, ports, n, None);
    }

    /// Hands the first `n` frames to the output stage, as decided, and
    /// transmits what it asks for. `ingress`: the tap they came from.
    fn emit(&mut self, tables: &Tables, ports: &PortIo, n: usize, ingress: Option<Tap>) {
        let mut tx = worker_tx(
            &mut self.io,
            ports,
            &mut self.counters,
            &mut self.gso,
            &mut self.results,
            &mut self.queues,
        );
        let emitted = self.output.emit(
            tables,
            ingress,
            &self.frames[..n],
            &self.actions[..n],
            &mut tx,
        );
        tx.finish(&mut self.queues);
        if emitted.unsplittable > 0 {
            tracing::debug!(
                frames = emitted.unsplittable,
                "could not split an oversized frame"
            );
            self.counters.io_errors += emitted.unsplittable;
        }
    }
}

/// A worker's ports for transmitting a batch.
fn worker_tx<'a, 'f>(
    io: &'a mut WorkerIo,
    ports: &'a PortIo,
    counters: &'a mut WorkerCounters,
    gso: &'a mut bool,
    results: &'a mut Vec<i32>,
    queues: &mut TxQueues,
) -> WorkerTx<'a, 'f> {
    WorkerTx::new(
        io.index,
        ports,
        io.sources.ring().map(|uring| uring.ring()),
        Sockets {
            vxlan: &io.vxlan,
            udp: &io.udp,
            vxlan_senders: &io.vxlan_senders,
        },
        counters,
        gso,
        results,
        queues,
    )
}

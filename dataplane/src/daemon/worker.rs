//! A worker thread: it owns its buffers, its queue of every tap and its
//! underlay sockets; it reads a batch, decides it with the pipeline over the
//! current snapshot, and writes the batch out.
//!
//! The only shared state it touches per batch is two `ArcSwap` loads (tables,
//! port handles) and conntrack; its counters are its own and are published to
//! a slot a few times a second.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::{PortCounters, PortIo, Shared, WorkerCounters};
use crate::frame::Frame;
use crate::offload::{fragment, gso};
use crate::pipeline::encap::encapsulate;
use crate::pipeline::parse::ETH_LEN;
use crate::pipeline::{Action, Encap, Ingress, Pipeline, Split};
use crate::sys::epoll::Epoll;
use crate::sys::tap::TapQueue;
use crate::table::nexthop::PortId;
use crate::table::peers::Backend;
use crate::table::tables::Tables;
use crate::wire::virtio_net;

/// Frames read from one source before moving to the next (fairness).
pub const BATCH: usize = 64;
/// Room for the largest frame a tap hands over (a 64 KiB GSO super-frame and
/// its virtio-net header) or the largest UDP datagram.
const FRAME_CAPACITY: usize = 65_536 + virtio_net::LEN + ETH_LEN;
/// How often counters are published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Epoll token of the VXLAN socket.
pub const TOKEN_VXLAN: u64 = u64::MAX;
/// Epoll token of the flannel-UDP socket.
pub const TOKEN_UDP: u64 = u64::MAX - 1;
/// Epoll token of the host port's queue.
pub const TOKEN_HOST: u64 = u64::MAX - 2;

/// Epoll token of a pod port's queue.
pub fn port_token(port: PortId) -> u64 {
    u64::from(port.0)
}

/// What a worker owns.
#[derive(Debug)]
pub struct WorkerIo {
    /// The worker's index: the queue it owns on every tap.
    pub index: usize,
    /// Its epoll set (the control side adds and removes tap queues).
    pub epoll: Arc<Epoll>,
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
        scratch: Vec::new(),
        inner: Vec::new(),
        payload: Vec::new(),
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
    events: Vec<(u64, bool)>,
    scratch: Vec<u8>,
    inner: Vec<u8>,
    payload: Vec<u8>,
    published: Instant,
}

impl Worker {
    fn poll(&mut self, shared: &Shared, clock: Instant) {
        self.events.clear();
        if let Err(e) = self.io.epoll.wait(&mut self.events, 100) {
            if e.kind() != ErrorKind::Interrupted {
                tracing::warn!(worker = self.io.index, error = %e, "epoll wait failed");
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        let tables = shared.tables.load();
        let ports = shared.ports.load();
        let now_ms = clock.elapsed().as_millis() as u64;
        for i in 0..self.events.len() {
            let token = self.events[i].0;
            match token {
                TOKEN_VXLAN => self.read_underlay(shared, &tables, &ports, Backend::Vxlan, now_ms),
                TOKEN_UDP => self.read_underlay(shared, &tables, &ports, Backend::Udp, now_ms),
                TOKEN_HOST => {
                    if let Some(host) = ports.host.clone() {
                        self.read_tap(shared, &tables, &ports, Ingress::Host, &host.queues, now_ms);
                    }
                }
                id => {
                    let port = PortId(id as u32);
                    if let Some(handles) = ports.pods.get(&port).cloned() {
                        self.read_tap(
                            shared,
                            &tables,
                            &ports,
                            Ingress::Port(port),
                            &handles.queues,
                            now_ms,
                        );
                    }
                }
            }
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
        ingress: Ingress,
        queues: &[TapQueue],
        now_ms: u64,
    ) {
        let Some(queue) = queues.get(self.io.index) else {
            return;
        };
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
        self.decide(shared, tables, n, |_| ingress, now_ms);
        self.dispatch(tables, ports, n, Some(queue));
    }

    fn read_underlay(
        &mut self,
        shared: &Shared,
        tables: &Tables,
        ports: &PortIo,
        backend: Backend,
        now_ms: u64,
    ) {
        let mut n = 0;
        while n < BATCH {
            let socket = if backend == Backend::Vxlan {
                &self.io.vxlan
            } else {
                &self.io.udp
            };
            match socket.recv_from(self.frames[n].read_buffer()) {
                Ok((len, src)) => {
                    self.frames[n].set_len(len);
                    self.sources[n] = src;
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
        self.counters.underlay_rx += n as u64;
        let sources = self.sources.clone();
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
        self.dispatch(tables, ports, n, None);
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
            self.actions.push(action);
        }
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
        let index = self.io.index;
        for k in 0..n {
            let action = self.actions[k];
            match action {
                Action::Deliver(port) => {
                    let queue = ports.pods.get(&port).and_then(|h| h.queues.get(index));
                    self.write(queue, k, Some(port));
                }
                Action::ToHost => {
                    let queue = ports.host.as_ref().and_then(|h| h.queues.get(index));
                    self.write(queue, k, None);
                }
                Action::Reply => {
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
                    send(
                        &self.io,
                        &mut self.counters,
                        peer.backend,
                        encap,
                        self.frames[k].data(),
                    );
                }
                Action::EncapSplit(encap, split) => {
                    let Some(peer) = tables.peers.get(encap.peer) else {
                        continue;
                    };
                    self.split_and_send(peer.backend, tables.node.vni, encap, split, k);
                }
                Action::Drop(_) => {}
            }
        }
    }

    fn write(&mut self, queue: Option<&TapQueue>, k: usize, port: Option<PortId>) {
        let frame = self.frames[k].data();
        let written = queue.map(|q| q.write(frame));
        match written {
            Some(Ok(_)) => {
                let len = frame.len().saturating_sub(virtio_net::LEN) as u64;
                let counters = match port {
                    Some(port) => self.counters.ports.entry(port).or_default(),
                    None => &mut self.counters.host,
                };
                counters.tx_packets += 1;
                counters.tx_bytes += len;
            }
            _ => self.counters.io_errors += 1,
        }
    }

    /// Segments a GSO super-frame or fragments an IPv4 packet, then
    /// encapsulates and sends every part.
    fn split_and_send(&mut self, backend: Backend, vni: u32, encap: Encap, split: Split, k: usize) {
        let io = &self.io;
        let counters = &mut self.counters;
        let payload = &mut self.payload;
        let inner = &mut self.inner;
        let eth = self.frames[k].data().get(virtio_net::LEN..).unwrap_or(&[]);
        let mut emit = |part: &[u8]| {
            payload.clear();
            encapsulate(part, backend, vni, payload);
            send(io, counters, backend, encap, payload);
        };
        let result = match split {
            Split::Segment(hdr) => {
                gso::segment_tcp(eth, &hdr, &mut self.scratch, &mut emit).map_err(|e| e.to_string())
            }
            Split::Fragment(mtu) => {
                let (l2, ip) = eth.split_at(eth.len().min(ETH_LEN));
                fragment::fragment_ipv4(ip, mtu, &mut self.scratch, |piece| {
                    inner.clear();
                    inner.extend_from_slice(l2);
                    inner.extend_from_slice(piece);
                    emit(inner);
                })
                .map_err(|e| e.to_string())
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "could not split an oversized frame");
            self.counters.io_errors += 1;
        }
    }
}

/// Sends one encapsulated payload to a peer: VXLAN from the sender socket the
/// flow hash picks, flannel UDP from the UDP socket.
fn send(
    io: &WorkerIo,
    counters: &mut WorkerCounters,
    backend: Backend,
    encap: Encap,
    payload: &[u8],
) {
    let socket = match backend {
        Backend::Vxlan if !io.vxlan_senders.is_empty() => {
            &io.vxlan_senders[encap.flow_hash as usize % io.vxlan_senders.len()]
        }
        Backend::Vxlan => &io.vxlan,
        Backend::Udp => &io.udp,
    };
    match socket.send_to(payload, encap.dst) {
        Ok(_) => counters.underlay_tx += 1,
        Err(_) => counters.io_errors += 1,
    }
}

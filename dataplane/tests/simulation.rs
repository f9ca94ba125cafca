//! A seeded simulation: two dataplanes (each its own tables, conntrack and
//! output stage) joined by an in-memory underlay that loses, duplicates and
//! reorders datagrams, carrying a TCP-like stream each way between a pod on
//! node A and a pod on node B. The pods hand their taps what a Linux pod
//! does: GSO super-frames with a virtio-net header and a partial checksum,
//! plain frames with a full or a partial checksum. The receiving pod's tap
//! must get every byte, in the right place, with checksums that verify or
//! are correctly marked partial; lost segments are sent again, as TCP would
//! (an oracle stands in for the ACKs).
//!
//! Deterministic per seed; a failure prints its seed, and
//! `TWEED_SIM_SEED=<seed>` runs that one alone. No root, no clock.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use tweed_dataplane::frame::Frame;
use tweed_dataplane::offload::checksum;
use tweed_dataplane::offload::udp_gro;
use tweed_dataplane::pipeline::output::Output;
use tweed_dataplane::pipeline::{Action, Counters, Ingress, Pipeline};
use tweed_dataplane::port::memory::{Datagram, MemPorts, MemTap, MemUnderlay};
use tweed_dataplane::port::seam::{RxPort, Tap, UnderlayRx};
use tweed_dataplane::table::acl::Classifier;
use tweed_dataplane::table::conntrack::{Conntrack, ConntrackConfig};
use tweed_dataplane::table::endpoints::{Endpoint, Mac};
use tweed_dataplane::table::nexthop::PortId;
use tweed_dataplane::table::peers::{Backend, Peer};
use tweed_dataplane::table::tables::{NodeConfig, Tables, TablesWriter};
use tweed_dataplane::wire::virtio_net::{self, F_NEEDS_CSUM, GSO_TCPV4, VirtioNetHdr};
use tweed_dataplane::wire::vxlan::Vxlan;

const GW_MAC: Mac = [0xee, 0xee, 0xee, 0xee, 0xee, 0x01];
const HOST_MAC: Mac = [0x02, 0, 0, 0, 0, 0xfe];
const MTU: u16 = 1450;
/// The MSS a pod's kernel uses under that MTU (IPv4, no TCP options).
const MSS: usize = MTU as usize - 40;
const VXLAN_PORT: u16 = 4789;
const UDP_PORT: u16 = 8285;
const POD: PortId = PortId(0);
const BATCH: usize = 64;
/// Rounds of (re)transmission before the simulation gives up.
const ROUNDS: usize = 200;

/// A node of the simulation.
struct Spec {
    name: &'static str,
    underlay: Ipv4Addr,
    vtep: Mac,
    subnet: &'static str,
    pod: Ipv4Addr,
    pod_mac: Mac,
}

const A: Spec = Spec {
    name: "node-a",
    underlay: Ipv4Addr::new(192, 168, 0, 1),
    vtep: [0x02, 0, 0, 0, 1, 1],
    subnet: "10.244.1.0/24",
    pod: Ipv4Addr::new(10, 244, 1, 2),
    pod_mac: [0x02, 0, 0, 0, 0, 0x0a],
};

const B: Spec = Spec {
    name: "node-b",
    underlay: Ipv4Addr::new(192, 168, 0, 2),
    vtep: [0x02, 0, 0, 0, 2, 2],
    subnet: "10.244.2.0/24",
    pod: Ipv4Addr::new(10, 244, 2, 7),
    pod_mac: [0x02, 0, 0, 0, 0, 0x0b],
};

/// xorshift64*: enough randomness for a simulation, no crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One dataplane: its tables and conntrack, the output stage, its ports.
struct Node {
    tables: Arc<Tables>,
    conntrack: Conntrack,
    output: Output,
    ports: MemPorts,
    pod: MemTap,
    underlay: MemUnderlay,
    backend: Backend,
    frames: Vec<Frame>,
    actions: Vec<Action>,
    counters: Counters,
}

impl Node {
    fn new(me: &Spec, peer: &Spec, backend: Backend, partial: bool) -> Self {
        let mut writer = TablesWriter::new(NodeConfig {
            gateway_mac: GW_MAC,
            vtep_mac: me.vtep,
            host_mac: HOST_MAC,
            vni: 1,
            vxlan_port: VXLAN_PORT,
            udp_port: UDP_PORT,
            overlay_mtu: MTU,
            underlay_ip: Some(IpAddr::V4(me.underlay)),
            service_cidrs: Vec::new(),
        });
        writer
            .upsert_endpoint(Endpoint {
                port: POD,
                name: format!("default/pod-on-{}", me.name),
                mac: me.pod_mac,
                ipv4: Some(me.pod),
                ipv6: None,
                identity: 100,
                ingress: Arc::new(Classifier::allow_all()),
                egress: Arc::new(Classifier::allow_all()),
                rule_names: Default::default(),
            })
            .expect("the pod's endpoint");
        writer
            .upsert_peer(Peer {
                name: peer.name.into(),
                subnets: vec![peer.subnet.parse().expect("a subnet")],
                underlay_ip: IpAddr::V4(peer.underlay),
                vtep_mac: peer.vtep,
                backend,
                source_ports: None,
                partial_checksums: partial,
            })
            .expect("the peer");
        Node {
            tables: writer.publish(),
            conntrack: Conntrack::new(ConntrackConfig::new(1024, [1, 2, 3, 4])),
            output: Output::new(),
            ports: MemPorts::new(IpAddr::V4(me.underlay), VXLAN_PORT, UDP_PORT),
            pod: MemTap::default(),
            underlay: MemUnderlay::default(),
            backend,
            frames: (0..BATCH).map(|_| Frame::with_capacity(70_000)).collect(),
            actions: Vec::with_capacity(BATCH),
            counters: Counters::default(),
        }
    }

    /// Reads what the pod sent in batches of random size and passes it on.
    fn read_pod(&mut self, rng: &mut Rng) {
        loop {
            let size = rng.range(1, BATCH);
            let got = self.pod.recv_batch(&mut self.frames[..size]);
            assert!(!got.failed, "a frame larger than a buffer");
            if got.frames == 0 {
                return;
            }
            self.decide_and_emit(got.frames, |_| Ingress::Port(POD), Some(Tap::Pod(POD)));
        }
    }

    /// Reads the underlay as a `UDP_GRO` socket would hand it over, splits
    /// the reads into datagrams and decides them in batches of random size.
    fn read_underlay(&mut self, rng: &mut Rng) {
        let mut read = vec![0; 70_000];
        let mut sources: Vec<SocketAddr> = Vec::with_capacity(BATCH);
        loop {
            let size = rng.range(1, BATCH);
            sources.clear();
            while sources.len() < size {
                let got = match self.underlay.recv_gro(&mut read) {
                    Ok(got) => got,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("the in-memory underlay failed: {e}"),
                };
                for datagram in udp_gro::datagrams(&read[..got.len], got.segment) {
                    // A batch may grow past `size` by the rest of a read.
                    if sources.len() == self.frames.len() {
                        self.frames.push(Frame::with_capacity(70_000));
                    }
                    let frame = &mut self.frames[sources.len()];
                    frame.read_buffer()[..datagram.len()].copy_from_slice(datagram);
                    frame.set_len(datagram.len());
                    sources.push(got.from);
                }
            }
            if sources.is_empty() {
                return;
            }
            let backend = self.backend;
            let ingress = |k: usize| Ingress::Underlay {
                backend,
                src: sources[k],
            };
            self.decide_and_emit(sources.len(), ingress, None);
        }
    }

    fn decide_and_emit(&mut self, n: usize, ingress: impl Fn(usize) -> Ingress, tap: Option<Tap>) {
        let pipeline = Pipeline::new(&self.tables, &self.conntrack, 1_000);
        self.actions.clear();
        for k in 0..n {
            let action = pipeline.process(ingress(k), &mut self.frames[k], &mut self.counters);
            assert!(
                !matches!(action, Action::Drop(_) | Action::Hold),
                "frame {k} of a batch: {action:?}"
            );
            self.actions.push(action);
        }
        let emitted = self.output.emit(
            &self.tables,
            tap,
            &self.frames[..n],
            &self.actions,
            &mut self.ports,
        );
        assert_eq!(emitted.unsplittable, 0, "every super-frame splits");
    }
}

/// One direction's stream: what the sending pod sends, what the receiving
/// pod got.
struct Stream {
    data: Vec<u8>,
    isn: u32,
    from: &'static Spec,
    to: &'static Spec,
    sport: u16,
    dport: u16,
    got: Vec<bool>,
}

impl Stream {
    fn new(rng: &mut Rng, from: &'static Spec, to: &'static Spec, sport: u16) -> Self {
        let len = rng.range(50_000, 400_000);
        let data = (0..len).map(|_| rng.next() as u8).collect();
        Stream {
            data,
            isn: rng.next() as u32,
            from,
            to,
            sport,
            dport: 80,
            got: vec![false; len],
        }
    }

    fn done(&self) -> bool {
        self.got.iter().all(|&g| g)
    }

    /// The byte ranges the receiver has not got (what its ACKs and SACKs
    /// would ask for again).
    fn missing(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.got.len() {
            if self.got[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < self.got.len() && !self.got[i] {
                i += 1;
            }
            out.push((start, i));
        }
        out
    }

    /// Hands the sending pod's tap the missing bytes, cut the way a pod's
    /// kernel might: GSO super-frames and single segments, full and partial
    /// checksums, some with PSH.
    fn send(&self, rng: &mut Rng, tap: &mut MemTap) {
        for (start, end) in self.missing() {
            let mut at = start;
            while at < end {
                let left = end - at;
                let gso = left > MSS && rng.chance(60);
                let len = if gso {
                    rng.range(MSS + 1, left.min(60_000))
                } else {
                    rng.range(1, left.min(MSS))
                };
                let partial = gso || rng.chance(50);
                let psh = rng.chance(20);
                tap.inbox.push_back(self.frame(at, len, gso, partial, psh));
                at += len;
            }
        }
    }

    /// A tap frame carrying `len` bytes of the stream from `at`.
    fn frame(&self, at: usize, len: usize, gso: bool, partial: bool, psh: bool) -> Vec<u8> {
        let seq = self.isn.wrapping_add(at as u32);
        let builder = PacketBuilder::ethernet2(self.from.pod_mac, GW_MAC)
            .ipv4(self.from.pod.octets(), self.to.pod.octets(), 64)
            .tcp(self.sport, self.dport, seq, 64_000)
            .ack(7);
        let builder = if psh { builder.psh() } else { builder };
        let mut eth = Vec::new();
        builder
            .write(&mut eth, &self.data[at..at + len])
            .expect("a valid frame");
        let tcp = 14 + 20;
        let mut hdr = VirtioNetHdr::default();
        if partial {
            // What Linux leaves in the field: the folded pseudo-header sum.
            let pseudo = checksum::pseudo_header_v4(
                self.from.pod.octets(),
                self.to.pod.octets(),
                6,
                (eth.len() - tcp) as u32,
            );
            eth[tcp + 16..tcp + 18].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
            hdr.flags = F_NEEDS_CSUM;
            hdr.csum_start = tcp as u16;
            hdr.csum_offset = 16;
        }
        if gso {
            hdr.gso_type = GSO_TCPV4;
            hdr.gso_size = MSS as u16;
            hdr.hdr_len = (tcp + 20) as u16;
        }
        let mut frame = hdr.to_bytes().to_vec();
        frame.extend_from_slice(&eth);
        frame
    }

    /// Checks a frame the receiving pod's tap got and marks its bytes.
    /// Returns whether it was a (merged) super-frame.
    fn receive(&mut self, frame: &[u8], seed: u64) -> bool {
        let hdr = VirtioNetHdr::parse(frame).expect("a virtio-net header");
        let mut eth = frame[virtio_net::LEN..].to_vec();
        if hdr.gso_type != 0 {
            assert_eq!(hdr.gso_type, GSO_TCPV4, "seed {seed}");
            // The merged segments' size: at most the MSS they were cut to.
            let size = usize::from(hdr.gso_size);
            assert!((1..=MSS).contains(&size), "seed {seed}: gso_size {size}");
        }
        if hdr.flags & F_NEEDS_CSUM != 0 {
            assert_eq!((hdr.csum_start, hdr.csum_offset), (34, 16), "seed {seed}");
            checksum::complete_partial(&mut eth, 34, 16).expect("the checksum completes");
        } else {
            assert_eq!(hdr.gso_type, 0, "seed {seed}: GSO needs a partial checksum");
        }
        let packet = SlicedPacket::from_ethernet(&eth).expect("the frame parses");
        let Some(NetSlice::Ipv4(ip)) = &packet.net else {
            panic!("seed {seed}: not IPv4")
        };
        let header = ip.header().to_header();
        assert_eq!(
            header.header_checksum,
            header.calc_header_checksum(),
            "seed {seed}: IPv4 header checksum"
        );
        assert_eq!(header.source, self.from.pod.octets());
        assert_eq!(header.destination, self.to.pod.octets());
        assert!(
            header.time_to_live < 64,
            "seed {seed}: routed, so the TTL went down"
        );
        let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
            panic!("seed {seed}: not TCP")
        };
        let tcp_bytes = &eth[34..34 + usize::from(header.total_len) - 20];
        let pseudo = checksum::pseudo_header_v4(
            header.source,
            header.destination,
            6,
            tcp_bytes.len() as u32,
        );
        assert_eq!(
            checksum::finish(checksum::sum(tcp_bytes, pseudo)),
            0,
            "seed {seed}: TCP checksum"
        );
        assert_eq!(
            (tcp.source_port(), tcp.destination_port()),
            (self.sport, self.dport)
        );
        let at = tcp.sequence_number().wrapping_sub(self.isn) as usize;
        let payload = tcp.payload();
        assert!(
            at + payload.len() <= self.data.len(),
            "seed {seed}: beyond the stream"
        );
        assert!(
            payload == &self.data[at..at + payload.len()],
            "seed {seed}: bytes {at}..{} differ",
            at + payload.len()
        );
        self.got[at..at + payload.len()].fill(true);
        hdr.gso_type != 0
    }
}

/// What a run saw, for checks across seeds.
#[derive(Default)]
struct Seen {
    merged: u64,
    coalesced: u64,
    gso_sends: u64,
    /// VXLAN datagrams flagged as carrying a partial inner checksum.
    flagged: u64,
}

/// Prints the seed of a failing run.
struct SeedGuard(u64, Backend, bool);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "simulation failed: seed {} ({:?}, partial checksums {}); rerun with TWEED_SIM_SEED={}",
                self.0, self.1, self.2, self.0
            );
        }
    }
}

/// Runs seed `seed` over `backend`, the nodes telling each other that they
/// accept partial inner checksums if `partial`.
fn simulate(seed: u64, backend: Backend, partial: bool) -> Seen {
    let _guard = SeedGuard(seed, backend, partial);
    let mut rng = Rng::new(seed);
    let mut a = Node::new(&A, &B, backend, partial);
    let mut b = Node::new(&B, &A, backend, partial);
    let mut to_b = Stream::new(&mut rng, &A, &B, 40_000);
    let mut to_a = Stream::new(&mut rng, &B, &A, 40_001);
    let loss = rng.range(0, 5) as u64;
    let mut seen = Seen::default();
    let mut rounds = 0;
    for _ in 0..ROUNDS {
        if to_b.done() && to_a.done() {
            break;
        }
        rounds += 1;
        to_b.send(&mut rng, &mut a.pod);
        to_a.send(&mut rng, &mut b.pod);
        a.read_pod(&mut rng);
        b.read_pod(&mut rng);
        let mut wire: Vec<Datagram> = Vec::new();
        wire.append(&mut a.ports.sent);
        wire.append(&mut b.ports.sent);
        seen.gso_sends = a.ports.gso_sends + b.ports.gso_sends;
        // The underlay: loss, duplicates, reordering within a window.
        let mut carried = Vec::with_capacity(wire.len());
        for d in wire {
            if backend == Backend::Vxlan
                && Vxlan::new_checked(&d.bytes[..]).is_ok_and(|h| h.partial_csum())
            {
                assert!(
                    partial,
                    "seed {seed}: a flagged datagram to a full-checksum peer"
                );
                seen.flagged += 1;
            }
            if rng.chance(loss) {
                continue;
            }
            if rng.chance(1) {
                carried.push(d.clone());
            }
            carried.push(d);
        }
        for i in 0..carried.len() {
            if rng.chance(10) {
                let j = (i + rng.range(1, 8)).min(carried.len() - 1);
                carried.swap(i, j);
            }
        }
        let (for_a, for_b): (Vec<Datagram>, Vec<Datagram>) = carried
            .into_iter()
            .partition(|d| d.to.ip() == IpAddr::V4(A.underlay));
        for d in for_a.iter().chain(&for_b) {
            let port = match backend {
                Backend::Vxlan => VXLAN_PORT,
                Backend::Udp => UDP_PORT,
            };
            assert_eq!(d.to.port(), port, "seed {seed}: the peer's port");
            assert!(
                d.bytes.len() <= usize::from(MTU) + 50,
                "seed {seed}: a datagram over the MTU"
            );
        }
        a.underlay.inbox.extend(for_a);
        b.underlay.inbox.extend(for_b);
        a.read_underlay(&mut rng);
        b.read_underlay(&mut rng);
        seen.coalesced = a.underlay.coalesced + b.underlay.coalesced;
        for (node, stream) in [(&mut b, &mut to_b), (&mut a, &mut to_a)] {
            let frames = node
                .ports
                .written
                .remove(&Tap::Pod(POD))
                .unwrap_or_default();
            for frame in frames {
                if stream.receive(&frame, seed) {
                    seen.merged += 1;
                }
            }
            assert!(
                node.ports.written.is_empty(),
                "seed {seed}: frames to another tap"
            );
        }
    }
    assert!(
        to_b.done() && to_a.done(),
        "seed {seed}: streams incomplete after {ROUNDS} rounds ({} and {} ranges missing)",
        to_b.missing().len(),
        to_a.missing().len()
    );
    eprintln!(
        "seed {seed} ({backend:?}): {} and {} bytes, {loss}% loss, {rounds} rounds, \
         {} GSO sends, {} coalesced reads, {} merged frames to the pods",
        to_b.data.len(),
        to_a.data.len(),
        seen.gso_sends,
        seen.coalesced,
        seen.merged
    );
    for node in [&a, &b] {
        assert_eq!(
            node.counters.drops.iter().sum::<u64>(),
            0,
            "seed {seed}: drops"
        );
    }
    seen
}

fn seeds() -> Vec<u64> {
    match std::env::var("TWEED_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TWEED_SIM_SEED is a number")],
        Err(_) => (1..=8).collect(),
    }
}

fn run(backend: Backend, partial: bool) {
    let mut total = Seen::default();
    for seed in seeds() {
        let seen = simulate(seed, backend, partial);
        total.merged += seen.merged;
        total.gso_sends += seen.gso_sends;
        total.coalesced += seen.coalesced;
        total.flagged += seen.flagged;
    }
    assert_eq!(
        total.flagged > 0,
        partial,
        "partial inner checksums are flagged exactly when the peer accepts them"
    );
    assert!(
        total.gso_sends > 0,
        "super-frames left as gathered GSO sends"
    );
    assert!(total.coalesced > 0, "underlay reads held several datagrams");
    assert!(
        total.merged > 0,
        "segments were merged for the receiving pod"
    );
}

#[test]
fn a_stream_crosses_a_lossy_reordering_vxlan_underlay_intact() {
    run(Backend::Vxlan, false);
}

#[test]
fn a_stream_crosses_a_lossy_reordering_vxlan_underlay_intact_with_partial_checksums() {
    run(Backend::Vxlan, true);
}

#[test]
fn a_stream_crosses_a_lossy_reordering_flannel_udp_underlay_intact() {
    run(Backend::Udp, false);
}

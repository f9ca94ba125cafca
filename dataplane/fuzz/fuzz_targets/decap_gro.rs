//! One `UDP_GRO` read of an underlay socket, as a worker handles it: split
//! into datagrams at the segment size the kernel reported (not trusted),
//! each copied into a frame and decided as coming from the underlay, later
//! fragments held and decided again, and frames for a pod merged into TCP
//! super-frames (GRO) as the worker does before writing them to the tap.
//!
//! Input: byte 0 picks the sender (peer `vx`, `udp`, `kvx` or an unknown
//! address; bit 2 swaps the socket's backend), bytes 1-2 are the segment
//! size and bytes 3-4 the source port (little-endian); the rest is the
//! read. The node is [`tweed_fuzz::world`].
//!
//! Beyond "nothing panics", what decapsulation promises (the underlay
//! module's contract, issue 12's injection hole):
//! - a frame is delivered only from a known peer's underlay address, on
//!   the backend it speaks, from a source port its dataplane sends from,
//!   and with an inner source inside that peer's subnets;
//! - nothing from the underlay is encapsulated again (no relaying) or
//!   answered;
//! - a merged super-frame is a well-formed GSO frame for the pod;
//! - a run the worker decides once ([`gro_run`]) gets the verdict each of
//!   its segments gets on its own, and the super-frame it writes is byte
//!   for byte what merging the separately decided segments gives.

#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use tweed_dataplane::frame::Frame;
use tweed_dataplane::offload::gro::TcpGro;
use tweed_dataplane::offload::gro_run::{self, Run};
use tweed_dataplane::offload::udp_gro;
use tweed_dataplane::pipeline::{Action, Counters, Ingress, Pipeline};
use tweed_dataplane::table::nexthop::PortId;
use tweed_dataplane::table::peers::Backend;
use tweed_dataplane::wire::virtio_net::{self, VirtioNetHdr};
use tweed_dataplane::wire::vxlan;
use tweed_fuzz::world;

/// The worker's frame size: a 64 KiB datagram plus the headers
/// decapsulation prepends.
const FRAME_CAPACITY: usize = 65_536 + virtio_net::LEN + 14;

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::with_capacity(FRAME_CAPACITY));
}

/// The inner source address of a frame for a tap (virtio-net header +
/// Ethernet + IP).
fn inner_source(frame: &[u8]) -> Option<IpAddr> {
    let ip = frame.get(virtio_net::LEN + 14..)?;
    match ip.first()? >> 4 {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?)),
        6 => Some(IpAddr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?)),
        _ => None,
    }
}

/// Checks a delivered frame against the decapsulation contract.
fn check_delivered(backend: Backend, src: SocketAddr, frame: &[u8]) {
    let tables = &world().tables;
    let (_, peer) = tables
        .peers
        .by_underlay(src.ip())
        .expect("delivered from a known peer's address");
    assert_eq!(peer.backend, backend, "delivered on the peer's backend");
    match backend {
        Backend::Udp => assert_eq!(src.port(), tables.node.udp_port, "from the UDP port"),
        Backend::Vxlan => assert!(
            peer.source_ports.is_none_or(|r| r.contains(src.port())),
            "from a published VXLAN source port"
        ),
    }
    let inner = inner_source(frame).expect("an IP packet is delivered");
    assert!(
        peer.subnets.iter().any(|net| net.contains(&inner)),
        "inner source {inner} is not the sending peer's {}",
        peer.name
    );
}

/// Checks a super-frame GRO produced: a virtio-net header asking for TCP
/// segmentation at a non-zero size, or a single frame as it was.
fn check_merged(frame: &[u8], segments: usize) {
    if segments <= 1 {
        return;
    }
    let hdr = VirtioNetHdr::parse(frame).expect("a merged frame has a virtio-net header");
    assert!(hdr.gso_size > 0, "a merged frame names its segment size");
    assert!(
        frame.len() <= virtio_net::LEN + 14 + 0xffff,
        "within one IP packet"
    );
}

/// The worker's pod-bound GRO: merge consecutive frames for one port.
#[derive(Default)]
struct Merge {
    gro: TcpGro,
    port: Option<PortId>,
}

impl Merge {
    fn deliver(&mut self, port: PortId, frame: &[u8]) {
        if self.port == Some(port) && self.gro.push(frame) {
            return;
        }
        self.flush();
        if self.gro.push(frame) {
            self.port = Some(port);
        }
    }

    fn flush(&mut self) {
        if self.port.take().is_none() {
            return;
        }
        let segments = self.gro.segments();
        if let Some(frame) = self.gro.flush() {
            if tweed_fuzz::verbose() {
                eprintln!("to the pod: {} bytes, {segments} segments", frame.len());
            }
            check_merged(frame, segments);
        }
    }
}

fn decide(
    pipeline: &Pipeline<'_>,
    ingress: Ingress,
    datagram: &[u8],
    counters: &mut Counters,
    merge: &mut Merge,
) -> Option<Vec<u8>> {
    let Ingress::Underlay { backend, src } = ingress else {
        unreachable!("underlay only")
    };
    FRAME.with_borrow_mut(|frame| {
        // As the worker copies a datagram into its frame.
        let buffer = frame.read_buffer();
        let len = datagram.len().min(buffer.len());
        buffer[..len].copy_from_slice(&datagram[..len]);
        frame.set_len(len);
        let action = pipeline.process(ingress, frame, counters);
        if tweed_fuzz::verbose() {
            eprintln!("{} bytes from {src}: {action:?}", datagram.len());
        }
        match action {
            Action::Deliver(port) => {
                check_delivered(backend, src, frame.data());
                merge.deliver(port, frame.data());
                None
            }
            Action::Hold => Some(datagram.to_vec()),
            Action::ToHost | Action::Drop(_) => None,
            action @ (Action::Encap(_) | Action::EncapSplit(..) | Action::Reply) => {
                panic!("a frame from the underlay must not come to {action:?}")
            }
        }
    })
}

/// Checks the run at the start of `read` (VXLAN only) against deciding its
/// segments one by one.
fn check_run(pipeline: &Pipeline<'_>, ingress: Ingress, read: &[u8], segment: usize) {
    let Ingress::Underlay {
        backend: Backend::Vxlan,
        ..
    } = ingress
    else {
        return;
    };
    let mut run = Run::default();
    // As the worker does: the first datagram's flag says whether the
    // sender left the checksums partial.
    let partial = vxlan::Vxlan::new_checked(read).is_ok_and(|h| h.partial_csum());
    gro_run::find(read, segment, vxlan::HEADER_LEN, partial, &mut run);
    if run.count < 2 {
        return;
    }
    let mut counters = Counters::default();
    let mut gro = TcpGro::new();
    let mut first = None;
    let mut headers = Vec::new();
    for datagram in udp_gro::datagrams(read, segment).take(run.count) {
        let mut frame = Frame::with_capacity(FRAME_CAPACITY);
        let buffer = frame.read_buffer();
        let len = datagram.len().min(buffer.len());
        buffer[..len].copy_from_slice(&datagram[..len]);
        frame.set_len(len);
        let action = pipeline.process(ingress, &mut frame, &mut counters);
        match first {
            None => {
                first = Some(action);
                if let Action::Deliver(_) = action {
                    assert!(
                        gro_run::super_headers(frame.data(), &run, &mut headers),
                        "the decided first segment gives the run's headers"
                    );
                }
            }
            Some(verdict) => assert_eq!(action, verdict, "a run's segments share a verdict"),
        }
        if let Action::Deliver(_) = action {
            assert!(gro.push(frame.data()), "a run's segment merges");
        }
    }
    if tweed_fuzz::verbose() {
        eprintln!("a run of {} decided once: {first:?}", run.count);
    }
    if let Some(Action::Deliver(_)) = first {
        let merged = gro.flush().expect("merged");
        let mut rebuilt = headers;
        for p in &run.payloads {
            rebuilt.extend_from_slice(&read[p.clone()]);
        }
        assert!(rebuilt == merged, "the run's super-frame is the merged one");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, read)) = data.split_first_chunk::<5>() else {
        return;
    };
    let [selector, s0, s1, p0, p1] = *head;
    let segment = usize::from(u16::from_le_bytes([s0, s1]));
    let port = u16::from_le_bytes([p0, p1]);
    let (ip, backend) = match selector & 3 {
        0 => ([192, 168, 0, 2], Backend::Vxlan),
        1 => ([192, 168, 0, 3], Backend::Udp),
        2 => ([192, 168, 0, 4], Backend::Vxlan),
        _ => ([192, 168, 0, 9], Backend::Vxlan),
    };
    let backend = match (selector & 4 != 0, backend) {
        (false, b) => b,
        (true, Backend::Vxlan) => Backend::Udp,
        (true, Backend::Udp) => Backend::Vxlan,
    };
    let ingress = Ingress::Underlay {
        backend,
        src: SocketAddr::from((ip, port)),
    };
    let world = world();
    let now = u64::from(selector >> 3) * 1000;
    let pipeline = Pipeline::new(&world.tables, &world.conntrack, now);
    let mut counters = Counters::default();
    let mut merge = Merge::default();
    let mut held = Vec::new();
    for datagram in udp_gro::datagrams(read, segment) {
        assert!(!datagram.is_empty(), "no empty datagram from a read");
        held.extend(decide(
            &pipeline,
            ingress,
            datagram,
            &mut counters,
            &mut merge,
        ));
    }
    merge.flush();
    check_run(&pipeline, ingress, read, segment);
    // The worker decides held fragments again after the batch.
    for datagram in held {
        decide(&pipeline, ingress, &datagram, &mut counters, &mut merge);
    }
    merge.flush();
});

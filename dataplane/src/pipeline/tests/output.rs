//! The output stage: what a batch's actions ask of the ports (recorded by
//! the in-memory ports).

use super::*;
use crate::pipeline::output::Output;
use crate::port::memory::MemPorts;
use crate::port::seam::Tap;
use crate::wire::virtio_net::{F_NEEDS_CSUM, GSO_TCPV4, VirtioNetHdr};

/// Decides `inputs` as one batch from `ingress` and records what the output
/// stage transmits.
fn emit(fx: &Fixture, ingress: Ingress, tap_in: Option<Tap>, inputs: &[Vec<u8>]) -> MemPorts {
    let mut frames: Vec<Frame> = inputs.iter().map(|b| Frame::from_bytes(b)).collect();
    let mut counters = Counters::default();
    let pipeline = fx.pipeline();
    let actions: Vec<Action> = frames
        .iter_mut()
        .map(|f| pipeline.process(ingress, f, &mut counters))
        .collect();
    let mut ports = MemPorts::new(IpAddr::V4(NODE1), 4789, 8285);
    let emitted = Output::new().emit(&fx.tables, tap_in, &frames, &actions, &mut ports);
    assert_eq!(emitted.unsplittable, 0);
    ports
}

/// An established-flow TCP segment from pod A carrying `payload` at `seq`.
fn segment(dst: Ipv4Addr, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW_MAC)
        .ipv4(POD_A.octets(), dst.octets(), 64)
        .tcp(40000, 80, seq, 64000)
        .ack(1)
        .write(&mut out, payload)
        .unwrap();
    tap(out)
}

#[test]
fn a_super_frame_for_a_peer_leaves_as_one_plan_after_the_datagram_before_it() {
    let fx = Fixture::new();
    let payload: Vec<u8> = (0..5000).map(|i| i as u8).collect();
    let mut super_frame = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: 1398,
        csum_start: 34,
        csum_offset: 16,
    }
    .to_bytes()
    .to_vec();
    super_frame.extend_from_slice(&segment(REMOTE_VX, 100, &payload)[10..]);
    let first = segment(REMOTE_VX, 99, b"x");
    let ports = emit(
        &fx,
        Ingress::Port(PORT_A),
        Some(Tap::Pod(PORT_A)),
        &[first, super_frame],
    );
    assert_eq!(ports.gso_sends, 1, "one gathered GSO send");
    assert_eq!(
        ports.sent.len(),
        1 + 4,
        "the datagram, then 5000 bytes in 1398-byte segments"
    );
    let mut carried = Vec::new();
    for d in &ports.sent {
        assert_eq!(d.to, SocketAddr::new(IpAddr::V4(NODE2), 4789));
        let packet = sliced(&d.bytes[8..]);
        let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
            panic!("not TCP")
        };
        carried.extend_from_slice(tcp.payload());
    }
    assert_eq!(carried[0], b'x', "the earlier datagram leaves first");
    assert_eq!(carried[1..], payload);
}

#[test]
fn consecutive_segments_to_a_pod_are_merged_and_a_reply_goes_back_where_it_came_from() {
    let fx = Fixture::new();
    let seg = |seq: u32| {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_A, GW_MAC)
            .ipv4(POD_A.octets(), POD_B.octets(), 64)
            .tcp(40000, 80, seq, 64000)
            .ack(1)
            .write(&mut out, &[seq as u8; 1000])
            .unwrap();
        tap(out)
    };
    let ping = {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_A, GW_MAC)
            .ipv4(POD_A.octets(), [169, 254, 1, 1], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut out, b"ping")
            .unwrap();
        tap(out)
    };
    let ports = emit(
        &fx,
        Ingress::Port(PORT_A),
        Some(Tap::Pod(PORT_A)),
        &[seg(1), seg(1001), seg(2001), ping],
    );
    let to_b = &ports.written[&Tap::Pod(PORT_B)];
    assert_eq!(to_b.len(), 1, "one merged super-frame");
    assert_eq!(ports.packets[&Tap::Pod(PORT_B)], 3);
    let hdr = VirtioNetHdr::parse(&to_b[0]).unwrap();
    assert_eq!((hdr.gso_type, hdr.gso_size), (GSO_TCPV4, 1000));
    assert_eq!(ports.written[&Tap::Pod(PORT_A)].len(), 1, "the echo reply");
    assert!(ports.sent.is_empty());
}

//! Frames the offload tests share (test builds only).

use etherparse::PacketBuilder;

use crate::wire::virtio_net::{F_NEEDS_CSUM, GSO_TCPV4, VirtioNetHdr};

/// An IPv4 TCP super-frame (Ethernet, no options) carrying `len` payload
/// bytes of a repeating pattern, and the virtio-net header a tap hands over
/// with it asking for segments of `mss` bytes.
pub(crate) fn tcp4_super_frame(len: usize, mss: u16) -> (Vec<u8>, VirtioNetHdr) {
    let payload: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 244, 1, 2], [10, 244, 2, 5], 64)
        .tcp(40000, 80, 1000, 64000)
        .ack(9)
        .write(&mut frame, &payload)
        .expect("a valid frame");
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: 54,
        gso_size: mss,
        csum_start: 34,
        csum_offset: 16,
    };
    (frame, hdr)
}

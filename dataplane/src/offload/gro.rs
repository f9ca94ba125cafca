//! TCP receive coalescing (GRO) for frames on their way to a pod's tap: the
//! inverse of [`super::gso::segment_each`].
//!
//! Segments that arrive from the underlay one MTU at a time would cost the
//! pod's kernel one trip through its stack each. [`TcpGro`] merges
//! consecutive segments of one TCP flow into a super-frame that the tap
//! accepts with a virtio-net header (`gso_type` TCPV4/TCPV6, `gso_size` = the
//! MSS, `NEEDS_CSUM`), as Linux's `tcp_gro_receive` and wireguard-go's tun
//! GRO do. The pod's kernel then sees one large segment, exactly as if its
//! peer had sent it over a local veth.
//!
//! A segment joins the open super-frame only if all of this holds (anything
//! else is refused, and the caller writes the frame as it is):
//!
//! - the virtio-net header asks for no GSO, and for no partial checksum or
//!   one at the TCP checksum (a peer's segment handed over as a NIC would:
//!   see [`crate::wire::vxlan::FLAG_PARTIAL_CSUM`]);
//! - Ethernet II without VLAN tags, identical to the first segment's;
//! - IPv4 without options, not a fragment, with the same addresses, TOS,
//!   TTL and DF bit; without DF the identification increments by one per
//!   segment. IPv6 without extension headers, with the same addresses,
//!   traffic class, flow label and hop limit;
//! - TCP with the same ports, acknowledgment number, window and options
//!   (timestamps included, as Linux requires), flags ACK or ACK|PSH only (no
//!   SYN, FIN, RST, URG, ECE, CWR), a sequence number continuing the
//!   super-frame, and a non-empty payload;
//! - every payload is the first segment's size (the MSS) except the last: a
//!   shorter segment or one with PSH closes the super-frame;
//! - its TCP checksum verifies, unless it is partial (the kernel trusts a
//!   partial checksum as it trusts a NIC's). The merged frame goes out with
//!   `NEEDS_CSUM`, which the pod's kernel trusts, so a segment with a wrong
//!   full checksum must not hide in it;
//! - the result stays within [`MAX_SEGMENTS`] and a 16-bit IP length.
//!
//! Contract of this module: no I/O, no panic on any input, no allocation once
//! the buffer has grown to one super-frame.

use crate::offload::checksum;
use crate::wire::virtio_net::{self, F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, VirtioNetHdr};

/// Length of the virtio-net header in front of every frame.
const E: usize = virtio_net::LEN;
pub(super) use crate::wire::ethernet::ETH_LEN;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
use crate::wire::transport::{PROTO_TCP, TCP_CSUM_OFFSET, TCP_LEN};
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const IPV4_DF: u8 = 0x40;
/// The largest value of a 16-bit IP length field.
const MAX_IP_LEN: usize = 0xffff;
/// Most segments merged into one super-frame (Linux GRO's limit as well).
pub const MAX_SEGMENTS: usize = 64;

/// Where a candidate segment's headers are, offsets from the start of the
/// frame (virtio-net header included).
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    v4: bool,
    /// Start of the TCP header.
    l4: usize,
    /// Start of the TCP payload.
    pub(super) payload: usize,
    seq: u32,
    flags: u8,
    /// Its checksum is partial (trusted, not verified).
    pub(super) partial: bool,
}

impl Segment {
    /// Start of the TCP header.
    pub(super) fn l4(&self) -> usize {
        self.l4
    }
}

/// The super-frame under construction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Open {
    first: Segment,
    /// Payload bytes of the first segment: the MSS.
    mss: usize,
    /// Segments merged so far.
    count: usize,
    /// The sequence number the next segment must carry.
    next_seq: u32,
    /// Whether the first segment's checksum has been verified.
    checked: bool,
    /// No further segment may join (a short segment, PSH, a bad checksum).
    closed: bool,
    /// A merged segment carried PSH.
    psh: bool,
}

/// Merges consecutive TCP segments into one super-frame; see the module doc.
#[derive(Debug, Default)]
pub struct TcpGro {
    buf: Vec<u8>,
    open: Option<Open>,
}

fn be16(frame: &[u8], at: usize) -> u16 {
    match frame.get(at..at + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

fn be32(frame: &[u8], at: usize) -> u32 {
    match frame.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = buf.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Whether two frames hold the same bytes in `range`.
fn same(a: &[u8], b: &[u8], range: std::ops::Range<usize>) -> bool {
    match (a.get(range.clone()), b.get(range)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The candidate's headers, or `None` if it can never be merged: a frame
/// behind a virtio-net header that asks for no GSO, and for no partial
/// checksum or one exactly at the TCP checksum.
fn parse(frame: &[u8]) -> Option<Segment> {
    let hdr = VirtioNetHdr::parse(frame).ok()?;
    if hdr.gso_type != GSO_NONE || hdr.flags & !F_NEEDS_CSUM != 0 {
        return None;
    }
    let mut seg = parse_at(frame, E)?;
    if hdr.needs_csum() {
        if usize::from(hdr.csum_start) + E != seg.l4
            || usize::from(hdr.csum_offset) != TCP_CSUM_OFFSET
        {
            return None;
        }
        seg.partial = true;
    }
    Some(seg)
}

/// The headers of a TCP segment whose Ethernet header starts at `base`, or
/// `None` if it can never be merged.
pub(super) fn parse_at(frame: &[u8], base: usize) -> Option<Segment> {
    let ip = base + ETH_LEN;
    // Room for the smallest headers, so the subtractions below cannot
    // underflow.
    if frame.len() < ip + IPV4_LEN + TCP_LEN {
        return None;
    }
    let (v4, l4) = match be16(frame, base + 12) {
        ETHERTYPE_IPV4 => {
            // Version 4, no options.
            if *frame.get(ip)? != 0x45
                || usize::from(be16(frame, ip + 2)) != frame.len() - ip
                || be16(frame, ip + 6) & 0x3fff != 0
                || *frame.get(ip + 9)? != PROTO_TCP
            {
                return None;
            }
            (true, ip + IPV4_LEN)
        }
        ETHERTYPE_IPV6 => {
            if frame.get(ip)? >> 4 != 6
                || IPV6_LEN + usize::from(be16(frame, ip + 4)) != frame.len() - ip
                || *frame.get(ip + 6)? != PROTO_TCP
            {
                return None;
            }
            (false, ip + IPV6_LEN)
        }
        _ => return None,
    };
    let doff = usize::from(frame.get(l4 + 12)? >> 4) * 4;
    if doff < TCP_LEN {
        return None;
    }
    let payload = l4 + doff;
    let flags = *frame.get(l4 + 13)?;
    if payload >= frame.len() || flags & TCP_ACK == 0 || flags & !(TCP_ACK | TCP_PSH) != 0 {
        return None;
    }
    Some(Segment {
        v4,
        l4,
        payload,
        seq: be32(frame, l4 + 4),
        flags,
        partial: false,
    })
}

/// The partial sum of the segment's pseudo-header for `l4_len` TCP bytes.
fn pseudo(frame: &[u8], seg: &Segment, l4_len: usize) -> u32 {
    // The IP header ends where TCP starts; its addresses are at fixed
    // offsets from its start.
    let ip = seg.l4 - if seg.v4 { IPV4_LEN } else { IPV6_LEN };
    if seg.v4 {
        let mut src = [0u8; 4];
        let mut dst = [0u8; 4];
        src.copy_from_slice(frame.get(ip + 12..ip + 16).unwrap_or(&[0; 4]));
        dst.copy_from_slice(frame.get(ip + 16..ip + 20).unwrap_or(&[0; 4]));
        checksum::pseudo_header_v4(src, dst, PROTO_TCP, l4_len as u32)
    } else {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(frame.get(ip + 8..ip + 24).unwrap_or(&[0; 16]));
        dst.copy_from_slice(frame.get(ip + 24..ip + 40).unwrap_or(&[0; 16]));
        checksum::pseudo_header_v6(src, dst, PROTO_TCP, l4_len as u32)
    }
}

/// Whether the TCP checksum of the segment that ends at `end` verifies (a
/// partial one is trusted).
pub(super) fn checksum_ok(frame: &[u8], seg: &Segment, end: usize) -> bool {
    if seg.partial {
        return true;
    }
    let Some(tcp) = frame.get(seg.l4..end) else {
        return false;
    };
    checksum::fold(checksum::sum(tcp, pseudo(frame, seg, tcp.len()))) == 0xffff
}

impl TcpGro {
    /// An empty coalescer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a super-frame is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Segments in the open super-frame (0 if none is open).
    pub fn segments(&self) -> usize {
        self.open.map_or(0, |o| o.count)
    }

    /// Offers `frame` (virtio-net header + Ethernet frame). With nothing
    /// open, a candidate opens a super-frame; otherwise the frame joins the
    /// open one if it continues it. Returns whether the frame was taken; if
    /// not, nothing changed, and the caller flushes and offers it again, or
    /// writes it as it is.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        let Some(seg) = parse(frame) else {
            return false;
        };
        let Some(open) = self.open.as_mut() else {
            self.buf.clear();
            self.buf.extend_from_slice(frame);
            self.open = Some(Open::new(seg, frame.len() - seg.payload));
            return true;
        };
        let len = frame.len() - seg.payload;
        let ip_len = self.buf.len() - (E + ETH_LEN);
        if open.closed || !continues(&self.buf, E, open, ip_len, frame, &seg, len) {
            return false;
        }
        if !open.checked {
            // Only the first segment is in the buffer: its end is the end.
            if !checksum_ok(&self.buf, &open.first, self.buf.len()) {
                open.closed = true;
                return false;
            }
            open.checked = true;
        }
        if !checksum_ok(frame, &seg, frame.len()) {
            return false;
        }
        self.buf.extend_from_slice(&frame[seg.payload..]);
        open.join(&seg, len);
        true
    }

    /// Closes the open super-frame and returns it (virtio-net header +
    /// Ethernet frame), ready for the tap; `None` if none was open. A single
    /// segment comes back exactly as it was pushed.
    pub fn flush(&mut self) -> Option<&[u8]> {
        let open = self.open.take()?;
        if open.count == 1 {
            return Some(&self.buf);
        }
        let l4_len = self.buf.len() - open.first.l4;
        finish_headers(&mut self.buf, &open, l4_len);
        Some(&self.buf)
    }
}

impl Open {
    /// A super-frame opened by `first`, which carries `mss` payload bytes.
    pub(super) fn new(first: Segment, mss: usize) -> Self {
        Open {
            first,
            mss,
            count: 1,
            next_seq: first.seq.wrapping_add(mss as u32),
            checked: false,
            closed: first.flags & TCP_PSH != 0,
            psh: first.flags & TCP_PSH != 0,
        }
    }

    /// Segments merged so far.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Whether no further segment may join.
    pub(super) fn closed(&self) -> bool {
        self.closed
    }

    /// Payload bytes of the first segment.
    pub(super) fn mss(&self) -> usize {
        self.mss
    }

    /// Whether a merged segment carried PSH.
    pub(super) fn psh(&self) -> bool {
        self.psh
    }

    /// Records whether a merged segment carried PSH.
    pub(super) fn set_psh(&mut self, psh: bool) {
        self.psh = psh;
    }

    /// Counts in `seg`, which carries `len` payload bytes and continues the
    /// super-frame.
    pub(super) fn join(&mut self, seg: &Segment, len: usize) {
        self.count += 1;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        if seg.flags & TCP_PSH != 0 {
            self.psh = true;
            self.closed = true;
        }
        if len < self.mss {
            self.closed = true;
        }
    }
}

/// Turns the first segment's headers at the start of `buf` (virtio-net
/// header included) into a super-frame's for `l4_len` TCP bytes in all:
/// IP length (and IPv4 checksum), PSH if a merged segment had it, the
/// pseudo-header sum for `NEEDS_CSUM`, and the virtio-net header asking
/// the kernel to segment by the first segment's size.
pub(super) fn finish_headers(buf: &mut [u8], open: &Open, l4_len: usize) {
    let first = open.first;
    let ip = E + ETH_LEN;
    // Both fit 16 bits: continues() bounds the IP length by MAX_IP_LEN, and
    // the headers by the first segment's frame.
    let gso_type = if first.v4 {
        put16(buf, ip + 2, (first.l4 - ip + l4_len) as u16);
        put16(buf, ip + 10, 0);
        let sum = checksum::sum(buf.get(ip..first.l4).unwrap_or_default(), 0);
        put16(buf, ip + 10, checksum::finish(sum));
        GSO_TCPV4
    } else {
        put16(buf, ip + 4, l4_len as u16);
        GSO_TCPV6
    };
    if open.psh
        && let Some(flags) = buf.get_mut(first.l4 + 13)
    {
        *flags |= TCP_PSH;
    }
    // NEEDS_CSUM: the checksum field holds the folded pseudo-header sum, and
    // the kernel adds the rest.
    let partial = checksum::fold(pseudo(buf, &first, l4_len));
    put16(buf, first.l4 + TCP_CSUM_OFFSET, partial);
    let hdr = VirtioNetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: (first.payload - E) as u16,
        gso_size: open.mss as u16,
        csum_start: (first.l4 - E) as u16,
        csum_offset: TCP_CSUM_OFFSET as u16,
    };
    if let Some(vnet) = buf.first_chunk_mut::<E>() {
        hdr.write(vnet);
    }
}

/// Whether `frame` (parsed as `seg`, `len` payload bytes) continues the open
/// super-frame whose first segment is in `first` (both with the Ethernet
/// header at `base`; the super-frame's IP packet is `ip_len` bytes so far).
pub(super) fn continues(
    first_frame: &[u8],
    base: usize,
    open: &Open,
    ip_len: usize,
    frame: &[u8],
    seg: &Segment,
    len: usize,
) -> bool {
    let buf = first_frame;
    let first = &open.first;
    let ip = base + ETH_LEN;
    if seg.v4 != first.v4
        || seg.l4 != first.l4
        || seg.payload != first.payload
        || seg.seq != open.next_seq
        || len > open.mss
        || open.count >= MAX_SEGMENTS
        || ip_len + len > MAX_IP_LEN
        || !same(buf, frame, base..ip)
    {
        return false;
    }
    let ip_ok = if first.v4 {
        // TOS (1), flags (6), TTL and protocol (8..10), addresses (12..20).
        let df = buf.get(ip + 6).is_some_and(|f| f & IPV4_DF != 0);
        let id_ok = df || be16(frame, ip + 4) == be16(buf, ip + 4).wrapping_add(open.count as u16);
        same(buf, frame, ip + 1..ip + 2)
            && same(buf, frame, ip + 6..ip + 7)
            && same(buf, frame, ip + 8..ip + 10)
            && same(buf, frame, ip + 12..ip + 20)
            && id_ok
    } else {
        // Version, traffic class, flow label (0..4); next header, hop limit
        // and addresses (6..40).
        same(buf, frame, ip..ip + 4) && same(buf, frame, ip + 6..ip + IPV6_LEN)
    };
    // Ports (0..4), acknowledgment (8..12), data offset (12), window
    // (14..16), urgent pointer and options (18..payload). Flags: parse()
    // allows only ACK and PSH, and PSH closes the super-frame.
    let l4 = first.l4;
    ip_ok
        && same(buf, frame, l4..l4 + 4)
        && same(buf, frame, l4 + 8..l4 + 13)
        && same(buf, frame, l4 + 14..l4 + 16)
        && same(buf, frame, l4 + 18..first.payload)
}

#[cfg(test)]
#[path = "gro_tests.rs"]
mod tests;

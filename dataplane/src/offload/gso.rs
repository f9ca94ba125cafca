//! Software TSO and USO: splitting a TCP or UDP GSO super-frame into
//! MSS-sized frames (`gso_size` payload bytes each).
//!
//! A tap opened with `IFF_VNET_HDR` and TSO offloads enabled hands us TCP
//! "super-frames" up to 64 KiB long with a [`VirtioNetHdr`] saying how to cut
//! them (`gso_size` = MSS). [`segment_each`] does what the kernel's
//! `tcp_gso_segment` would: each segment is a complete Ethernet frame with
//! the original headers, and per segment
//!
//! - IPv4: total length set, identification incremented by one per segment,
//!   header checksum recomputed; IPv6: payload length set;
//! - TCP: sequence number advanced by the bytes before it; FIN and PSH kept
//!   only on the last segment, CWR only on the first (RFC 3168 §6.1.2); the
//!   full checksum computed, so the input's partial checksum does not matter;
//! - UDP (`GSO_UDP_L4`, what a socket with `UDP_SEGMENT` hands a tap with
//!   `TUN_F_USO4/6`): each segment a datagram of its own, its length set and
//!   its checksum computed (a computed zero sent as `0xffff`), as the
//!   kernel's `__udp_gso_segment` does.
//!
//! What is accepted (anything else is a typed [`GsoError`], never a panic):
//!
//! - Ethernet II without VLAN tags, then IPv4 or IPv6 matching the gso type;
//! - IPv4 options are supported: they are copied verbatim into every
//!   segment, as Linux does for TSO. Fragments are refused;
//! - IPv6 extension headers are refused ([`GsoError::Ipv6ExtensionHeader`]):
//!   the kernel does not build TSO frames with them for pod traffic, and
//!   handling them would mean parsing a chain strangers control;
//! - TCP options are copied into every segment; UDP has none;
//! - the IP length fields must account for exactly the rest of the frame (a
//!   super-frame is never padded; BIG TCP's zero IPv4 total length is refused);
//! - `hdr_len` is a hint (Linux fills it with `skb_headlen()`): it must be
//!   zero or lie between the end of the TCP header and the end of the frame;
//! - with `NEEDS_CSUM`, `csum_start`/`csum_offset` must point at the TCP
//!   or UDP checksum field.
//!
//! [`plan`] can instead leave each segment's L4 checksum partial
//! ([`SegmentChecksum::Partial`]: the field holds the pseudo-header sum, as a
//! NIC's checksum offload leaves it), for a receiver that completes or
//! trusts it; the payload is then never summed.
//!
//! The code allocates nothing once `scratch` has grown to one segment.

use std::ops::Range;

use thiserror::Error;

use crate::offload::checksum::{self, ChecksumError};
use crate::wire::virtio_net::{GsoKind, VirtioNetError, VirtioNetHdr};

use crate::wire::ethernet::{ETH_LEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
const IPV6_LEN: usize = 40;
use crate::wire::transport::{PROTO_TCP, PROTO_UDP, UDP_LEN, csum_offset};
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// What each segment's L4 checksum field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentChecksum {
    /// The full checksum, as it travels on a wire.
    Full,
    /// The folded pseudo-header sum, for a receiver that completes it (or
    /// hands it on as `NEEDS_CSUM`): the payload is not summed.
    Partial,
}

/// The header a frame was too short for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The Ethernet header.
    Ethernet,
    /// The IPv4 header (options included).
    Ipv4,
    /// The IPv6 fixed header.
    Ipv6,
    /// The TCP header (options included).
    Tcp,
    /// The UDP header.
    Udp,
}

/// Why a super-frame cannot be segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GsoError {
    /// The virtio-net header's gso_type is unknown.
    #[error("bad virtio-net header")]
    Header(#[from] VirtioNetError),
    /// The gso type is not TCPV4, TCPV6 or UDP_L4.
    #[error("gso type {0:?} is neither TCP nor UDP segmentation")]
    NotSegmentable(GsoKind),
    /// gso_size is zero.
    #[error("gso_size is zero")]
    ZeroGsoSize,
    /// The frame ends inside a header.
    #[error("frame truncated in the {layer:?} header: {len} bytes, need {need}")]
    Truncated {
        /// The header being read.
        layer: Layer,
        /// Frame length.
        len: usize,
        /// Bytes needed to hold the header.
        need: usize,
    },
    /// The EtherType is neither IPv4 nor IPv6 (VLAN tags are not supported).
    #[error("unsupported EtherType {0:#06x}")]
    UnsupportedEtherType(u16),
    /// The IP version disagrees with the gso type or the EtherType.
    #[error("gso type {kind:?} does not match IP version {version}")]
    IpVersionMismatch {
        /// The gso type.
        kind: GsoKind,
        /// The IP version found in the frame.
        version: u8,
    },
    /// IPv4 IHL below 5.
    #[error("IPv4 header length {0} words is below the minimum of 5")]
    BadIpv4HeaderLen(u8),
    /// The IPv4 packet is a fragment.
    #[error("IPv4 packet is a fragment")]
    Ipv4Fragment,
    /// IPv6 with extension headers (refused, see the module doc).
    #[error("IPv6 extension header {0} not supported")]
    Ipv6ExtensionHeader(u8),
    /// The IP protocol / next header is not the one the gso type cuts.
    #[error("IP protocol {protocol} is not what gso type {kind:?} segments")]
    WrongProtocol {
        /// The gso type.
        kind: GsoKind,
        /// The protocol found.
        protocol: u8,
    },
    /// The IP length field disagrees with the frame.
    #[error("IP header says {header} bytes, frame holds {frame}")]
    IpLengthMismatch {
        /// Bytes the IP length field accounts for (IPv4 header included).
        header: usize,
        /// Bytes the frame holds after the Ethernet header.
        frame: usize,
    },
    /// TCP data offset below 5.
    #[error("TCP data offset {0} words is below the minimum of 5")]
    BadTcpHeaderLen(u8),
    /// hdr_len is neither zero nor between the end of the headers and the
    /// end of the frame.
    #[error("hdr_len {hdr_len} inconsistent with {headers} bytes of headers in a {len}-byte frame")]
    HdrLenMismatch {
        /// hdr_len from the virtio-net header.
        hdr_len: u16,
        /// Length of the parsed Ethernet + IP + TCP headers.
        headers: usize,
        /// Frame length.
        len: usize,
    },
    /// NEEDS_CSUM with csum_start/csum_offset not at the L4 checksum.
    #[error(
        "csum_start {csum_start}/csum_offset {csum_offset} do not point at the L4 checksum (header at {tcp_start})"
    )]
    ChecksumOffsetMismatch {
        /// csum_start from the virtio-net header.
        csum_start: u16,
        /// csum_offset from the virtio-net header.
        csum_offset: u16,
        /// Where the TCP or UDP header starts.
        tcp_start: usize,
    },
    /// No payload to segment.
    #[error("super-frame has no payload")]
    EmptyPayload,
}

/// Where the headers of a super-frame are.
#[derive(Debug, Clone, Copy)]
struct Layout {
    v4: bool,
    /// `PROTO_TCP` or `PROTO_UDP`.
    protocol: u8,
    /// Where the TCP or UDP checksum field is.
    csum_at: usize,
    /// Start of the TCP or UDP header.
    l4: usize,
    /// End of that header, start of the payload.
    payload: usize,
}

fn be16(frame: &[u8], at: usize) -> u16 {
    match frame.get(at..at + 2) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = buf.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

fn need(frame: &[u8], layer: Layer, need: usize) -> Result<(), GsoError> {
    if frame.len() < need {
        return Err(GsoError::Truncated {
            layer,
            len: frame.len(),
            need,
        });
    }
    Ok(())
}

fn is_ipv6_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// Parses and validates the headers of a TCP or UDP super-frame.
fn parse(frame: &[u8], hdr: &VirtioNetHdr) -> Result<Layout, GsoError> {
    let kind = hdr.gso_kind()?;
    // `None`: either family (UDP_L4 serves both).
    let (want_v4, protocol) = match kind {
        GsoKind::TcpV4 => (Some(true), PROTO_TCP),
        GsoKind::TcpV6 => (Some(false), PROTO_TCP),
        GsoKind::UdpL4 => (None, PROTO_UDP),
        other => return Err(GsoError::NotSegmentable(other)),
    };
    let udp = protocol == PROTO_UDP;
    let csum_offset = csum_offset(protocol).ok_or(GsoError::NotSegmentable(kind))?;
    if hdr.gso_size == 0 {
        return Err(GsoError::ZeroGsoSize);
    }
    need(frame, Layer::Ethernet, ETH_LEN)?;
    let ethertype = be16(frame, 12);
    let v4 = match ethertype {
        ETHERTYPE_IPV4 => true,
        ETHERTYPE_IPV6 => false,
        other => return Err(GsoError::UnsupportedEtherType(other)),
    };
    need(
        frame,
        if v4 { Layer::Ipv4 } else { Layer::Ipv6 },
        ETH_LEN + 1,
    )?;
    let version = frame.get(ETH_LEN).map_or(0, |b| b >> 4);
    if want_v4.is_some_and(|want| want != v4) || version != if v4 { 4 } else { 6 } {
        return Err(GsoError::IpVersionMismatch { kind, version });
    }
    let ip_bytes = frame.len() - ETH_LEN;
    let l4 = if v4 {
        need(frame, Layer::Ipv4, ETH_LEN + 20)?;
        let ihl = frame.get(ETH_LEN).map_or(0, |b| b & 0x0f);
        if ihl < 5 {
            return Err(GsoError::BadIpv4HeaderLen(ihl));
        }
        let ip_hl = usize::from(ihl) * 4;
        need(frame, Layer::Ipv4, ETH_LEN + ip_hl)?;
        if be16(frame, ETH_LEN + 6) & 0x3fff != 0 {
            return Err(GsoError::Ipv4Fragment);
        }
        let proto = frame.get(ETH_LEN + 9).copied().unwrap_or(0);
        if proto != protocol {
            return Err(GsoError::WrongProtocol {
                kind,
                protocol: proto,
            });
        }
        let total = usize::from(be16(frame, ETH_LEN + 2));
        if total != ip_bytes {
            return Err(GsoError::IpLengthMismatch {
                header: total,
                frame: ip_bytes,
            });
        }
        ETH_LEN + ip_hl
    } else {
        need(frame, Layer::Ipv6, ETH_LEN + IPV6_LEN)?;
        let next = frame.get(ETH_LEN + 6).copied().unwrap_or(0);
        if next != protocol {
            return Err(if is_ipv6_extension(next) {
                GsoError::Ipv6ExtensionHeader(next)
            } else {
                GsoError::WrongProtocol {
                    kind,
                    protocol: next,
                }
            });
        }
        let total = IPV6_LEN + usize::from(be16(frame, ETH_LEN + 4));
        if total != ip_bytes {
            return Err(GsoError::IpLengthMismatch {
                header: total,
                frame: ip_bytes,
            });
        }
        ETH_LEN + IPV6_LEN
    };
    let payload = if udp {
        need(frame, Layer::Udp, l4 + UDP_LEN)?;
        l4 + UDP_LEN
    } else {
        need(frame, Layer::Tcp, l4 + 20)?;
        let doff = frame.get(l4 + 12).map_or(0, |b| b >> 4);
        if doff < 5 {
            return Err(GsoError::BadTcpHeaderLen(doff));
        }
        let payload = l4 + usize::from(doff) * 4;
        need(frame, Layer::Tcp, payload)?;
        payload
    };

    let hdr_len = usize::from(hdr.hdr_len);
    if hdr_len != 0 && (hdr_len < payload || hdr_len > frame.len()) {
        return Err(GsoError::HdrLenMismatch {
            hdr_len: hdr.hdr_len,
            headers: payload,
            len: frame.len(),
        });
    }
    if hdr.needs_csum()
        && (usize::from(hdr.csum_start) != l4 || usize::from(hdr.csum_offset) != csum_offset)
    {
        return Err(GsoError::ChecksumOffsetMismatch {
            csum_start: hdr.csum_start,
            csum_offset: hdr.csum_offset,
            tcp_start: l4,
        });
    }
    if payload == frame.len() {
        return Err(GsoError::EmptyPayload);
    }
    Ok(Layout {
        v4,
        protocol,
        csum_at: l4 + csum_offset,
        l4,
        payload,
    })
}

/// Splits the TCP or UDP super-frame `frame` (an Ethernet frame, without the
/// virtio-net header) into segments of at most `hdr.gso_size` payload bytes.
///
/// Each segment is built in `scratch` (cleared first) and passed to `emit`,
/// in order, first segment first; `emit` must copy what it keeps. Returns the
/// number of segments. Nothing is emitted if the frame is refused.
pub fn segment_each(
    frame: &[u8],
    hdr: &VirtioNetHdr,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, GsoError> {
    let mut headers = Vec::new();
    let full = SegmentChecksum::Full;
    for_each_segment(frame, hdr, full, &mut headers, |headers, payload| {
        scratch.clear();
        scratch.extend_from_slice(headers);
        scratch.extend_from_slice(frame.get(payload).unwrap_or_default());
        emit(scratch);
    })
}

/// One datagram of a gathered split: its headers in [`GatherPlan::headers`],
/// its payload where it already is, in the super-frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherPart {
    /// The datagram's header bytes, a range of [`GatherPlan::headers`].
    pub header: Range<usize>,
    /// Its payload, a range of the super-frame that was split.
    pub payload: Range<usize>,
}

/// A super-frame split without copying its payload: per segment, the
/// headers written out (behind a fixed prefix such as the VXLAN header),
/// and a slice of the super-frame. Sent with one gathered `sendmsg`.
#[derive(Debug, Default)]
pub struct GatherPlan {
    /// Every segment's header bytes, one after the other.
    pub headers: Vec<u8>,
    /// The segments, in order.
    pub parts: Vec<GatherPart>,
}

impl GatherPlan {
    /// Forgets the last plan, keeping the buffers.
    pub fn clear(&mut self) {
        self.headers.clear();
        self.parts.clear();
    }

    /// The bytes of every datagram but the last (all are this long except
    /// the last, which may be shorter).
    pub fn segment_len(&self) -> usize {
        self.parts
            .first()
            .map_or(0, |p| p.header.len() + p.payload.len())
    }
}

/// How many of `parts` (datagrams of a plan whose full length is
/// `segment`) one UDP GSO send carries from the front: every datagram
/// `segment` bytes long but the last, at most `max_segments` and
/// `max_bytes` in all; at least one. The kernel cuts such a send back into
/// exactly these datagrams.
pub fn gso_run(
    parts: &[GatherPart],
    segment: usize,
    max_segments: usize,
    max_bytes: usize,
) -> usize {
    let mut n = 0;
    let mut bytes = 0;
    while n < parts.len() && n < max_segments {
        let len = parts[n].header.len() + parts[n].payload.len();
        if len > segment || bytes + len > max_bytes {
            break;
        }
        bytes += len;
        n += 1;
        if len < segment {
            break;
        }
    }
    n.max(1).min(parts.len())
}

/// Plans the segmentation of the TCP or UDP super-frame `frame` as
/// [`segment_each`] would cut it, without copying its payload: each
/// segment's headers go to `plan.headers`, after `prefix` and without the
/// Ethernet header unless `keep_ethernet`; its payload stays in `frame`.
/// Each L4 checksum is what `csum` says. The plan is cleared first.
/// Returns the number of segments.
pub fn plan(
    frame: &[u8],
    hdr: &VirtioNetHdr,
    prefix: &[u8],
    keep_ethernet: bool,
    csum: SegmentChecksum,
    plan: &mut GatherPlan,
) -> Result<usize, GsoError> {
    plan.clear();
    let skip = if keep_ethernet { 0 } else { ETH_LEN };
    let GatherPlan {
        headers: out,
        parts,
    } = plan;
    let mut scratch = Vec::new();
    for_each_segment(frame, hdr, csum, &mut scratch, |headers, payload| {
        let start = out.len();
        out.extend_from_slice(prefix);
        out.extend_from_slice(headers.get(skip..).unwrap_or_default());
        parts.push(GatherPart {
            header: start..out.len(),
            payload,
        });
    })
}

/// Calls `each` with every segment's finished headers (Ethernet to TCP or
/// UDP, built in `headers`, the L4 checksum as `csum` says) and its payload
/// range in `frame`, in order.
fn for_each_segment(
    frame: &[u8],
    hdr: &VirtioNetHdr,
    csum: SegmentChecksum,
    headers: &mut Vec<u8>,
    mut each: impl FnMut(&[u8], Range<usize>),
) -> Result<usize, GsoError> {
    let layout = parse(frame, hdr)?;
    let (original, payload) = frame.split_at(layout.payload);
    let l4 = layout.l4;
    let l4_hl = layout.payload - l4;
    let (protocol, csum_at) = (layout.protocol, layout.csum_at);
    let udp = protocol == PROTO_UDP;
    let seq0 = u32::from_be_bytes([
        original.get(l4 + 4).copied().unwrap_or(0),
        original.get(l4 + 5).copied().unwrap_or(0),
        original.get(l4 + 6).copied().unwrap_or(0),
        original.get(l4 + 7).copied().unwrap_or(0),
    ]);
    let id0 = be16(original, ETH_LEN + 4);
    let flags0 = original.get(l4 + 13).copied().unwrap_or(0);
    let mss = usize::from(hdr.gso_size);
    let count = payload.len().div_ceil(mss);

    for (i, chunk) in payload.chunks(mss).enumerate() {
        headers.clear();
        headers.extend_from_slice(original);
        let seg = headers.as_mut_slice();
        let l4_len = l4_hl + chunk.len();

        // The casts below cannot truncate: a segment is shorter than the
        // super-frame, whose IP length field parse() checked, and i * mss is
        // below that 16-bit length.
        let pseudo = if layout.v4 {
            put16(seg, ETH_LEN + 2, (l4 - ETH_LEN + l4_len) as u16);
            put16(seg, ETH_LEN + 4, id0.wrapping_add(i as u16));
            put16(seg, ETH_LEN + 10, 0);
            let ip_sum = checksum::sum(seg.get(ETH_LEN..l4).unwrap_or_default(), 0);
            put16(seg, ETH_LEN + 10, checksum::finish(ip_sum));
            let mut src = [0u8; 4];
            let mut dst = [0u8; 4];
            src.copy_from_slice(seg.get(ETH_LEN + 12..ETH_LEN + 16).unwrap_or(&[0; 4]));
            dst.copy_from_slice(seg.get(ETH_LEN + 16..ETH_LEN + 20).unwrap_or(&[0; 4]));
            checksum::pseudo_header_v4(src, dst, protocol, l4_len as u32)
        } else {
            put16(seg, ETH_LEN + 4, l4_len as u16);
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(seg.get(ETH_LEN + 8..ETH_LEN + 24).unwrap_or(&[0; 16]));
            dst.copy_from_slice(seg.get(ETH_LEN + 24..ETH_LEN + 40).unwrap_or(&[0; 16]));
            checksum::pseudo_header_v6(src, dst, protocol, l4_len as u32)
        };

        if udp {
            put16(seg, l4 + 4, l4_len as u16);
        } else {
            let seq = seq0.wrapping_add((i * mss) as u32);
            if let Some(dst) = seg.get_mut(l4 + 4..l4 + 8) {
                dst.copy_from_slice(&seq.to_be_bytes());
            }
            let mut flags = flags0;
            if i + 1 != count {
                flags &= !(TCP_FIN | TCP_PSH);
            }
            if i != 0 {
                flags &= !TCP_CWR;
            }
            if let Some(f) = seg.get_mut(l4 + 13) {
                *f = flags;
            }
        }
        put16(seg, csum_at, 0);
        let field = match csum {
            SegmentChecksum::Partial => checksum::fold(pseudo),
            SegmentChecksum::Full => {
                // The L4 header is a multiple of 4 bytes long, so the
                // payload's words continue the header's sum.
                let l4_sum = checksum::sum(seg.get(l4..).unwrap_or_default(), pseudo);
                match checksum::finish(checksum::sum(chunk, l4_sum)) {
                    // UDP sends a computed zero as all ones (RFC 768).
                    0 if udp => 0xffff,
                    field => field,
                }
            }
        };
        put16(seg, csum_at, field);
        let start = layout.payload + i * mss;
        each(seg, start..start + chunk.len());
    }
    Ok(count)
}

/// For a frame that is not segmented: completes its L4 checksum in place if
/// the virtio-net header says `NEEDS_CSUM`. Returns whether it did.
pub fn complete_checksum_if_partial(
    frame: &mut [u8],
    hdr: &VirtioNetHdr,
) -> Result<bool, ChecksumError> {
    if !hdr.needs_csum() {
        return Ok(false);
    }
    checksum::complete_partial(
        frame,
        usize::from(hdr.csum_start),
        usize::from(hdr.csum_offset),
    )?;
    Ok(true)
}

#[cfg(test)]
#[path = "gso_udp_tests.rs"]
mod udp_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::transport::TCP_CSUM_OFFSET;
    use crate::wire::virtio_net::{F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP};
    use etherparse::{
        IpHeaders, IpNumber, Ipv4Header, Ipv6Header, NetSlice, PacketBuilder, SlicedPacket,
        TcpHeader, TransportSlice,
    };
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// Test-local RFC 1071 fold, independent of the code under test.
    fn ref_fold(words: impl IntoIterator<Item = u16>) -> u16 {
        let mut acc: u32 = 0;
        for w in words {
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    fn words(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
        b.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    struct Fixture {
        frame: Vec<u8>,
        hdr: VirtioNetHdr,
        payload: Vec<u8>,
        tcp: TcpHeader,
    }

    fn tcp_header(rng: &mut StdRng, fin: bool, psh: bool, cwr: bool, options: bool) -> TcpHeader {
        let mut tcp = TcpHeader::new(40000, 443, rng.random(), 512);
        tcp.ack = true;
        tcp.acknowledgment_number = rng.random();
        tcp.fin = fin;
        tcp.psh = psh;
        tcp.cwr = cwr;
        tcp.ece = cwr;
        if options {
            // NOP NOP timestamp.
            tcp.set_options_raw(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9])
                .unwrap();
        }
        tcp
    }

    /// A TSO super-frame as a tap would present it: the TCP checksum field
    /// holds the folded pseudo-header sum and NEEDS_CSUM is set.
    fn fixture_v4(
        rng: &mut StdRng,
        len: usize,
        mss: u16,
        ip_options: bool,
        tcp: TcpHeader,
    ) -> Fixture {
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload[..]);
        let mut ip = Ipv4Header::new(0, 64, IpNumber::TCP, [10, 1, 2, 3], [10, 9, 8, 7]).unwrap();
        ip.identification = rng.random();
        if ip_options {
            ip.options = [0x94, 0x04, 0x00, 0x00].into(); // router alert
        }
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ip(IpHeaders::Ipv4(ip.clone(), Default::default()))
            .tcp_header(tcp.clone())
            .write(&mut frame, &payload)
            .unwrap();
        let l4 = 14 + ip.header_len();
        let l4_len = (frame.len() - l4) as u16;
        let pseudo = ref_fold(
            words(&ip.source)
                .chain(words(&ip.destination))
                .chain([6, l4_len]),
        );
        frame[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | if tcp.cwr { GSO_ECN } else { 0 },
            hdr_len: (l4 + tcp.header_len()) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        Fixture {
            frame,
            hdr,
            payload,
            tcp,
        }
    }

    fn fixture_v6(rng: &mut StdRng, len: usize, mss: u16, tcp: TcpHeader) -> Fixture {
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload[..]);
        let src: [u8; 16] = rng.random();
        let dst: [u8; 16] = rng.random();
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(src, dst, 64)
            .tcp_header(tcp.clone())
            .write(&mut frame, &payload)
            .unwrap();
        let l4 = 14 + 40;
        let l4_len = (frame.len() - l4) as u16;
        let pseudo = ref_fold(words(&src).chain(words(&dst)).chain([6, l4_len]));
        frame[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            // Linux reports skb_headlen(), which may exceed the headers.
            hdr_len: (l4 + tcp.header_len() + len.min(7)) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        Fixture {
            frame,
            hdr,
            payload,
            tcp,
        }
    }

    fn segment(f: &Fixture) -> Result<Vec<Vec<u8>>, GsoError> {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let n = segment_each(&f.frame, &f.hdr, &mut scratch, |s| out.push(s.to_vec()))?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    /// Checks every segment with etherparse against the original.
    fn verify(f: &Fixture, segs: &[Vec<u8>]) {
        let mss = usize::from(f.hdr.gso_size);
        assert_eq!(segs.len(), f.payload.len().div_ceil(mss));
        let orig = SlicedPacket::from_ethernet(&f.frame).unwrap();
        let mut joined = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let p = SlicedPacket::from_ethernet(seg).unwrap();
            let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
                panic!("segment {i} is not TCP");
            };
            let expected_csum = match (&p.net, &orig.net) {
                (Some(NetSlice::Ipv4(ip)), Some(NetSlice::Ipv4(oip))) => {
                    let h = ip.header();
                    assert_eq!(usize::from(h.total_len()), seg.len() - 14);
                    assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                    assert_eq!(
                        h.identification(),
                        oip.header().identification().wrapping_add(i as u16)
                    );
                    assert_eq!(h.options(), oip.header().options());
                    assert!(!h.more_fragments());
                    tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
                }
                (Some(NetSlice::Ipv6(ip)), Some(NetSlice::Ipv6(_))) => {
                    let h = ip.header();
                    assert_eq!(usize::from(h.payload_length()), seg.len() - 54);
                    tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap()
                }
                other => panic!("unexpected network layers {other:?}"),
            };
            assert_eq!(tcp.checksum(), expected_csum, "segment {i} checksum");
            assert_eq!(
                tcp.sequence_number(),
                f.tcp.sequence_number.wrapping_add((i * mss) as u32)
            );
            assert_eq!(tcp.acknowledgment_number(), f.tcp.acknowledgment_number);
            assert_eq!(tcp.options(), f.tcp.options.as_slice());
            assert_eq!(tcp.fin(), f.tcp.fin && last, "FIN on segment {i}");
            assert_eq!(tcp.psh(), f.tcp.psh && last, "PSH on segment {i}");
            assert_eq!(tcp.cwr(), f.tcp.cwr && i == 0, "CWR on segment {i}");
            assert_eq!(tcp.ece(), f.tcp.ece);
            assert!(tcp.ack());
            if !last {
                assert_eq!(tcp.payload().len(), mss);
            }
            assert_eq!(&seg[..14], &f.frame[..14]);
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, f.payload);
    }

    #[test]
    fn ipv4_segments_verify() {
        let mut rng = StdRng::seed_from_u64(41);
        for (len, mss) in [
            (4000, 1448),
            (2896, 1448),
            (1448, 1448),
            (1, 1448),
            (65_000, 1460),
        ] {
            for ip_options in [false, true] {
                let tcp = tcp_header(&mut rng, true, true, true, true);
                let f = fixture_v4(&mut rng, len, mss, ip_options, tcp);
                verify(&f, &segment(&f).unwrap());
            }
        }
    }

    #[test]
    fn ipv6_segments_verify() {
        let mut rng = StdRng::seed_from_u64(61);
        for (len, mss) in [(4000, 1428), (2856, 1428), (9, 1428), (65_000, 8940)] {
            let tcp = tcp_header(&mut rng, true, true, false, false);
            let f = fixture_v6(&mut rng, len, mss, tcp);
            verify(&f, &segment(&f).unwrap());
        }
    }

    #[test]
    fn randomized_segments_verify() {
        let mut rng = StdRng::seed_from_u64(0x7505);
        for _ in 0..150 {
            let len = rng.random_range(1..20_000);
            let mss = rng.random_range(1..3000);
            let (fin, psh, cwr, opts) = (rng.random(), rng.random(), rng.random(), rng.random());
            let tcp = tcp_header(&mut rng, fin, psh, cwr, opts);
            let f = if rng.random() {
                let ip_options = rng.random();
                fixture_v4(&mut rng, len, mss, ip_options, tcp)
            } else {
                fixture_v6(&mut rng, len, mss, tcp)
            };
            verify(&f, &segment(&f).unwrap());
        }
    }

    #[test]
    fn a_gathered_plan_puts_the_same_bytes_on_the_wire() {
        let mut rng = StdRng::seed_from_u64(0x6a7);
        for (len, mss, keep_eth) in [(60_000, 1398, true), (4000, 1448, false), (100, 1448, true)] {
            let tcp = tcp_header(&mut rng, true, true, true, true);
            let f = fixture_v4(&mut rng, len, mss, true, tcp);
            let mut copied = Vec::new();
            let mut scratch = Vec::new();
            segment_each(&f.frame, &f.hdr, &mut scratch, |s| copied.push(s.to_vec())).unwrap();
            let prefix = [8u8, 0, 0, 0, 0, 0, 1, 0];
            let mut planned = GatherPlan::default();
            let count = plan(
                &f.frame,
                &f.hdr,
                &prefix,
                keep_eth,
                SegmentChecksum::Full,
                &mut planned,
            )
            .unwrap();
            assert_eq!(count, copied.len());
            for (part, whole) in planned.parts.iter().zip(&copied) {
                let mut datagram = planned.headers[part.header.clone()].to_vec();
                datagram.extend_from_slice(&f.frame[part.payload.clone()]);
                let mut expected = prefix.to_vec();
                expected.extend_from_slice(if keep_eth { whole } else { &whole[14..] });
                assert_eq!(datagram, expected, "len {len} mss {mss}");
            }
            let first = planned.segment_len();
            assert!(
                planned.parts[..count - 1]
                    .iter()
                    .all(|p| p.header.len() + p.payload.len() == first)
            );
        }
    }

    #[test]
    fn a_partial_plan_leaves_checksums_that_complete_to_the_full_ones() {
        let mut rng = StdRng::seed_from_u64(0x9a7);
        for v4 in [true, false] {
            let tcp = tcp_header(&mut rng, false, true, false, true);
            let f = if v4 {
                fixture_v4(&mut rng, 9000, 1398, true, tcp)
            } else {
                fixture_v6(&mut rng, 9000, 1378, tcp)
            };
            let mut copied = Vec::new();
            segment_each(&f.frame, &f.hdr, &mut Vec::new(), |s| {
                copied.push(s.to_vec())
            })
            .unwrap();
            let mut planned = GatherPlan::default();
            let csum = SegmentChecksum::Partial;
            let count = plan(&f.frame, &f.hdr, &[], true, csum, &mut planned).unwrap();
            assert_eq!(count, copied.len());
            let l4 = usize::from(f.hdr.csum_start);
            for (part, whole) in planned.parts.iter().zip(&copied) {
                let mut segment = planned.headers[part.header.clone()].to_vec();
                segment.extend_from_slice(&f.frame[part.payload.clone()]);
                let field = l4 + TCP_CSUM_OFFSET..l4 + TCP_CSUM_OFFSET + 2;
                assert_ne!(segment[field.clone()], whole[field], "left partial");
                checksum::complete_partial(&mut segment, l4, TCP_CSUM_OFFSET).unwrap();
                assert_eq!(&segment, whole, "v4 {v4}: completes to the full segment");
            }
        }
    }

    #[test]
    fn sequence_number_wraps() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut tcp = tcp_header(&mut rng, false, true, false, false);
        tcp.sequence_number = u32::MAX - 100;
        let f = fixture_v4(&mut rng, 3000, 1000, false, tcp);
        verify(&f, &segment(&f).unwrap());
    }

    #[test]
    fn scratch_is_reused_and_emit_in_order() {
        let mut rng = StdRng::seed_from_u64(3);
        let tcp = tcp_header(&mut rng, false, false, false, false);
        let f = fixture_v4(&mut rng, 5000, 1000, false, tcp);
        let mut scratch = Vec::with_capacity(2000);
        let cap = scratch.capacity();
        let mut seqs = Vec::new();
        segment_each(&f.frame, &f.hdr, &mut scratch, |s| {
            seqs.push(u32::from_be_bytes([s[38], s[39], s[40], s[41]]));
        })
        .unwrap();
        assert_eq!(scratch.capacity(), cap);
        let base = f.tcp.sequence_number;
        let want: Vec<u32> = (0..5).map(|i| base.wrapping_add(i * 1000)).collect();
        assert_eq!(seqs, want);
    }

    fn err(f: &Fixture) -> GsoError {
        let mut scratch = Vec::new();
        let mut emitted = 0;
        let e = segment_each(&f.frame, &f.hdr, &mut scratch, |_| emitted += 1).unwrap_err();
        assert_eq!(emitted, 0);
        e
    }

    #[test]
    fn inconsistent_inputs_are_refused() {
        let mut rng = StdRng::seed_from_u64(9);
        let tcp = tcp_header(&mut rng, false, false, false, false);
        let good = fixture_v4(&mut rng, 3000, 1448, false, tcp.clone());
        let good6 = fixture_v6(&mut rng, 3000, 1448, tcp);

        let mut f = clone(&good);
        f.hdr.gso_size = 0;
        assert_eq!(err(&f), GsoError::ZeroGsoSize);

        let mut f = clone(&good);
        f.hdr.gso_type = GSO_UDP;
        assert_eq!(err(&f), GsoError::NotSegmentable(GsoKind::Udp));
        f.hdr.gso_type = 0;
        assert_eq!(err(&f), GsoError::NotSegmentable(GsoKind::None));
        f.hdr.gso_type = 9;
        assert_eq!(err(&f), GsoError::Header(VirtioNetError::UnknownGsoType(9)));

        let mut f = clone(&good);
        f.hdr.gso_type = GSO_TCPV6;
        assert_eq!(
            err(&f),
            GsoError::IpVersionMismatch {
                kind: GsoKind::TcpV6,
                version: 4
            }
        );

        let mut f = clone(&good);
        f.frame.push(0);
        assert_eq!(
            err(&f),
            GsoError::IpLengthMismatch {
                header: 3040,
                frame: 3041
            }
        );
        let mut f = clone(&good6);
        f.frame.pop();
        assert_eq!(
            err(&f),
            GsoError::IpLengthMismatch {
                header: 3060,
                frame: 3059
            }
        );

        let mut f = clone(&good);
        f.hdr.hdr_len = 53;
        assert!(matches!(
            err(&f),
            GsoError::HdrLenMismatch { headers: 54, .. }
        ));
        f.hdr.hdr_len = 4000;
        assert!(matches!(err(&f), GsoError::HdrLenMismatch { .. }));
        f.hdr.hdr_len = 0;
        assert!(segment(&f).is_ok());

        let mut f = clone(&good);
        f.hdr.csum_offset = 6;
        assert!(matches!(err(&f), GsoError::ChecksumOffsetMismatch { .. }));
        f.hdr.flags = 0; // without NEEDS_CSUM the offsets are not used
        verify(&f, &segment(&f).unwrap());

        let mut f = clone(&good);
        f.frame[14 + 6] = 0x20; // MF
        assert_eq!(err(&f), GsoError::Ipv4Fragment);

        let mut f = clone(&good);
        f.frame[14 + 9] = 17;
        assert_eq!(
            err(&f),
            GsoError::WrongProtocol {
                kind: GsoKind::TcpV4,
                protocol: 17
            }
        );

        let mut f = clone(&good);
        f.frame[14] = 0x44;
        assert_eq!(err(&f), GsoError::BadIpv4HeaderLen(4));

        let mut f = clone(&good);
        f.frame[34 + 12] = 0x40;
        assert_eq!(err(&f), GsoError::BadTcpHeaderLen(4));

        let mut f = clone(&good6);
        f.frame[14 + 6] = 0; // hop-by-hop options
        assert_eq!(err(&f), GsoError::Ipv6ExtensionHeader(0));
        f.frame[14 + 6] = 17;
        assert_eq!(
            err(&f),
            GsoError::WrongProtocol {
                kind: GsoKind::TcpV6,
                protocol: 17
            }
        );

        let mut f = clone(&good);
        f.frame[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(err(&f), GsoError::UnsupportedEtherType(0x8100));

        // Headers only, no payload.
        let mut rng = StdRng::seed_from_u64(10);
        let tcp = tcp_header(&mut rng, false, false, false, false);
        let f = fixture_v4(&mut rng, 0, 1448, false, tcp);
        assert_eq!(err(&f), GsoError::EmptyPayload);
    }

    fn clone(f: &Fixture) -> Fixture {
        Fixture {
            frame: f.frame.clone(),
            hdr: f.hdr,
            payload: f.payload.clone(),
            tcp: f.tcp.clone(),
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut rng = StdRng::seed_from_u64(11);
        let tcp = tcp_header(&mut rng, false, false, false, true);
        for good in [
            fixture_v4(&mut rng, 100, 40, true, tcp.clone()),
            fixture_v6(&mut rng, 100, 40, tcp),
        ] {
            for len in 0..good.frame.len() {
                let mut f = clone(&good);
                f.frame.truncate(len);
                f.hdr.hdr_len = 0;
                err(&f);
            }
        }
        let tcp = tcp_header(&mut rng, false, false, false, false);
        let mut f = fixture_v4(&mut rng, 10, 4, false, tcp);
        f.frame.clear();
        assert_eq!(
            err(&f),
            GsoError::Truncated {
                layer: Layer::Ethernet,
                len: 0,
                need: 14
            }
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(12);
        let mut scratch = Vec::new();
        for _ in 0..5000 {
            let len = rng.random_range(0..200);
            let mut frame = vec![0u8; len];
            rng.fill(&mut frame[..]);
            if len > 15 && rng.random() {
                frame[12..14].copy_from_slice(&[0x08, 0x00]);
                frame[14] = 0x40 | (frame[14] & 0x0f);
            }
            let mut hdr = VirtioNetHdr::parse(&rng.random::<[u8; 10]>()).unwrap();
            hdr.gso_type = if rng.random() { GSO_TCPV4 } else { GSO_TCPV6 };
            let _ = segment_each(&frame, &hdr, &mut scratch, |_| {});
            let _ = complete_checksum_if_partial(&mut frame, &hdr);
        }
    }

    #[test]
    fn complete_checksum_for_a_single_frame() {
        let mut rng = StdRng::seed_from_u64(13);
        let tcp = tcp_header(&mut rng, false, true, false, false);
        let mut f = fixture_v6(&mut rng, 700, 1428, tcp);
        f.hdr.gso_type = 0;
        assert_eq!(complete_checksum_if_partial(&mut f.frame, &f.hdr), Ok(true));
        {
            let p = SlicedPacket::from_ethernet(&f.frame).unwrap();
            let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport)
            else {
                panic!("not tcp over ipv6");
            };
            let h: Ipv6Header = ip.header().to_header();
            let want = t.calc_checksum_ipv6(h.source, h.destination).unwrap();
            assert_eq!(t.checksum(), want);
        }

        f.hdr.flags = 0;
        let before = f.frame.clone();
        assert_eq!(
            complete_checksum_if_partial(&mut f.frame, &f.hdr),
            Ok(false)
        );
        assert_eq!(f.frame, before);
        f.hdr.flags = F_NEEDS_CSUM;
        f.hdr.csum_start = 9999;
        assert!(complete_checksum_if_partial(&mut f.frame, &f.hdr).is_err());
    }
}

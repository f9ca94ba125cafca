//! Decide once per UDP-GRO read: the datagrams at the start of one read that
//! carry consecutive segments of one TCP flow, found before the pipeline
//! sees any of them.
//!
//! A `UDP_GRO` read from the underlay holds up to 64 encapsulated frames of
//! one outer flow. When the frames inside continue one TCP flow (the rules
//! of [`super::gro`]: same headers but sequence number, IP identification
//! and checksums; ACK or ACK|PSH; every payload the first one's size but the
//! last; every TCP checksum verified), they share a route and a verdict: the
//! pipeline decides the first, and the worker writes them to the pod's tap
//! as one super-frame whose headers are the decided first frame's
//! ([`super_headers`]) and whose payloads stay where the read put them.
//! Equal outer bytes before the inner frame (the VXLAN header) are required
//! too, so that all of them were for the same VNI.
//!
//! Contract: no I/O, no panic on any input, no allocation once the output
//! vectors have grown.

use std::ops::Range;

use super::gro::{Open, checksum_ok, continues, finish_headers, parse_at};
use super::udp_gro;
use crate::wire::virtio_net;

/// A run of segments found in a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    /// Datagrams in the run, from the start of the read (0: none, the first
    /// datagram is not a mergeable segment; 1: nothing to merge it with).
    pub count: usize,
    /// Every datagram's TCP payload, a range of the read.
    pub payloads: Vec<Range<usize>>,
    /// Payload bytes of the first segment (the super-frame's segment size).
    pub mss: usize,
    /// A segment of the run carried PSH.
    pub psh: bool,
}

impl Run {
    /// Payload bytes of the whole run.
    pub fn payload_len(&self) -> usize {
        self.payloads.iter().map(|p| p.len()).sum()
    }
}

/// Finds the run at the start of `read`, `segment` bytes per datagram (a
/// `UDP_GRO` read), whose inner Ethernet frames start `inner` bytes into
/// each datagram. Every segment's TCP checksum is verified, as the run is
/// written with `NEEDS_CSUM`, which the receiving kernel trusts; unless
/// `partial`: the sender left them partial for the receiving kernel (the
/// outer bytes, equal across the run, say so), and there is nothing to
/// verify.
pub fn find(read: &[u8], segment: usize, inner: usize, partial: bool, run: &mut Run) {
    run.count = 0;
    run.payloads.clear();
    run.psh = false;
    let mut datagrams = udp_gro::datagrams(read, segment);
    let Some(first) = datagrams.next() else {
        return;
    };
    let Some(mut seg) = parse_at(first, inner) else {
        return;
    };
    seg.partial = partial;
    if !checksum_ok(first, &seg, first.len()) {
        return;
    }
    let mut open = Open::new(seg, first.len() - seg.payload);
    let mut ip_len = first.len() - inner - super::gro::ETH_LEN;
    let mut at = 0;
    run.payloads.push(seg.payload..first.len());
    for datagram in datagrams {
        at += segment;
        if open.closed() {
            break;
        }
        let Some(mut next) = parse_at(datagram, inner) else {
            break;
        };
        next.partial = partial;
        let len = datagram.len() - next.payload;
        if datagram.get(..inner) != first.get(..inner)
            || !continues(first, inner, &open, ip_len, datagram, &next, len)
            || !checksum_ok(datagram, &next, datagram.len())
        {
            break;
        }
        open.join(&next, len);
        ip_len += len;
        run.payloads.push(at + next.payload..at + datagram.len());
    }
    run.count = open.count();
    run.mss = open.mss();
    run.psh = open.psh();
}

/// Writes to `out` the headers of the super-frame that carries `run`:
/// `frame` is its first segment as the pipeline decided it (virtio-net
/// header, Ethernet frame, the first payload at its end). Returns `false`
/// (and `out` is meaningless) if `frame` is not that segment.
pub fn super_headers(frame: &[u8], run: &Run, out: &mut Vec<u8>) -> bool {
    let Some(seg) = parse_at(frame, virtio_net::LEN) else {
        return false;
    };
    let first_len = run.payloads.first().map_or(0, |p| p.len());
    if frame.len() - seg.payload != first_len || first_len != run.mss {
        return false;
    }
    out.clear();
    out.extend_from_slice(&frame[..seg.payload]);
    let mut open = Open::new(seg, run.mss);
    open.set_psh(run.psh);
    let l4_len = seg.payload - seg.l4() + run.payload_len();
    finish_headers(out, &open, l4_len);
    true
}

#[cfg(test)]
#[path = "gro_run_tests.rs"]
mod tests;

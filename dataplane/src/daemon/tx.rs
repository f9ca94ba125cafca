//! Sending to the underlay: the datagrams a super-frame was split into, as
//! gathered UDP GSO sends (per-segment headers and payload slices of the
//! frame, one `sendmsg` for up to 64 datagrams), `sendmmsg` batches, and the
//! choice of the socket a flow leaves from.

use std::io::{ErrorKind, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::RawFd;

use super::shared::WorkerCounters;
use super::worker::WorkerIo;
use crate::offload::gso::{GatherPart, GatherPlan};
use crate::pipeline::Encap;
use crate::sys::mmsg::{self, GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use crate::table::peers::Backend;

/// The socket an encapsulated frame leaves from: for VXLAN the sender socket
/// the flow hash picks, so the outer source port varies per flow (RFC 7348
/// §5); for flannel UDP the UDP socket.
pub(super) fn socket(io: &WorkerIo, backend: Backend, encap: Encap) -> &UdpSocket {
    match backend {
        Backend::Vxlan if !io.vxlan_senders.is_empty() => {
            &io.vxlan_senders[encap.flow_hash as usize % io.vxlan_senders.len()]
        }
        Backend::Vxlan => &io.vxlan,
        Backend::Udp => &io.udp,
    }
}

/// Sends datagrams with `sendmmsg`, counting what was sent and what was
/// dropped (a full socket buffer drops the rest, as a lossy link would).
pub(super) fn send_all(counters: &mut WorkerCounters, fd: RawFd, msgs: &[(&[u8], SocketAddr)]) {
    let mut sent = 0;
    while sent < msgs.len() {
        match mmsg::send_batch(fd, &msgs[sent..]) {
            Ok(0) => break,
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    counters.underlay_tx += sent as u64;
    counters.io_errors += (msgs.len() - sent) as u64;
}

/// Sends the datagrams of `plan` (headers in the plan, payloads ranges of
/// `frame`) to `dst`: runs of up to [`GSO_MAX_SEGMENTS`] datagrams as one
/// gathered UDP GSO `sendmsg` each, or one by one where GSO is refused.
/// Datagrams sent and not sent are counted in `counters`.
pub(super) fn send_plan(
    counters: &mut WorkerCounters,
    gso: &mut bool,
    fd: RawFd,
    dst: SocketAddr,
    frame: &[u8],
    plan: &GatherPlan,
) {
    let segment = plan.segment_len();
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(2 * GSO_MAX_SEGMENTS);
    let mut parts = plan.parts.as_slice();
    while !parts.is_empty() {
        // A run: every datagram `segment` bytes long but the last.
        let mut n = 0;
        let mut bytes = 0;
        while n < parts.len() && n < GSO_MAX_SEGMENTS {
            let len = parts[n].header.len() + parts[n].payload.len();
            if len > segment || bytes + len > GSO_MAX_BYTES {
                break;
            }
            bytes += len;
            n += 1;
            if len < segment {
                break;
            }
        }
        let n = n.max(1);
        let (run, rest) = parts.split_at(n);
        parts = rest;
        iov.clear();
        for part in run {
            push_part(&mut iov, plan, frame, part);
        }
        if *gso && n > 1 {
            // segment <= GSO_MAX_BYTES: it fits 16 bits.
            match mmsg::send_vectored(fd, &iov, Some(segment as u16), dst) {
                Ok(_) => {
                    counters.underlay_tx += n as u64;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    counters.io_errors += n as u64;
                    continue;
                }
                Err(e) => {
                    // EIO: the route's device cannot checksum, so GSO never
                    // works; anything else (EINVAL for a smaller path MTU)
                    // may be about this run only.
                    if e.raw_os_error() == Some(libc::EIO) {
                        *gso = false;
                    }
                    tracing::debug!(error = %e, "UDP GSO send refused; sending datagrams one by one");
                }
            }
        }
        for part in run {
            iov.clear();
            push_part(&mut iov, plan, frame, part);
            match mmsg::send_vectored(fd, &iov, None, dst) {
                Ok(_) => counters.underlay_tx += 1,
                Err(_) => counters.io_errors += 1,
            }
        }
    }
}

/// Appends a datagram's header and payload slices (empty ones left out).
fn push_part<'a>(
    iov: &mut Vec<IoSlice<'a>>,
    plan: &'a GatherPlan,
    frame: &'a [u8],
    part: &GatherPart,
) {
    let header = plan.headers.get(part.header.clone()).unwrap_or_default();
    let payload = frame.get(part.payload.clone()).unwrap_or_default();
    for slice in [header, payload] {
        if !slice.is_empty() {
            iov.push(IoSlice::new(slice));
        }
    }
}

//! Sending to the underlay: the datagrams a super-frame was split into, as
//! gathered UDP GSO sends (per-segment headers and payload slices of the
//! frame, one `sendmsg` for up to 64 datagrams) and `sendmmsg` batches.

use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::shared::WorkerCounters;
use crate::offload::gso::{self, GatherPart, GatherPlan};
use tweed_sys::mmsg::{self, GSO_MAX_BYTES, GSO_MAX_SEGMENTS};

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
        let n = gso::gso_run(parts, segment, GSO_MAX_SEGMENTS, GSO_MAX_BYTES);
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

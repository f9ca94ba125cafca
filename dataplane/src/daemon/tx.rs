//! Sending to the underlay: UDP GSO "trains" (the datagrams for one
//! destination laid end to end and sent with one `sendmsg`), `sendmmsg`
//! batches, and the choice of the socket a flow leaves from.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::RawFd;

use super::shared::WorkerCounters;
use super::worker::WorkerIo;
use crate::pipeline::Encap;
use crate::sys::mmsg::{self, GSO_MAX_BYTES, GSO_MAX_SEGMENTS, MAX_BATCH};
use crate::table::peers::Backend;

/// Datagrams for one destination laid end to end for a UDP GSO send: all of
/// `segment` bytes but the last, which may be shorter.
#[derive(Debug, Default)]
pub(super) struct Train {
    pub(super) buf: Vec<u8>,
    pub(super) segment: usize,
    pub(super) count: usize,
    /// The last datagram is shorter than `segment`: nothing may follow it.
    pub(super) short: bool,
}

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

/// A [`Train`] being filled for one destination.
pub(super) struct TrainOut<'a> {
    pub(super) fd: RawFd,
    pub(super) dst: SocketAddr,
    pub(super) counters: &'a mut WorkerCounters,
    pub(super) gso: &'a mut bool,
    pub(super) train: &'a mut Train,
}

impl TrainOut<'_> {
    /// Appends the datagram `write` produces, first sending the train if
    /// the datagram cannot join it.
    pub(super) fn push(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let before = self.train.buf.len();
        write(&mut self.train.buf);
        let len = self.train.buf.len() - before;
        if len == 0 {
            return;
        }
        let t = &mut *self.train;
        if t.count > 0
            && (t.short
                || len > t.segment
                || t.count >= GSO_MAX_SEGMENTS
                || t.buf.len() > GSO_MAX_BYTES)
        {
            send_train(
                self.counters,
                self.gso,
                self.fd,
                self.dst,
                &t.buf[..before],
                t.segment,
                t.count,
            );
            t.buf.drain(..before);
            t.count = 0;
        }
        if t.count == 0 {
            t.segment = len;
            t.short = false;
        } else if len < t.segment {
            t.short = true;
        }
        t.count += 1;
    }

    /// Sends what is left of the train.
    pub(super) fn finish(&mut self) {
        let t = &mut *self.train;
        if t.count > 0 {
            send_train(
                self.counters,
                self.gso,
                self.fd,
                self.dst,
                &t.buf,
                t.segment,
                t.count,
            );
        }
        t.buf.clear();
        t.count = 0;
        t.short = false;
    }
}

/// Sends `count` datagrams laid end to end in `buf`, `segment` bytes each
/// but the last: one UDP GSO send, or `sendmmsg` where GSO is refused.
pub(super) fn send_train(
    counters: &mut WorkerCounters,
    gso: &mut bool,
    fd: RawFd,
    dst: SocketAddr,
    buf: &[u8],
    segment: usize,
    count: usize,
) {
    if *gso && count > 1 {
        // segment < buf.len() <= GSO_MAX_BYTES: it fits 16 bits.
        match mmsg::send_gso(fd, buf, segment as u16, dst) {
            Ok(_) => {
                counters.underlay_tx += count as u64;
                return;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                counters.io_errors += count as u64;
                return;
            }
            Err(e) => {
                // EIO: the route's device cannot checksum, so GSO never
                // works; anything else (EINVAL for a smaller path MTU) may
                // be about this train only.
                if e.raw_os_error() == Some(libc::EIO) {
                    *gso = false;
                }
                tracing::debug!(error = %e, "UDP GSO send refused; sending datagrams one by one");
            }
        }
    }
    let msgs: Vec<(&[u8], SocketAddr)> = buf.chunks(segment.max(1)).map(|d| (d, dst)).collect();
    for chunk in msgs.chunks(MAX_BATCH) {
        send_all(counters, fd, chunk);
    }
}

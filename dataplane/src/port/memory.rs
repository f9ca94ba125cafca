//! In-memory ports, for tests and simulations: a tap is a queue of byte
//! frames, the underlay a list of datagrams that a test carries (delayed,
//! reordered or lost as it likes) from one dataplane to another.
//!
//! GSO segment plans are cut into datagrams exactly as the kernel cuts a
//! `UDP_SEGMENT` send: each run the daemon would hand to one gathered
//! `sendmsg` ([`gso::gso_run`]) is concatenated and cut every
//! `segment` bytes, so a plan whose parts do not line up with its segment
//! size shows up as wrong datagrams here, as it would on a real wire.
//!
//! Nothing here is fast: every frame is copied into its own `Vec`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, IoSlice};
use std::net::{IpAddr, SocketAddr};

use super::seam::{GroDatagram, Received, RxPort, Tap, TxPorts, UnderlayRx, Via};
use crate::frame::Frame;
use crate::offload::gso::{self, GatherPlan};
use crate::table::peers::Backend;
use tweed_sys::mmsg::{GSO_MAX_BYTES, GSO_MAX_SEGMENTS};

/// A tap's queue of frames (virtio-net header + Ethernet frame) waiting to
/// be read, as the pod's kernel hands them to the tap.
#[derive(Debug, Default)]
pub struct MemTap {
    /// The frames, oldest first.
    pub inbox: VecDeque<Vec<u8>>,
    /// Frames longer than a buffer, dropped on read (as a tap would
    /// truncate them, which the worker's buffers never allow).
    pub oversized: u64,
}

impl RxPort for MemTap {
    fn recv_batch(&mut self, frames: &mut [Frame]) -> Received {
        let mut got = Received::default();
        while got.frames < frames.len() {
            let Some(bytes) = self.inbox.pop_front() else {
                break;
            };
            let frame = &mut frames[got.frames];
            let buffer = frame.read_buffer();
            if bytes.len() > buffer.len() {
                self.oversized += 1;
                got.failed = true;
                continue;
            }
            buffer[..bytes.len()].copy_from_slice(&bytes);
            frame.set_len(bytes.len());
            got.frames += 1;
        }
        got
    }
}

/// A datagram on the in-memory underlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sending socket's address.
    pub from: SocketAddr,
    /// Where it goes.
    pub to: SocketAddr,
    /// Its UDP payload.
    pub bytes: Vec<u8>,
}

/// An underlay socket's queue of datagrams that arrived, read as a socket
/// with `UDP_GRO` reads it: consecutive datagrams of one sender, all as long
/// as the first but the last (which may be shorter), up to
/// [`GSO_MAX_SEGMENTS`] and the buffer, come in one read.
#[derive(Debug, Default)]
pub struct MemUnderlay {
    /// The datagrams, oldest first.
    pub inbox: VecDeque<Datagram>,
    /// Reads that held more than one datagram.
    pub coalesced: u64,
}

impl UnderlayRx for MemUnderlay {
    fn recv_gro(&mut self, buf: &mut [u8]) -> io::Result<GroDatagram> {
        let Some(first) = self.inbox.pop_front() else {
            return Err(ErrorKind::WouldBlock.into());
        };
        let segment = first.bytes.len();
        let len = segment.min(buf.len());
        buf[..len].copy_from_slice(&first.bytes[..len]);
        let mut read = GroDatagram {
            len,
            from: first.from,
            segment: len,
        };
        let mut count = 1;
        while let Some(next) = self.inbox.front() {
            let fits = read.len + next.bytes.len() <= buf.len();
            let joins = next.from == first.from
                && next.to == first.to
                && !next.bytes.is_empty()
                && next.bytes.len() <= segment
                && segment > 0
                && count < GSO_MAX_SEGMENTS;
            if !fits || !joins || !read.len.is_multiple_of(segment) {
                break;
            }
            let Some(next) = self.inbox.pop_front() else {
                break;
            };
            buf[read.len..read.len + next.bytes.len()].copy_from_slice(&next.bytes);
            read.len += next.bytes.len();
            count += 1;
        }
        if count > 1 {
            self.coalesced += 1;
        }
        Ok(read)
    }
}

/// One dataplane's ports in memory, as its output stage transmits through
/// them: what was written to each tap and what was sent to the underlay.
#[derive(Debug)]
pub struct MemPorts {
    /// The address VXLAN datagrams leave from.
    pub vxlan_from: SocketAddr,
    /// The address flannel-UDP datagrams leave from.
    pub udp_from: SocketAddr,
    /// Frames written to each tap, oldest first.
    pub written: HashMap<Tap, VecDeque<Vec<u8>>>,
    /// Frames written per tap, counting each merged frame's segments.
    pub packets: HashMap<Tap, u64>,
    /// Datagrams sent, oldest first.
    pub sent: Vec<Datagram>,
    /// Gathered GSO sends (runs of two datagrams or more).
    pub gso_sends: u64,
}

impl MemPorts {
    /// Ports of a dataplane on `ip` with these VXLAN and flannel-UDP ports.
    pub fn new(ip: IpAddr, vxlan_port: u16, udp_port: u16) -> Self {
        MemPorts {
            vxlan_from: SocketAddr::new(ip, vxlan_port),
            udp_from: SocketAddr::new(ip, udp_port),
            written: HashMap::new(),
            packets: HashMap::new(),
            sent: Vec::new(),
            gso_sends: 0,
        }
    }

    fn from(&self, via: Via) -> SocketAddr {
        match via.backend {
            Backend::Vxlan => self.vxlan_from,
            Backend::Udp => self.udp_from,
        }
    }

    fn write(&mut self, to: Tap, bytes: Vec<u8>, packets: u64) {
        self.written.entry(to).or_default().push_back(bytes);
        *self.packets.entry(to).or_default() += packets;
    }
}

impl<'f> TxPorts<'f> for MemPorts {
    fn frame(&mut self, to: Tap, frame: &'f [u8], _bytes: u64) {
        self.write(to, frame.to_vec(), 1);
    }

    fn gathered(&mut self, to: Tap, parts: &[IoSlice<'_>], packets: u64, _bytes: u64) {
        let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        self.write(to, bytes, packets);
    }

    fn datagram(&mut self, via: Via, frame: &'f [u8], dst: SocketAddr) {
        let from = self.from(via);
        self.sent.push(Datagram {
            from,
            to: dst,
            bytes: frame.to_vec(),
        });
    }

    fn segments(&mut self, via: Via, dst: SocketAddr, frame: &[u8], plan: &GatherPlan) {
        let from = self.from(via);
        let segment = plan.segment_len();
        let mut parts = plan.parts.as_slice();
        while !parts.is_empty() {
            let n = gso::gso_run(parts, segment, GSO_MAX_SEGMENTS, GSO_MAX_BYTES);
            let (run, rest) = parts.split_at(n);
            parts = rest;
            let mut send = Vec::new();
            for part in run {
                send.extend_from_slice(plan.headers.get(part.header.clone()).unwrap_or_default());
                send.extend_from_slice(frame.get(part.payload.clone()).unwrap_or_default());
            }
            if n > 1 {
                self.gso_sends += 1;
            }
            // The kernel's UDP GSO: a datagram every `segment` bytes.
            for bytes in send.chunks(segment.max(1)) {
                self.sent.push(Datagram {
                    from,
                    to: dst,
                    bytes: bytes.to_vec(),
                });
            }
        }
    }

    fn flush(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::gso::GatherPart;

    #[test]
    fn a_tap_hands_over_its_frames_in_order_and_drops_oversized_ones() {
        let mut tap = MemTap::default();
        tap.inbox.extend([vec![1; 20], vec![2; 5000], vec![3; 30]]);
        let mut frames: Vec<Frame> = (0..2).map(|_| Frame::with_capacity(100)).collect();
        let got = tap.recv_batch(&mut frames);
        assert_eq!(
            got,
            Received {
                frames: 2,
                failed: true
            }
        );
        assert_eq!(frames[0].data(), &[1; 20]);
        assert_eq!(frames[1].data(), &[3; 30]);
        assert_eq!(tap.oversized, 1);
        assert_eq!(tap.recv_batch(&mut frames).frames, 0);
    }

    #[test]
    fn the_underlay_coalesces_a_flow_like_udp_gro_and_stops_after_a_short_datagram() {
        let a = SocketAddr::from(([192, 168, 0, 1], 4789));
        let b = SocketAddr::from(([192, 168, 0, 3], 4789));
        let to = SocketAddr::from(([192, 168, 0, 2], 4789));
        let d = |from, len: usize, byte| Datagram {
            from,
            to,
            bytes: vec![byte; len],
        };
        let mut underlay = MemUnderlay::default();
        underlay.inbox.extend([
            d(a, 100, 1),
            d(a, 100, 2),
            d(a, 40, 3),
            d(a, 100, 4),
            d(b, 100, 5),
        ]);
        let mut buf = vec![0; 1000];
        let read = underlay.recv_gro(&mut buf).unwrap();
        assert_eq!((read.len, read.segment, read.from), (240, 100, a));
        assert_eq!(buf[239], 3);
        let read = underlay.recv_gro(&mut buf).unwrap();
        assert_eq!(
            (read.len, read.from),
            (100, a),
            "a new read after the short one"
        );
        let read = underlay.recv_gro(&mut buf).unwrap();
        assert_eq!(
            (read.len, read.from),
            (100, b),
            "another sender is another read"
        );
        assert_eq!(underlay.coalesced, 1);
        let err = underlay.recv_gro(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
    }

    #[test]
    fn a_plan_is_cut_into_datagrams_as_the_kernel_cuts_a_gso_send() {
        let frame: Vec<u8> = (0..=255).collect();
        let plan = GatherPlan {
            headers: vec![0xa, 0xa, 0xb, 0xb, 0xc, 0xc],
            parts: vec![
                GatherPart {
                    header: 0..2,
                    payload: 0..100,
                },
                GatherPart {
                    header: 2..4,
                    payload: 100..200,
                },
                GatherPart {
                    header: 4..6,
                    payload: 200..256,
                },
            ],
        };
        let mut ports = MemPorts::new(IpAddr::from([192, 168, 0, 1]), 4789, 8285);
        let via = Via {
            backend: Backend::Vxlan,
            flow_hash: 0,
        };
        let dst = SocketAddr::from(([192, 168, 0, 2], 4789));
        ports.segments(via, dst, &frame, &plan);
        assert_eq!(ports.gso_sends, 1);
        let lens: Vec<usize> = ports.sent.iter().map(|d| d.bytes.len()).collect();
        assert_eq!(lens, [102, 102, 58]);
        assert_eq!(&ports.sent[1].bytes[..3], &[0xb, 0xb, 100]);
        assert!(
            ports
                .sent
                .iter()
                .all(|d| d.to == dst && d.from.port() == 4789)
        );
    }
}

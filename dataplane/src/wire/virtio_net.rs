//! The `struct virtio_net_hdr` a tap opened with `IFF_VNET_HDR` puts in front
//! of every frame (virtio 1.x §5.1.6, legacy 10-byte layout without
//! `num_buffers`).
//!
//! ```text
//! offset 0  u8   flags        NEEDS_CSUM = 1, DATA_VALID = 2
//! offset 1  u8   gso_type     NONE, TCPV4, UDP, TCPV6, UDP_L4, | ECN
//! offset 2  u16  hdr_len      length of the headers (a hint, see below)
//! offset 4  u16  gso_size     payload bytes per segment (the MSS)
//! offset 6  u16  csum_start   where the checksummed range starts
//! offset 8  u16  csum_offset  where, after csum_start, to store the sum
//! ```
//!
//! Byte order: the kernel uses the tap's vnet-header endianness, which is the
//! host's unless `TUNSETVNETBE` says otherwise. tweed configures its taps with
//! `TUNSETVNETLE` (and runs on little-endian hosts), so the 16-bit fields are
//! always little-endian here.
//!
//! Contract: [`Header::new_checked`] verifies once that the buffer holds the
//! 10-byte header; every accessor after that is infallible and cannot panic.
//! [`VirtioNetHdr`] is the plain, owned form of the same header.
//!
//! `hdr_len` is only a hint: Linux fills it with `skb_headlen()`, the length
//! of the linear part of the buffer, which may extend past the headers.

use thiserror::Error;

/// Length of the legacy virtio-net header in bytes.
pub const LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is partial; see
/// [`crate::offload::checksum::complete_partial`].
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum has already been verified.
pub const F_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO: IPv4/IPv6 UDP fragmentation offload).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO: UDP segmentation).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: flag or-ed into the gso type; the TCP segments
/// carry CWR, which must stay on the first segment only.
pub const GSO_ECN: u8 = 0x80;

/// What is wrong with a virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VirtioNetError {
    /// The buffer is shorter than the 10-byte header.
    #[error("virtio-net header truncated: {len} bytes, need {LEN}")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The gso_type (ECN flag removed) is not one virtio defines.
    #[error("unknown virtio-net gso_type {0:#04x}")]
    UnknownGsoType(u8),
}

/// The segmentation a frame asks for, the ECN flag removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GsoKind {
    /// A single frame, no segmentation.
    None,
    /// TCP over IPv4 (TSO).
    TcpV4,
    /// UDP fragmentation (UFO).
    Udp,
    /// TCP over IPv6 (TSO).
    TcpV6,
    /// UDP segmentation (USO).
    UdpL4,
}

impl GsoKind {
    /// Decodes a gso_type byte, ignoring the ECN flag.
    pub fn from_gso_type(gso_type: u8) -> Result<Self, VirtioNetError> {
        match gso_type & !GSO_ECN {
            GSO_NONE => Ok(Self::None),
            GSO_TCPV4 => Ok(Self::TcpV4),
            GSO_UDP => Ok(Self::Udp),
            GSO_TCPV6 => Ok(Self::TcpV6),
            GSO_UDP_L4 => Ok(Self::UdpL4),
            other => Err(VirtioNetError::UnknownGsoType(other)),
        }
    }

    /// The gso_type byte for this kind, without the ECN flag.
    pub fn to_gso_type(self) -> u8 {
        match self {
            Self::None => GSO_NONE,
            Self::TcpV4 => GSO_TCPV4,
            Self::Udp => GSO_UDP,
            Self::TcpV6 => GSO_TCPV6,
            Self::UdpL4 => GSO_UDP_L4,
        }
    }
}

/// A read-only view of a virtio-net header at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` after checking that it holds at least [`LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, VirtioNetError> {
        let len = buffer.as_ref().len();
        if len < LEN {
            return Err(VirtioNetError::Truncated { len });
        }
        Ok(Self { buffer })
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn le16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.byte(at), self.byte(at + 1)])
    }

    /// The flags byte ([`F_NEEDS_CSUM`], [`F_DATA_VALID`]).
    pub fn flags(&self) -> u8 {
        self.byte(0)
    }

    /// The raw gso_type byte, ECN flag included.
    pub fn gso_type(&self) -> u8 {
        self.byte(1)
    }

    /// Length of the headers (a hint; see the module doc).
    pub fn hdr_len(&self) -> u16 {
        self.le16(2)
    }

    /// Payload bytes per segment (the MSS for TCP).
    pub fn gso_size(&self) -> u16 {
        self.le16(4)
    }

    /// Offset from the start of the frame where checksumming starts.
    pub fn csum_start(&self) -> u16 {
        self.le16(6)
    }

    /// Offset after `csum_start` where the checksum is stored.
    pub fn csum_offset(&self) -> u16 {
        self.le16(8)
    }

    /// The frame after the header.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(LEN..).unwrap_or_default()
    }

    /// Copies the header out into its plain form.
    pub fn to_hdr(&self) -> VirtioNetHdr {
        VirtioNetHdr {
            flags: self.flags(),
            gso_type: self.gso_type(),
            hdr_len: self.hdr_len(),
            gso_size: self.gso_size(),
            csum_start: self.csum_start(),
            csum_offset: self.csum_offset(),
        }
    }
}

/// The virtio-net header as plain values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VirtioNetHdr {
    /// [`F_NEEDS_CSUM`], [`F_DATA_VALID`].
    pub flags: u8,
    /// Raw gso_type byte, ECN flag included.
    pub gso_type: u8,
    /// Length of the headers (a hint).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the frame.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Reads the header from the first [`LEN`] bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, VirtioNetError> {
        Header::new_checked(buf).map(|h| h.to_hdr())
    }

    /// Writes the header in little-endian order.
    pub fn write(&self, buf: &mut [u8; LEN]) {
        let [h0, h1] = self.hdr_len.to_le_bytes();
        let [g0, g1] = self.gso_size.to_le_bytes();
        let [s0, s1] = self.csum_start.to_le_bytes();
        let [o0, o1] = self.csum_offset.to_le_bytes();
        *buf = [self.flags, self.gso_type, h0, h1, g0, g1, s0, s1, o0, o1];
    }

    /// The header serialized into a fresh array.
    pub fn to_bytes(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        self.write(&mut b);
        b
    }

    /// Whether the frame is a super-frame that needs segmenting.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// Whether the ECN flag is set in gso_type.
    pub fn is_ecn(&self) -> bool {
        self.gso_type & GSO_ECN != 0
    }

    /// Whether the L4 checksum is partial and must be completed.
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// The decoded gso kind.
    pub fn gso_kind(&self) -> Result<GsoKind, VirtioNetError> {
        GsoKind::from_gso_type(self.gso_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: [u8; LEN] = [0x01, 0x81, 0x36, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];

    #[test]
    fn view_reads_little_endian_fields() {
        let mut buf = SAMPLE.to_vec();
        buf.extend_from_slice(b"frame");
        let h = Header::new_checked(&buf[..]).unwrap();
        assert_eq!(h.flags(), F_NEEDS_CSUM);
        assert_eq!(h.gso_type(), GSO_TCPV4 | GSO_ECN);
        assert_eq!(h.hdr_len(), 54);
        assert_eq!(h.gso_size(), 1448);
        assert_eq!(h.csum_start(), 34);
        assert_eq!(h.csum_offset(), 16);
        assert_eq!(h.payload(), b"frame");
    }

    #[test]
    fn parse_and_write_round_trip() {
        let hdr = VirtioNetHdr::parse(&SAMPLE).unwrap();
        assert!(hdr.is_gso());
        assert!(hdr.is_ecn());
        assert!(hdr.needs_csum());
        assert_eq!(hdr.gso_kind(), Ok(GsoKind::TcpV4));
        assert_eq!(hdr.to_bytes(), SAMPLE);
        let mut out = [0u8; LEN];
        hdr.write(&mut out);
        assert_eq!(out, SAMPLE);
    }

    #[test]
    fn truncated_is_an_error() {
        for len in 0..LEN {
            assert_eq!(
                VirtioNetHdr::parse(&SAMPLE[..len]),
                Err(VirtioNetError::Truncated { len })
            );
        }
    }

    #[test]
    fn gso_kinds() {
        for kind in [
            GsoKind::None,
            GsoKind::TcpV4,
            GsoKind::Udp,
            GsoKind::TcpV6,
            GsoKind::UdpL4,
        ] {
            assert_eq!(GsoKind::from_gso_type(kind.to_gso_type()), Ok(kind));
            assert_eq!(
                GsoKind::from_gso_type(kind.to_gso_type() | GSO_ECN),
                Ok(kind)
            );
        }
        assert_eq!(
            GsoKind::from_gso_type(2),
            Err(VirtioNetError::UnknownGsoType(2))
        );
        let plain = VirtioNetHdr::default();
        assert!(!plain.is_gso());
        let ecn_only = VirtioNetHdr {
            gso_type: GSO_ECN,
            ..Default::default()
        };
        assert!(!ecn_only.is_gso());
    }
}

//! The VXLAN header (RFC 7348 §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: [`Vxlan::new_checked`] verifies once that the buffer holds the
//! 8-byte header; every accessor after that is infallible and cannot panic.
//!
//! Reserved bits: RFC 7348 §5 says they "MUST be set to zero on transmission
//! and ignored on receipt", so this view never rejects a header because of
//! them, and [`write_header`] always zeroes them. Whether a header whose I flag
//! is clear should be dropped is the caller's decision ([`Vxlan::vni_valid`]).
//!
//! One exception, between tweed nodes only: [`FLAG_PARTIAL_CSUM`] (a reserved
//! bit of the flags byte) says the inner TCP or UDP checksum was left partial,
//! as a NIC's checksum offload leaves it (the field holds the pseudo-header
//! sum). A tweed node sets it only towards a peer that published that it
//! accepts it: a Linux `vxlan` device drops a packet with an unknown flag,
//! and another VXLAN receiver that ignores it would see a wrong checksum.

use thiserror::Error;

/// Length of the VXLAN header in bytes.
pub const HEADER_LEN: usize = 8;
/// IANA-assigned VXLAN UDP destination port (RFC 7348 §5).
pub const DEFAULT_PORT: u16 = 4789;
/// UDP port flannel (and the Linux vxlan driver's historical default) uses.
pub const FLANNEL_PORT: u16 = 8472;
/// The I flag: the VNI field is valid.
pub const FLAG_VNI_VALID: u8 = 0x08;
/// tweed's flag (a reserved bit): the inner L4 checksum is partial, to be
/// completed or trusted by the receiver; see the module doc.
pub const FLAG_PARTIAL_CSUM: u8 = 0x01;
/// Largest VNI: the field is 24 bits wide.
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// Why a buffer is not a VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VxlanError {
    /// The buffer is shorter than the 8-byte header.
    #[error("VXLAN header truncated: {len} bytes, need {HEADER_LEN}")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
}

/// A read-only view of a VXLAN header followed by its payload (the inner
/// Ethernet frame).
#[derive(Debug, Clone, Copy)]
pub struct Vxlan<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Vxlan<T> {
    /// Wraps `buffer` after checking that it holds at least [`HEADER_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, VxlanError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(VxlanError::Truncated { len });
        }
        Ok(Self { buffer })
    }

    /// The 8 header bytes; `new_checked` guarantees they exist.
    fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        if let Some(src) = self.buffer.as_ref().get(..HEADER_LEN) {
            h.copy_from_slice(src);
        }
        h
    }

    /// The flags byte, reserved bits included.
    pub fn flags(&self) -> u8 {
        self.header()[0]
    }

    /// Whether the I flag is set, i.e. the VNI field is meaningful.
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_VNI_VALID != 0
    }

    /// Whether the sender left the inner L4 checksum partial
    /// ([`FLAG_PARTIAL_CSUM`]).
    pub fn partial_csum(&self) -> bool {
        self.flags() & FLAG_PARTIAL_CSUM != 0
    }

    /// The 24-bit VXLAN network identifier (the trailing reserved byte is ignored).
    pub fn vni(&self) -> u32 {
        let h = self.header();
        u32::from_be_bytes([0, h[4], h[5], h[6]])
    }

    /// The bytes after the header: the inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or_default()
    }

    /// Gives the wrapped buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

/// Writes a VXLAN header with the I flag set, `vni` (masked to 24 bits) and
/// all reserved bits zero but [`FLAG_PARTIAL_CSUM`] when `partial_csum`.
pub fn write_header(buf: &mut [u8; HEADER_LEN], vni: u32, partial_csum: bool) {
    let v = (vni & MAX_VNI).to_be_bytes();
    let flags = if partial_csum {
        FLAG_VNI_VALID | FLAG_PARTIAL_CSUM
    } else {
        FLAG_VNI_VALID
    };
    *buf = [flags, 0, 0, 0, v[1], v[2], v[3], 0];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_layout() {
        let bytes = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xaa, 0xbb];
        let v = Vxlan::new_checked(&bytes[..]).unwrap();
        assert_eq!(v.flags(), 0x08);
        assert!(v.vni_valid());
        assert_eq!(v.vni(), 0x12_3456);
        assert_eq!(v.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn reserved_bits_are_ignored() {
        let bytes = [0xf7 | 0x08, 0xff, 0xff, 0xff, 0, 0, 1, 0xff];
        let v = Vxlan::new_checked(bytes).unwrap();
        assert!(v.vni_valid());
        assert_eq!(v.vni(), 1);
        assert!(v.payload().is_empty());

        let no_i = Vxlan::new_checked([0xf7u8, 0, 0, 0, 0, 0, 1, 0]).unwrap();
        assert!(!no_i.vni_valid());
    }

    #[test]
    fn truncated_is_an_error() {
        for len in 0..HEADER_LEN {
            let buf = vec![0x08; len];
            assert_eq!(
                Vxlan::new_checked(&buf[..]).unwrap_err(),
                VxlanError::Truncated { len }
            );
        }
    }

    #[test]
    fn write_round_trips_and_masks() {
        let mut buf = [0xffu8; HEADER_LEN];
        write_header(&mut buf, 0xab_cdef, false);
        assert_eq!(buf, [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        write_header(&mut buf, 0xff00_0001, false);
        let v = Vxlan::new_checked(buf).unwrap();
        assert_eq!(v.vni(), 1);
        assert_eq!(v.flags(), FLAG_VNI_VALID);
        assert!(!v.partial_csum());
    }

    #[test]
    fn the_partial_checksum_flag_round_trips_beside_the_i_flag() {
        let mut buf = [0u8; HEADER_LEN];
        write_header(&mut buf, 7, true);
        let v = Vxlan::new_checked(buf).unwrap();
        assert!(v.vni_valid() && v.partial_csum());
        assert_eq!(v.vni(), 7);
        assert_eq!(v.flags(), FLAG_VNI_VALID | FLAG_PARTIAL_CSUM);
    }

    #[test]
    fn ports() {
        assert_eq!(DEFAULT_PORT, 4789);
        assert_eq!(FLANNEL_PORT, 8472);
    }
}

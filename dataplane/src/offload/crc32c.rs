//! CRC32c (Castagnoli), the checksum of SCTP (RFC 9260 §6.8, Appendix A):
//! what a translated SCTP packet needs recomputed, since unlike TCP's and
//! UDP's sum it cannot be updated from the changed words alone.
//!
//! Table-driven, a byte at a time: SCTP packets that get here are at most an
//! MTU long, and translation is the only user.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82f6_3b78;

/// The remainder of every byte value, computed at build time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC32c of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// Runs the register over `bytes`.
fn update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, &b| {
        TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8)
    })
}

/// Offset of the checksum in the SCTP common header.
pub const SCTP_CSUM_OFFSET: usize = 8;
/// Length of the SCTP common header (ports, verification tag, checksum).
pub const SCTP_LEN: usize = 12;

/// The checksum an SCTP packet (`sctp`: its common header and chunks)
/// should carry: the CRC32c of the packet with the checksum field zeroed.
/// `None` when it is shorter than the common header.
pub fn sctp_checksum(sctp: &[u8]) -> Option<u32> {
    let before = sctp.get(..SCTP_CSUM_OFFSET)?;
    let after = sctp.get(SCTP_CSUM_OFFSET + 4..)?;
    Some(!update(update(update(!0, before), &[0; 4]), after))
}

/// The checksum an SCTP packet carries. The CRC's bytes travel least
/// significant first (RFC 9260 Appendix A), as iSCSI's do.
pub fn sctp_carried(sctp: &[u8]) -> Option<u32> {
    let field = sctp.get(SCTP_CSUM_OFFSET..SCTP_CSUM_OFFSET + 4)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// Writes the checksum of `sctp` into its header; false (and nothing
/// written) when it is shorter than the common header.
pub fn sctp_fill(sctp: &mut [u8]) -> bool {
    let Some(sum) = sctp_checksum(sctp) else {
        return false;
    };
    sctp[SCTP_CSUM_OFFSET..SCTP_CSUM_OFFSET + 4].copy_from_slice(&sum.to_le_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_values_of_crc32c() {
        // The "check" value of CRC-32C in the catalogue of CRC parameters.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of ones, ascending.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn an_sctp_checksum_skips_its_own_field_and_travels_least_significant_byte_first() {
        // Common header (ports 5000 → 80, tag 1) and a 4-byte chunk.
        let mut sctp = vec![0x13, 0x88, 0, 80, 0, 0, 0, 1, 9, 9, 9, 9, 1, 0, 0, 4];
        let mut zeroed = sctp.clone();
        zeroed[8..12].fill(0);
        let want = crc32c(&zeroed);
        assert_eq!(sctp_checksum(&sctp), Some(want), "whatever the field held");
        assert!(sctp_fill(&mut sctp));
        assert_eq!(&sctp[8..12], &want.to_le_bytes());
        assert_eq!(sctp_carried(&sctp), Some(want));
    }

    #[test]
    fn a_packet_shorter_than_the_common_header_has_no_checksum() {
        let mut short = [0u8; 11];
        assert_eq!(sctp_checksum(&short), None);
        assert_eq!(sctp_carried(&short[..8]), None);
        assert!(!sctp_fill(&mut short));
        assert_eq!(short, [0; 11]);
    }
}

//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` partial sums of big-endian 16-bit words, not yet
//! folded, so they can be chained: `sum(b, sum(a, 0))` equals `sum(a ++ b, 0)`
//! as long as `a` has an even length. [`finish`] folds and complements a sum
//! into the value stored in a header. [`sum`] adds little-endian 32-bit words
//! in eight independent 64-bit lanes (SIMD adds once compiled), folds the
//! carries once at the end and swaps the result's bytes, which the
//! ones'-complement arithmetic allows (RFC 1071 §2: "parallel summation",
//! "byte order independence").
//!
//! Nothing here panics: every offset that comes from a caller is checked.

use thiserror::Error;

/// What is wrong with the bytes a checksum operation was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChecksumError {
    /// `csum_start` lies past the end of the packet.
    #[error("checksum start {csum_start} is past the end of the {len}-byte packet")]
    StartOutOfBounds {
        /// The requested start.
        csum_start: usize,
        /// Packet length.
        len: usize,
    },
    /// The 2-byte checksum field at `csum_start + csum_offset` does not fit.
    #[error("checksum field at {field} does not fit in the {len}-byte packet")]
    FieldOutOfBounds {
        /// Offset of the field from the start of the packet.
        field: usize,
        /// Packet length.
        len: usize,
    },
    /// Fewer bytes than an IPv4 header (or than its IHL says).
    #[error("IPv4 header truncated: {len} bytes, need {need}")]
    Ipv4Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The version nibble is not 4.
    #[error("not an IPv4 header: version {0}")]
    NotIpv4(u8),
    /// The TTL is already zero and cannot be decremented.
    #[error("IPv4 TTL is already zero")]
    TtlZero,
}

/// Adds `data` to the partial sum `initial`, as big-endian 16-bit words; an
/// odd trailing byte is padded with a zero byte (RFC 1071 §4.1).
pub fn sum(data: &[u8], initial: u32) -> u32 {
    if data.len() <= SHORT {
        return sum_short(data, initial);
    }
    let (words, tail) = data.as_chunks::<4>();
    // The bulk as little-endian 32-bit words, which the ones'-complement sum
    // allows (RFC 1071 §2(B): byte order independence, swapped at the end).
    let bulk = fold64(sum_words(words)) as u32;
    let bulk = u64::from(fold(bulk).swap_bytes());
    // At most 3 bytes left, at an even offset: big-endian 16-bit words.
    let mut acc = bulk + u64::from(initial);
    let (pairs, last) = tail.as_chunks::<2>();
    for w in pairs {
        acc += u64::from(u16::from_be_bytes(*w));
    }
    if let [b] = last {
        acc += u64::from(*b) << 8;
    }
    fold64(acc) as u32
}

/// Inputs up to this long (addresses, an IP header, a TCP header) are
/// summed word by word: the lanes' set-up and folds would cost more than
/// the words, and headers are summed once per segment.
const SHORT: usize = 64;

/// [`sum`] of a short input: big-endian 16-bit words into 64 bits, folded
/// once (at most 32 words, far from overflowing).
fn sum_short(data: &[u8], initial: u32) -> u32 {
    let (pairs, last) = data.as_chunks::<2>();
    let mut acc = u64::from(initial);
    for w in pairs {
        acc += u64::from(u16::from_be_bytes(*w));
    }
    if let [b] = last {
        acc += u64::from(*b) << 8;
    }
    fold64(acc) as u32
}

/// Lanes [`sum_words`] keeps apart so that the additions do not wait on each
/// other (the compiler turns them into SIMD adds).
const LANES: usize = 8;
/// Words summed before the lanes are folded: each lane then holds less than
/// 2^32 · 2^24, far from overflowing 64 bits.
const WORDS_PER_FOLD: usize = 1 << 24;

/// The sum of little-endian 32-bit words in 64-bit lanes (carries pile up in
/// the high bits and are folded once at the end).
fn sum_words(words: &[[u8; 4]]) -> u64 {
    let mut total = 0u64;
    for part in words.chunks(WORDS_PER_FOLD) {
        let (blocks, rest) = part.as_chunks::<LANES>();
        let mut lanes = [0u64; LANES];
        for block in blocks {
            for (lane, word) in lanes.iter_mut().zip(block) {
                *lane += u64::from(u32::from_le_bytes(*word));
            }
        }
        let mut acc = 0u64;
        for lane in lanes {
            acc = fold64(acc + fold64(lane));
        }
        for word in rest {
            acc += u64::from(u32::from_le_bytes(*word));
        }
        total = fold64(total + fold64(acc));
    }
    total
}

/// Folds a 64-bit ones'-complement sum into 32 bits (value preserved mod 0xffff).
fn fold64(mut acc: u64) -> u64 {
    while acc > u64::from(u32::MAX) {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc
}

/// Folds a partial sum into 16 bits, without complementing it.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The value to store in a checksum field: the folded sum, complemented.
///
/// UDP callers must send a computed zero as `0xffff` (RFC 768); TCP and IPv4
/// store the value as is.
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// Partial sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768).
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, l4_len: u32) -> u32 {
    let s = sum(&src, 0);
    let s = sum(&dst, s);
    add_len_proto(s, protocol, l4_len)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, l4_len: u32) -> u32 {
    let s = sum(&src, 0);
    let s = sum(&dst, s);
    add_len_proto(s, next_header, l4_len)
}

fn add_len_proto(s: u32, protocol: u8, l4_len: u32) -> u32 {
    let acc =
        u64::from(s) + u64::from(protocol) + u64::from(l4_len >> 16) + u64::from(l4_len & 0xffff);
    fold64(acc) as u32
}

/// Updates `checksum` for one 16-bit word changing from `old` to `new`
/// (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`).
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    update(checksum, u32::from(!old) + u32::from(new))
}

/// Updates `checksum` by `change` (a sum of `~m + m'` terms, see [`change`]).
pub fn update(checksum: u16, change: u32) -> u16 {
    !fold(u32::from(!checksum) + change)
}

/// What `old` becoming `new` adds to a ones'-complement sum: `~m + m'` over
/// the 16-bit words of two equally long byte strings, folded. Added to a
/// partial sum as is, or to a stored checksum through [`update`].
pub fn change(old: &[u8], new: &[u8]) -> u32 {
    let words = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let sum: u32 = old
        .chunks_exact(2)
        .zip(new.chunks_exact(2))
        .map(|(o, n)| u32::from(!words(o)) + u32::from(words(n)))
        .sum();
    u32::from(fold(sum))
}

/// Decrements the TTL of the IPv4 header at the start of `ip_header` and
/// patches the header checksum incrementally; returns the new TTL.
///
/// A TTL of zero is an error; deciding to drop at TTL 1 (and to send ICMP
/// time exceeded) is the caller's job.
pub fn ipv4_decrement_ttl(ip_header: &mut [u8]) -> Result<u8, ChecksumError> {
    let len = ip_header.len();
    let Some(h) = ip_header.first_chunk_mut::<20>() else {
        return Err(ChecksumError::Ipv4Truncated { len, need: 20 });
    };
    let version = h[0] >> 4;
    if version != 4 {
        return Err(ChecksumError::NotIpv4(version));
    }
    let ttl = h[8];
    let proto = h[9];
    let new_ttl = ttl.checked_sub(1).ok_or(ChecksumError::TtlZero)?;
    let old_csum = u16::from_be_bytes([h[10], h[11]]);
    let csum = update_u16(
        old_csum,
        u16::from_be_bytes([ttl, proto]),
        u16::from_be_bytes([new_ttl, proto]),
    );
    h[8] = new_ttl;
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    Ok(new_ttl)
}

/// Completes a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`,
/// `CHECKSUM_PARTIAL`): the field at `csum_start + csum_offset` holds the
/// folded pseudo-header sum; sum everything from `csum_start` to the end of
/// `packet` (that field included) and store the complement there.
pub fn complete_partial(
    packet: &mut [u8],
    csum_start: usize,
    csum_offset: usize,
) -> Result<(), ChecksumError> {
    let len = packet.len();
    if csum_start > len {
        return Err(ChecksumError::StartOutOfBounds { csum_start, len });
    }
    let field = csum_start.saturating_add(csum_offset);
    if field.saturating_add(2) > len {
        return Err(ChecksumError::FieldOutOfBounds { field, len });
    }
    let s = sum(packet.get(csum_start..).unwrap_or_default(), 0);
    if let Some(dst) = packet.get_mut(field..field + 2) {
        dst.copy_from_slice(&finish(s).to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// The textbook RFC 1071 sum, 16 bits at a time.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(finish(sum(&data, 0)), !0xddf2);
    }

    #[test]
    fn wide_sum_matches_reference_for_all_lengths() {
        let mut rng = StdRng::seed_from_u64(1071);
        for len in 0..300 {
            for _ in 0..8 {
                let mut data = vec![0u8; len];
                rng.fill(&mut data[..]);
                if rng.random_bool(0.2) {
                    data.fill(0xff);
                }
                assert_eq!(fold(sum(&data, 0)), reference_sum(&data), "len {len}");
            }
        }
    }

    #[test]
    fn sums_chain_over_even_splits() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut data = vec![0u8; 999];
        rng.fill(&mut data[..]);
        for split in (0..data.len()).step_by(2) {
            let (a, b) = data.split_at(split);
            assert_eq!(fold(sum(b, sum(a, 0))), fold(sum(&data, 0)));
        }
        assert_eq!(fold(sum(&[], 0xffff_ffff)), fold(0xffff_ffff));
    }

    fn tcp_checksum_field(packet: &[u8]) -> u16 {
        let sliced = SlicedPacket::from_ip(packet).unwrap();
        match sliced.transport {
            Some(TransportSlice::Tcp(t)) => t.checksum(),
            other => panic!("not tcp: {other:?}"),
        }
    }

    #[test]
    fn pseudo_header_and_complete_partial_match_etherparse_v4() {
        let mut rng = StdRng::seed_from_u64(4);
        for len in [0usize, 1, 2, 7, 8, 9, 100, 1399, 1400] {
            let mut payload = vec![0u8; len];
            rng.fill(&mut payload[..]);
            let src: [u8; 4] = rng.random();
            let dst: [u8; 4] = rng.random();
            let builder = PacketBuilder::ipv4(src, dst, 64)
                .tcp(1234, 80, rng.random(), 1000)
                .ack(rng.random());
            let mut pkt = Vec::new();
            builder.write(&mut pkt, &payload).unwrap();
            let expected = tcp_checksum_field(&pkt);

            // Replace the checksum with the pseudo-header sum, as the kernel does.
            let l4_len = (pkt.len() - 20) as u32;
            let pseudo = fold(pseudo_header_v4(src, dst, 6, l4_len));
            pkt[36..38].copy_from_slice(&pseudo.to_be_bytes());
            complete_partial(&mut pkt, 20, 16).unwrap();
            assert_eq!(tcp_checksum_field(&pkt), expected, "len {len}");
        }
    }

    #[test]
    fn pseudo_header_and_complete_partial_match_etherparse_v6() {
        let mut rng = StdRng::seed_from_u64(6);
        for len in [0usize, 1, 13, 64, 1441] {
            let mut payload = vec![0u8; len];
            rng.fill(&mut payload[..]);
            let src: [u8; 16] = rng.random();
            let dst: [u8; 16] = rng.random();
            let mut pkt = Vec::new();
            PacketBuilder::ipv6(src, dst, 64)
                .udp(5000, 6000)
                .write(&mut pkt, &payload)
                .unwrap();
            let expected = u16::from_be_bytes([pkt[46], pkt[47]]);
            let l4_len = (pkt.len() - 40) as u32;
            let pseudo = fold(pseudo_header_v6(src, dst, 17, l4_len));
            pkt[46..48].copy_from_slice(&pseudo.to_be_bytes());
            complete_partial(&mut pkt, 40, 6).unwrap();
            let got = u16::from_be_bytes([pkt[46], pkt[47]]);
            // etherparse maps a computed 0 to 0xffff for UDP; so would a sender.
            let got = if got == 0 { 0xffff } else { got };
            assert_eq!(got, expected, "len {len}");
        }
    }

    #[test]
    fn complete_partial_rejects_bad_offsets() {
        let mut pkt = [0u8; 40];
        assert_eq!(
            complete_partial(&mut pkt, 41, 0),
            Err(ChecksumError::StartOutOfBounds {
                csum_start: 41,
                len: 40
            })
        );
        assert_eq!(
            complete_partial(&mut pkt, 20, 19),
            Err(ChecksumError::FieldOutOfBounds { field: 39, len: 40 })
        );
        assert_eq!(
            complete_partial(&mut pkt, usize::MAX, usize::MAX),
            Err(ChecksumError::StartOutOfBounds {
                csum_start: usize::MAX,
                len: 40
            })
        );
        assert!(complete_partial(&mut pkt, 38, 0).is_ok());
        assert!(complete_partial(&mut [], 0, 0).is_err());
    }

    #[test]
    fn update_u16_matches_full_recomputation() {
        let mut rng = StdRng::seed_from_u64(1624);
        for _ in 0..20_000 {
            let mut words = [0u16; 10];
            for w in &mut words {
                *w = rng.random();
            }
            if rng.random_bool(0.1) {
                words = [0; 10];
            }
            let idx = rng.random_range(0..10);
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let before = finish(sum(&bytes, 0));
            let old = words[idx];
            let new: u16 = if rng.random_bool(0.1) {
                0
            } else {
                rng.random()
            };
            words[idx] = new;
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let after = finish(sum(&bytes, 0));
            // Eqn. 3 never yields +0 as the folded sum, so it differs from a
            // full recomputation only when every word is zero, which no real
            // header is (RFC 1624 §3).
            if words.iter().all(|w| *w == 0) {
                continue;
            }
            assert_eq!(update_u16(before, old, new), after);
        }
    }

    #[test]
    fn ttl_decrement_matches_etherparse() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..5_000 {
            let mut h = Ipv4Header::new(
                rng.random_range(0..1000),
                rng.random_range(1..=255),
                IpNumber(rng.random()),
                rng.random(),
                rng.random(),
            )
            .unwrap();
            h.identification = rng.random();
            h.dont_fragment = rng.random();
            h.header_checksum = h.calc_header_checksum();
            let mut bytes = h.to_bytes().to_vec();
            let ttl = ipv4_decrement_ttl(&mut bytes).unwrap();
            assert_eq!(ttl, h.time_to_live - 1);
            h.time_to_live -= 1;
            let (parsed, _) = Ipv4Header::from_slice(&bytes).unwrap();
            assert_eq!(parsed.time_to_live, ttl);
            assert_eq!(parsed.header_checksum, h.calc_header_checksum());
            // The patched header verifies: its full sum folds to 0xffff.
            assert_eq!(fold(sum(&bytes, 0)), 0xffff);
        }
    }

    #[test]
    fn ttl_decrement_errors() {
        assert_eq!(
            ipv4_decrement_ttl(&mut [0x45; 19]),
            Err(ChecksumError::Ipv4Truncated { len: 19, need: 20 })
        );
        let mut v6 = [0u8; 20];
        v6[0] = 0x60;
        assert_eq!(ipv4_decrement_ttl(&mut v6), Err(ChecksumError::NotIpv4(6)));
        let mut zero = [0u8; 20];
        zero[0] = 0x45;
        assert_eq!(ipv4_decrement_ttl(&mut zero), Err(ChecksumError::TtlZero));
        assert_eq!(zero[8], 0);
    }
}

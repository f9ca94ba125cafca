//! IPv4 fragmentation (RFC 791 §2.3 and §3.2, "Fragmentation and
//! Reassembly"), for packets without DF that exceed the next hop's MTU.
//!
//! [`fragment_ipv4`] takes an IPv4 packet (no link-layer header) and emits
//! fragments that each fit the MTU:
//!
//! - fragment data is a multiple of 8 bytes except in the last fragment, and
//!   offsets are in 8-byte units relative to the original datagram: an input
//!   that is itself a fragment keeps its offset as the base, and its MF flag
//!   is kept on every output fragment (a last fragment stays last only if the
//!   input was);
//! - options are supported: the first fragment carries the header unchanged;
//!   the later ones carry only the options whose copied flag (0x80) is set,
//!   padded with end-of-option-list bytes to a 4-byte boundary. Malformed
//!   options are refused ([`FragmentError::BadOption`]);
//! - the identification is kept and the header checksum recomputed;
//! - bytes after the IPv4 total length (link-layer padding) are ignored;
//! - a packet that already fits is emitted unchanged (even with DF), so the
//!   caller can pass every packet through.
//!
//! Nothing here panics on any input; every error is a [`FragmentError`].

use thiserror::Error;

use crate::offload::checksum;

const MIN_HEADER: usize = 20;
const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_COPIED: u8 = 0x80;

/// Why a packet cannot be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FragmentError {
    /// Fewer bytes than the IPv4 header needs.
    #[error("IPv4 packet truncated: {len} bytes, need {need}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// The version nibble is not 4.
    #[error("not an IPv4 packet: version {0}")]
    NotIpv4(u8),
    /// IHL below 5.
    #[error("IPv4 header length {0} words is below the minimum of 5")]
    BadHeaderLen(u8),
    /// The total length is shorter than the header or longer than the buffer.
    #[error(
        "IPv4 total length {total_len} inconsistent with a {header_len}-byte header in {len} bytes"
    )]
    BadTotalLen {
        /// The total length field.
        total_len: u16,
        /// The header length.
        header_len: usize,
        /// Bytes available.
        len: usize,
    },
    /// The packet exceeds the MTU but has DF set (send ICMP "fragmentation
    /// needed", RFC 1191).
    #[error("packet of {len} bytes exceeds MTU {mtu} and has DF set")]
    DontFragment {
        /// The packet's total length.
        len: usize,
        /// The MTU.
        mtu: u16,
    },
    /// The MTU cannot hold the header plus 8 bytes of data.
    #[error("MTU {mtu} too small: fragments need at least {need} bytes")]
    MtuTooSmall {
        /// The MTU.
        mtu: u16,
        /// Smallest MTU that works for this header.
        need: usize,
    },
    /// An option's length byte is missing, below 2 or runs past the header.
    #[error("malformed IPv4 option at header offset {offset}")]
    BadOption {
        /// Offset of the option from the start of the header.
        offset: usize,
    },
    /// A fragment would start beyond the 13-bit offset field.
    #[error("fragment offset beyond the 13-bit field")]
    OffsetOverflow,
}

/// The options that go into every fragment after the first.
#[derive(Debug)]
struct CopiedOptions {
    bytes: [u8; 40],
    len: usize,
}

impl CopiedOptions {
    fn parse(options: &[u8]) -> Result<Self, FragmentError> {
        let mut out = Self {
            bytes: [0; 40],
            len: 0,
        };
        let mut i = 0;
        while let Some(&kind) = options.get(i) {
            match kind {
                OPT_END => break,
                OPT_NOP => i += 1,
                _ => {
                    let bad = FragmentError::BadOption {
                        offset: MIN_HEADER + i,
                    };
                    let len = usize::from(*options.get(i + 1).ok_or(bad)?);
                    let opt = options.get(i..i + len).filter(|_| len >= 2).ok_or(bad)?;
                    if kind & OPT_COPIED != 0 {
                        // Copied options are a subset of a <= 40-byte area, so
                        // they always fit.
                        if let Some(dst) = out.bytes.get_mut(out.len..out.len + len) {
                            dst.copy_from_slice(opt);
                            out.len += len;
                        }
                    }
                    i += len;
                }
            }
        }
        Ok(out)
    }

    /// Header length of the later fragments: padded to 4 bytes.
    fn header_len(&self) -> usize {
        MIN_HEADER + self.len.next_multiple_of(4)
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = b.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Fragments the IPv4 `packet` so that every fragment fits in `mtu` bytes.
///
/// Each fragment is built in `scratch` (cleared first) and passed to `emit`
/// in order of increasing offset; `emit` must copy what it keeps. Returns the
/// number of fragments (1 if the packet already fits, emitted unchanged).
/// Nothing is emitted when an error is returned.
pub fn fragment_ipv4(
    packet: &[u8],
    mtu: u16,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, FragmentError> {
    let len = packet.len();
    let Some(&first_byte) = packet.first() else {
        return Err(FragmentError::Truncated {
            len,
            need: MIN_HEADER,
        });
    };
    if first_byte >> 4 != 4 {
        return Err(FragmentError::NotIpv4(first_byte >> 4));
    }
    if len < MIN_HEADER {
        return Err(FragmentError::Truncated {
            len,
            need: MIN_HEADER,
        });
    }
    let ihl = first_byte & 0x0f;
    if ihl < 5 {
        return Err(FragmentError::BadHeaderLen(ihl));
    }
    let hl = usize::from(ihl) * 4;
    let total_len = be16(packet, 2);
    let total = usize::from(total_len);
    if hl > len || total < hl || total > len {
        return Err(FragmentError::BadTotalLen {
            total_len,
            header_len: hl,
            len,
        });
    }
    let (header, data) = packet.split_at(hl);
    let data = data.get(..total - hl).unwrap_or_default();
    let mtu_len = usize::from(mtu);
    if total <= mtu_len {
        emit(packet.get(..total).unwrap_or_default());
        return Ok(1);
    }
    let flags_offset = be16(header, 6);
    if flags_offset & FLAG_DF != 0 {
        return Err(FragmentError::DontFragment { len: total, mtu });
    }
    let copied = CopiedOptions::parse(header.get(MIN_HEADER..).unwrap_or_default())?;
    if mtu_len < hl + 8 {
        return Err(FragmentError::MtuTooSmall { mtu, need: hl + 8 });
    }
    let rest_hl = copied.header_len();
    let first_max = (mtu_len - hl) & !7;
    let rest_max = (mtu_len - rest_hl) & !7;

    let base = usize::from(flags_offset & OFFSET_MASK) * 8;
    // `data` is not empty here (total > mtu >= hl + 8); the last fragment
    // starts at or before its last byte.
    if (base + data.len() - 1) / 8 > usize::from(OFFSET_MASK) {
        return Err(FragmentError::OffsetOverflow);
    }
    let keep_flags = flags_offset & (FLAG_RESERVED | FLAG_MF);

    let mut pos = 0;
    let mut count = 0;
    while pos < data.len() {
        let first = pos == 0;
        let (this_hl, max) = if first {
            (hl, first_max)
        } else {
            (rest_hl, rest_max)
        };
        let n = max.min(data.len() - pos);
        let last = pos + n == data.len();
        scratch.clear();
        if first {
            scratch.extend_from_slice(header);
        } else {
            scratch.extend_from_slice(header.get(..MIN_HEADER).unwrap_or_default());
            scratch.extend_from_slice(copied.bytes.get(..copied.len).unwrap_or_default());
            scratch.resize(rest_hl, OPT_END);
            if let Some(b) = scratch.first_mut() {
                *b = 0x40 | (rest_hl / 4) as u8;
            }
        }
        scratch.extend_from_slice(data.get(pos..pos + n).unwrap_or_default());
        let seg = scratch.as_mut_slice();
        // In range: a fragment is no longer than the original packet, and the
        // offset check above bounds every offset by 13 bits.
        put16(seg, 2, (this_hl + n) as u16);
        let mf = if last { 0 } else { FLAG_MF };
        put16(seg, 6, keep_flags | mf | ((base + pos) / 8) as u16);
        put16(seg, 10, 0);
        let sum = checksum::sum(seg.get(..this_hl).unwrap_or_default(), 0);
        put16(seg, 10, checksum::finish(sum));
        emit(seg);
        pos += n;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::defrag::IpDefragPool;
    use etherparse::{
        IpHeaders, IpNumber, Ipv4Header, Ipv4HeaderSlice, PacketBuilder, SlicedPacket,
    };
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// A UDP datagram built by etherparse, DF clear unless asked.
    fn udp_packet(rng: &mut StdRng, len: usize, options: &[u8], df: bool) -> Vec<u8> {
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload[..]);
        let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, [10, 0, 0, 1], [10, 0, 0, 2]).unwrap();
        ip.dont_fragment = df;
        ip.identification = rng.random();
        ip.options = options.try_into().unwrap();
        let mut pkt = Vec::new();
        PacketBuilder::ip(IpHeaders::Ipv4(ip, Default::default()))
            .udp(1000, 2000)
            .write(&mut pkt, &payload)
            .unwrap();
        pkt
    }

    fn fragments(packet: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, FragmentError> {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let n = fragment_ipv4(packet, mtu, &mut scratch, |f| out.push(f.to_vec()))?;
        assert_eq!(n, out.len());
        Ok(out)
    }

    /// Checks each fragment's header with etherparse and reassembles with its
    /// defragmentation pool; returns the per-fragment headers.
    fn check_and_reassemble(packet: &[u8], frags: &[Vec<u8>], mtu: u16) -> Vec<Ipv4Header> {
        let orig = Ipv4HeaderSlice::from_slice(packet).unwrap().to_header();
        let mut pool = IpDefragPool::<(), ()>::new();
        let mut done = None;
        let mut headers = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= usize::from(mtu), "fragment {i} exceeds mtu");
            let h = Ipv4HeaderSlice::from_slice(f).unwrap().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "fragment {i}");
            assert_eq!(usize::from(h.total_len), f.len());
            assert_eq!(h.identification, orig.identification);
            assert_eq!(h.protocol, orig.protocol);
            assert_eq!(h.source, orig.source);
            assert_eq!(h.destination, orig.destination);
            assert_eq!(h.time_to_live, orig.time_to_live);
            assert!(!h.dont_fragment);
            let last = i + 1 == frags.len();
            assert_eq!(h.more_fragments, !last);
            if !last {
                assert_eq!((f.len() - h.header_len()) % 8, 0);
            }
            let sliced = SlicedPacket::from_ip(f).unwrap();
            let r = pool.process_sliced_packet(&sliced, (), ()).unwrap();
            assert_eq!(r.is_some(), last);
            done = r;
            headers.push(h);
        }
        let done = done.unwrap();
        assert_eq!(done.payload, &packet[orig.header_len()..]);
        headers
    }

    #[test]
    fn fragments_reassemble_with_etherparse() {
        let mut rng = StdRng::seed_from_u64(791);
        for (len, mtu) in [
            (3000, 1500),
            (1472, 1000),
            (65_000, 1500),
            (100, 28),
            (1000, 576),
        ] {
            let pkt = udp_packet(&mut rng, len, &[], false);
            let frags = fragments(&pkt, mtu).unwrap();
            assert!(frags.len() > 1);
            check_and_reassemble(&pkt, &frags, mtu);
        }
    }

    #[test]
    fn randomized_fragments_reassemble() {
        let mut rng = StdRng::seed_from_u64(0xf4a6);
        for _ in 0..300 {
            let len = rng.random_range(0..9000);
            let mtu = rng.random_range(68..9100);
            let pkt = udp_packet(&mut rng, len, &[], false);
            let frags = fragments(&pkt, mtu).unwrap();
            if pkt.len() <= usize::from(mtu) {
                assert_eq!(frags, vec![pkt]);
            } else {
                check_and_reassemble(&pkt, &frags, mtu);
            }
        }
    }

    #[test]
    fn only_copied_options_go_into_later_fragments() {
        let mut rng = StdRng::seed_from_u64(3);
        // Router alert (copied), NOP, record route (not copied), EOL.
        let opts = [0x94, 4, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0];
        let pkt = udp_packet(&mut rng, 2000, &opts, false);
        let frags = fragments(&pkt, 600).unwrap();
        let headers = check_and_reassemble(&pkt, &frags, 600);
        assert_eq!(headers[0].options.as_slice(), &opts);
        for h in &headers[1..] {
            assert_eq!(h.options.as_slice(), &[0x94, 4, 0, 0]);
        }

        // No copied options: later fragments have a bare 20-byte header.
        let pkt = udp_packet(&mut rng, 2000, &[7, 7, 4, 0, 0, 0, 0, 0], false);
        let frags = fragments(&pkt, 600).unwrap();
        let headers = check_and_reassemble(&pkt, &frags, 600);
        assert_eq!(headers[0].header_len(), 28);
        assert!(headers[1..].iter().all(|h| h.header_len() == 20));

        // A 3-byte copied option is padded to 4 bytes with EOL.
        let pkt = udp_packet(&mut rng, 2000, &[0x88, 3, 9, 0], false);
        let frags = fragments(&pkt, 600).unwrap();
        let headers = check_and_reassemble(&pkt, &frags, 600);
        assert!(
            headers[1..]
                .iter()
                .all(|h| h.options.as_slice() == [0x88, 3, 9, 0])
        );
    }

    #[test]
    fn fragmenting_a_fragment_keeps_offset_and_mf() {
        let mut rng = StdRng::seed_from_u64(5);
        for input_mf in [true, false] {
            let mut pkt = udp_packet(&mut rng, 3000, &[], false);
            // Make it a fragment at offset 100 (800 bytes), then fix the
            // checksum with etherparse.
            let mut h = Ipv4HeaderSlice::from_slice(&pkt).unwrap().to_header();
            h.more_fragments = input_mf;
            h.fragment_offset = 100.try_into().unwrap();
            h.header_checksum = h.calc_header_checksum();
            pkt[..20].copy_from_slice(&h.to_bytes());
            let frags = fragments(&pkt, 1000).unwrap();
            let mut joined = Vec::new();
            for (i, f) in frags.iter().enumerate() {
                let fh = Ipv4HeaderSlice::from_slice(f).unwrap().to_header();
                assert_eq!(fh.header_checksum, fh.calc_header_checksum());
                assert_eq!(
                    usize::from(fh.fragment_offset.value()) * 8,
                    800 + joined.len()
                );
                let last = i + 1 == frags.len();
                assert_eq!(fh.more_fragments, !last || input_mf);
                joined.extend_from_slice(&f[20..]);
            }
            assert_eq!(joined, &pkt[20..]);
        }
    }

    #[test]
    fn packets_that_fit_pass_unchanged() {
        let mut rng = StdRng::seed_from_u64(6);
        let pkt = udp_packet(&mut rng, 1000, &[], true);
        assert_eq!(fragments(&pkt, 1500).unwrap(), vec![pkt.clone()]);
        assert_eq!(fragments(&pkt, 1028).unwrap(), vec![pkt.clone()]);
        // Trailing link-layer padding is dropped.
        let mut padded = pkt.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(fragments(&padded, 1500).unwrap(), vec![pkt]);
    }

    #[test]
    fn errors() {
        let mut rng = StdRng::seed_from_u64(7);
        let df = udp_packet(&mut rng, 3000, &[], true);
        assert_eq!(
            fragments(&df, 1500),
            Err(FragmentError::DontFragment {
                len: 3028,
                mtu: 1500
            })
        );

        let pkt = udp_packet(&mut rng, 3000, &[], false);
        assert_eq!(
            fragments(&pkt, 27),
            Err(FragmentError::MtuTooSmall { mtu: 27, need: 28 })
        );
        assert_eq!(
            fragments(&pkt, 0),
            Err(FragmentError::MtuTooSmall { mtu: 0, need: 28 })
        );
        assert_eq!(fragments(&pkt, 28).unwrap().len(), 3008 / 8);

        let mut bad = pkt.clone();
        bad[0] = 0x65;
        assert_eq!(fragments(&bad, 1500), Err(FragmentError::NotIpv4(6)));
        bad[0] = 0x44;
        assert_eq!(fragments(&bad, 1500), Err(FragmentError::BadHeaderLen(4)));
        let mut bad = pkt.clone();
        bad.pop();
        assert!(matches!(
            fragments(&bad, 1500),
            Err(FragmentError::BadTotalLen {
                total_len: 3028,
                ..
            })
        ));
        assert_eq!(
            fragments(&[], 1500),
            Err(FragmentError::Truncated { len: 0, need: 20 })
        );

        // Option whose length runs past the header.
        let opts = udp_packet(&mut rng, 3000, &[0x94, 8, 0, 0], false);
        assert_eq!(
            fragments(&opts, 1500),
            Err(FragmentError::BadOption { offset: 20 })
        );
        let opts = udp_packet(&mut rng, 3000, &[1, 1, 0x94, 1], false);
        assert_eq!(
            fragments(&opts, 1500),
            Err(FragmentError::BadOption { offset: 22 })
        );
        let opts = udp_packet(&mut rng, 3000, &[1, 1, 1, 0x94], false);
        assert_eq!(
            fragments(&opts, 1500),
            Err(FragmentError::BadOption { offset: 23 })
        );

        // A fragment near the end of the offset space cannot grow further.
        let mut far = pkt.clone();
        let mut h = Ipv4HeaderSlice::from_slice(&far).unwrap().to_header();
        h.fragment_offset = 8000.try_into().unwrap();
        h.header_checksum = h.calc_header_checksum();
        far[..20].copy_from_slice(&h.to_bytes());
        assert_eq!(fragments(&far, 1500), Err(FragmentError::OffsetOverflow));
    }

    #[test]
    fn truncations_and_random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(8);
        let pkt = udp_packet(&mut rng, 300, &[0x94, 4, 0, 0], false);
        let mut scratch = Vec::new();
        for len in 0..pkt.len() {
            assert!(fragment_ipv4(&pkt[..len], 100, &mut scratch, |_| {}).is_err());
        }
        for _ in 0..20_000 {
            let len = rng.random_range(0..120);
            let mut b = vec![0u8; len];
            rng.fill(&mut b[..]);
            if let Some(first) = b.first_mut() {
                *first = 0x40 | (*first & 0x0f);
            }
            if len >= 4 {
                let total = rng.random_range(0..=len as u16);
                b[2..4].copy_from_slice(&total.to_be_bytes());
            }
            let mtu = rng.random_range(0..130);
            let _ = fragment_ipv4(&b, mtu, &mut scratch, |f| assert!(f.len() <= len));
        }
    }
}

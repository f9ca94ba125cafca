//! Splitting a `UDP_GRO` read back into its datagrams.
//!
//! With `UDP_GRO` on, one read of an underlay socket may return many
//! datagrams of one flow laid end to end, all `segment` bytes long but the
//! last, which may be shorter (the `UDP_GRO` control message gives
//! `segment`; without it the read is one datagram). Nothing here trusts
//! `segment`: zero, or more than the read, is one datagram.

/// The datagrams of a read of `buf` with segment size `segment`.
pub fn datagrams(buf: &[u8], segment: usize) -> std::slice::Chunks<'_, u8> {
    let size = if segment == 0 {
        buf.len().max(1)
    } else {
        segment
    };
    buf.chunks(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coalesced_read_splits_at_the_segment_size_with_a_short_tail() {
        let buf: Vec<u8> = (0..250).map(|i| i as u8).collect();
        let parts: Vec<&[u8]> = datagrams(&buf, 100).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], &buf[..100]);
        assert_eq!(parts[2], &buf[200..]);
    }

    #[test]
    fn no_or_oversized_segment_is_one_datagram_and_empty_is_none() {
        let buf = [1u8; 40];
        assert_eq!(datagrams(&buf, 0).count(), 1);
        assert_eq!(datagrams(&buf, 4000).count(), 1);
        assert_eq!(datagrams(&[], 0).count(), 0);
        assert_eq!(datagrams(&[], 8).count(), 0);
    }
}

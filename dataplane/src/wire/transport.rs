//! TCP and UDP: their protocol numbers, header lengths and where each keeps
//! its checksum (the one place they are defined; GSO, GRO and the pipeline's
//! partial checksums all read them from here).

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of SCTP (ports where TCP and UDP have them; no
/// checksum of the kind below).
pub const PROTO_SCTP: u8 = 132;
/// Length of a TCP header without options.
pub const TCP_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_LEN: usize = 8;
/// Offset of the checksum inside the TCP header.
pub const TCP_CSUM_OFFSET: usize = 16;
/// Offset of the checksum inside the UDP header.
pub const UDP_CSUM_OFFSET: usize = 6;

/// Where the transport header of `protocol` keeps its checksum: TCP's and
/// UDP's offsets, `None` for any other protocol.
pub fn csum_offset(protocol: u8) -> Option<usize> {
    match protocol {
        PROTO_TCP => Some(TCP_CSUM_OFFSET),
        PROTO_UDP => Some(UDP_CSUM_OFFSET),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_and_udp_have_a_checksum_offset() {
        assert_eq!(csum_offset(6), Some(16));
        assert_eq!(csum_offset(17), Some(6));
        assert_eq!(csum_offset(1), None);
        assert_eq!(csum_offset(132), None);
    }
}

//! Batched UDP I/O: `recvmmsg`/`sendmmsg` on a nonblocking datagram socket,
//! one syscall for up to [`MAX_BATCH`] datagrams. IPv4 and IPv6 peers.
//!
//! Both calls return `WouldBlock` when nothing at all could be received or
//! sent; a partial batch is a success with a smaller count.

use std::io::{self, IoSlice};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use socket2::SockAddr;

/// Datagrams handled per syscall at most; longer slices are cut to this.
pub const MAX_BATCH: usize = 64;

/// Decodes a kernel-filled socket address (IPv4 or IPv6).
fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; the
            // storage is larger and at least as aligned.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6; the
            // storage is larger and at least as aligned.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receives up to `min(bufs.len(), out.len(), MAX_BATCH)` datagrams without
/// blocking. `out[i]` gets the length and sender of the datagram in
/// `bufs[i]`; a datagram longer than its buffer is truncated to it. Returns
/// how many were received (`WouldBlock` if none were waiting).
pub fn recv_batch(
    fd: RawFd,
    bufs: &mut [&mut [u8]],
    out: &mut [(usize, SocketAddr)],
) -> io::Result<usize> {
    let n = bufs.len().min(out.len()).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
    let mut addrs: [libc::sockaddr_storage; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: all-zero is a valid iovec (null base, zero length).
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        iovs[i].iov_base = bufs[i].as_mut_ptr().cast();
        iovs[i].iov_len = bufs[i].len();
        hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at `n` live iovecs, each covering a
    // writable caller buffer, and at `n` sockaddr_storage slots of the stated
    // length; all outlive the call. A bad fd fails the call.
    let got = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT as _,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = got as usize;
    for i in 0..got {
        let len = (hdrs[i].msg_len as usize).min(bufs[i].len());
        let from = to_socket_addr(&addrs[i])
            .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
        out[i] = (len, from);
    }
    Ok(got)
}

/// Sends up to `min(msgs.len(), MAX_BATCH)` datagrams, each to its address,
/// without blocking. Returns how many were sent (`WouldBlock` if none).
pub fn send_batch(fd: RawFd, msgs: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let addrs: Vec<SockAddr> = msgs[..n].iter().map(|(_, a)| SockAddr::from(*a)).collect();
    // SAFETY: all-zero is a valid iovec (null base, zero length).
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    for i in 0..n {
        iovs[i].iov_base = msgs[i].0.as_ptr() as *mut libc::c_void;
        iovs[i].iov_len = msgs[i].0.len();
        hdrs[i].msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
        hdrs[i].msg_hdr.msg_namelen = addrs[i].len();
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at live iovecs over the caller's
    // payloads and at live socket addresses of the stated lengths; the
    // kernel only reads them (the pointers are `*mut` by C convention). All
    // outlive the call.
    let sent = unsafe {
        libc::sendmmsg(
            fd,
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT as _,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Room for one `cmsghdr` carrying an `int` (UDP_GRO) or a `u16`
/// (UDP_SEGMENT), aligned like a `cmsghdr`.
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

/// Largest UDP payload one GSO send may carry: the IPv4 total length field
/// minus the IPv4 and UDP headers (IPv6 allows slightly more).
pub const GSO_MAX_BYTES: usize = 65_535 - 20 - 8;
/// Most segments one GSO send may carry (`UDP_MAX_SEGMENTS` is 64 on older
/// kernels, 128 on newer ones).
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Enables `UDP_GRO` on a UDP socket: the kernel may then hand one read
/// several datagrams of one flow, concatenated, with their segment size in a
/// control message (see [`recv_gro`]). Fails on kernels before 5.0.
pub fn enable_udp_gro(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local.
    super::cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// One read from a socket with `UDP_GRO` enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroDatagram {
    /// Bytes received into the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// Length of each datagram that was coalesced into this read (the last
    /// may be shorter); `len` when the read holds one datagram.
    pub segment: usize,
}

/// Receives one datagram, or several coalesced by `UDP_GRO`, into `buf`
/// without blocking (`WouldBlock` if none is waiting). A read longer than
/// `buf` is cut to it.
pub fn recv_gro(fd: RawFd, buf: &mut [u8]) -> io::Result<GroDatagram> {
    // SAFETY: all-zero is a valid sockaddr_storage (family AF_UNSPEC).
    let mut addr: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: `msg` points at one live iovec over the writable caller buffer,
    // a sockaddr_storage and a control buffer of the stated lengths, all of
    // which outlive the call. A bad fd fails the call.
    let got = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (got as usize).min(buf.len());
    let mut segment = len;
    // SAFETY: `msg` was filled by recvmsg: msg_control/msg_controllen
    // describe the part of `control` the kernel wrote, which the CMSG_*
    // macros walk without leaving it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return null or a pointer to a
        // complete, aligned cmsghdr inside `control`.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_UDP
            && header.cmsg_type == libc::UDP_GRO
            // SAFETY: computing a length, no memory access.
            && header.cmsg_len as usize >= unsafe { libc::CMSG_LEN(size_of::<libc::c_int>() as u32) } as usize
        {
            // SAFETY: the length check above says an `int` follows the
            // header; it may be unaligned, hence read_unaligned.
            let size = unsafe { libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned() };
            if size > 0 {
                segment = size as usize;
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; `cmsg` is a header inside `msg`.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let from = to_socket_addr(&addr)
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
    Ok(GroDatagram { len, from, segment })
}

/// Sends the bytes of `iov`, gathered in order, to `dst` without blocking:
/// as one datagram, or with `segment` as datagrams of that many bytes each
/// (the last may be shorter) in one call with UDP GSO (`UDP_SEGMENT`). The
/// bytes must make at most [`GSO_MAX_SEGMENTS`] segments and
/// [`GSO_MAX_BYTES`] bytes, in at most `UIO_MAXIOV` (1024) slices. Returns
/// the bytes sent. Fails with `EIO` when the outgoing device cannot checksum
/// (no GSO), `EINVAL` when a segment does not fit the path MTU.
pub fn send_vectored(
    fd: RawFd,
    iov: &[IoSlice<'_>],
    segment: Option<u16>,
    dst: SocketAddr,
) -> io::Result<usize> {
    let addr = SockAddr::from(dst);
    let mut control = CmsgBuf([0; 32]);
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = addr.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = addr.len();
    // IoSlice is ABI-compatible with iovec on Unix (std guarantees it); the
    // kernel only reads through these pointers.
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len() as _;
    if let Some(segment) = segment {
        // SAFETY: computing a length, no memory access.
        let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at `control`, aligned for cmsghdr and
        // at least CMSG_SPACE(2) bytes long, so CMSG_FIRSTHDR is non-null
        // and the header and its 2 data bytes lie inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
            libc::CMSG_DATA(cmsg).cast::<u16>().write_unaligned(segment);
        }
    }
    // SAFETY: `msg` points at the caller's live iovecs (only read by the
    // kernel), at a socket address and, if set, a control buffer of the
    // stated lengths; all outlive the call.
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind b");
        b.set_nonblocking(true).expect("nonblocking");
        (a, b)
    }

    /// Reads until `want` bytes arrived or a second passed.
    fn read_all(b: &UdpSocket, want: usize) -> Vec<(Vec<u8>, usize)> {
        let mut buf = vec![0u8; 70_000];
        let mut reads = Vec::new();
        let mut total = 0;
        let deadline = Instant::now() + Duration::from_secs(1);
        while total < want && Instant::now() < deadline {
            match recv_gro(b.as_raw_fd(), &mut buf) {
                Ok(d) => {
                    total += d.len;
                    reads.push((buf[..d.len].to_vec(), d.segment));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("recv_gro: {e}"),
            }
        }
        reads
    }

    #[test]
    fn gso_send_arrives_as_separate_datagrams_without_gro() {
        let (a, b) = pair();
        let payload: Vec<u8> = (0..350u32).map(|i| i as u8).collect();
        let dst = b.local_addr().expect("addr");
        // Gathered from two slices, one segment straddling them.
        let iov = [IoSlice::new(&payload[..130]), IoSlice::new(&payload[130..])];
        let sent = send_vectored(a.as_raw_fd(), &iov, Some(100), dst).expect("send");
        assert_eq!(sent, 350);
        let reads = read_all(&b, 350);
        let lens: Vec<usize> = reads.iter().map(|(d, _)| d.len()).collect();
        assert_eq!(lens, [100, 100, 100, 50]);
        let joined: Vec<u8> = reads.iter().flat_map(|(d, _)| d.clone()).collect();
        assert_eq!(joined, payload);
        assert!(reads.iter().all(|(d, seg)| *seg == d.len()));
    }

    #[test]
    fn gro_read_reports_the_segment_size() {
        let (a, b) = pair();
        enable_udp_gro(b.as_raw_fd()).expect("UDP_GRO");
        let payload: Vec<u8> = (0..350u32).map(|i| (i * 7) as u8).collect();
        let dst = b.local_addr().expect("addr");
        let iov = [IoSlice::new(&payload[..30]), IoSlice::new(&payload[30..])];
        send_vectored(a.as_raw_fd(), &iov, Some(100), dst).expect("send");
        let reads = read_all(&b, 350);
        let joined: Vec<u8> = reads.iter().flat_map(|(d, _)| d.clone()).collect();
        assert_eq!(joined, payload);
        // Loopback keeps the GSO packet whole for a GRO socket: one read.
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].1, 100);
    }

    #[test]
    fn single_datagram_segment_is_its_length() {
        let (a, b) = pair();
        enable_udp_gro(b.as_raw_fd()).expect("UDP_GRO");
        let dst = b.local_addr().expect("addr");
        send_vectored(a.as_raw_fd(), &[IoSlice::new(&[1, 2, 3])], None, dst).expect("send");
        let reads = read_all(&b, 3);
        assert_eq!(reads, [(vec![1, 2, 3], 3)]);
    }
}

//! Batched UDP I/O: `recvmmsg`/`sendmmsg` on a nonblocking datagram socket,
//! one syscall for up to [`MAX_BATCH`] datagrams. IPv4 and IPv6 peers.
//!
//! Both calls return `WouldBlock` when nothing at all could be received or
//! sent; a partial batch is a success with a smaller count.

use std::io;
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

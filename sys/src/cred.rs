//! Peer credentials on a connected Unix stream socket (`SO_PEERCRED`), used
//! to authorise API clients by uid.

use std::io;
use std::os::fd::RawFd;

use super::cvt;

/// The credentials the kernel recorded for the peer at `connect` time.
fn peer_cred(fd: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live locals; the kernel writes at most
    // `len` bytes into `cred` and updates `len`. A bad fd fails the call.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(cred)
}

/// The uid of the process at the other end of the Unix stream socket `fd`.
pub fn peer_uid(fd: RawFd) -> io::Result<u32> {
    Ok(peer_cred(fd)?.uid)
}

/// The pid of the process at the other end of the Unix stream socket `fd`.
pub fn peer_pid(fd: RawFd) -> io::Result<i32> {
    Ok(peer_cred(fd)?.pid)
}

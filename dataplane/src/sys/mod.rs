//! The only place in this crate where `unsafe` is allowed: ioctls on taps,
//! `setns`, epoll, batched socket calls, peer credentials and a thread's own
//! umask. Every block carries a `// SAFETY:` comment; everything exported
//! here is a safe API.
#![allow(unsafe_code)]

pub mod cred;
pub mod epoll;
pub mod eventfd;
pub mod mmsg;
pub mod netns;
pub mod tap;
pub mod umask;
pub mod uring;

use std::io;

/// Turns a libc return value into `io::Result`: `-1` means "look at errno".
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

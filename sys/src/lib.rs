//! tweed-sys: the system calls tweed makes that Rust's standard library does
//! not wrap, and the one crate of the workspace where `unsafe` is allowed.
//! Every block carries a `// SAFETY:` comment; everything exported is a safe
//! API. The other crates deny `unsafe_code`.
//!
//! Layers (each module imports only `std`, `libc` and the modules above it):
//!
//! - Plain wrappers: [`cred`] (a
//!   Unix socket peer's credentials), [`umask`] (a thread's own umask),
//!   [`process`] (signals by pid, `geteuid`, `unshare`, bind mounts),
//!   [`eventfd`], [`epoll`].
//! - Netns: [`netns`] (`setns` on a thread of its own, named namespaces).
//! - Packet I/O: [`tap`] (tap ioctls: queues, vnet header, offloads,
//!   persistence), [`mmsg`] (batched `sendmmsg`/`recvmmsg`, UDP GSO and GRO
//!   control messages), [`uring`] (io_uring rings over tap queues).
//! - Links: [`netlink`] (rtnetlink helpers run on a thread in a netns) and
//!   [`port_error::PortError`], the error of every step of creating,
//!   configuring or removing an interface.
//!
//! Used by the dataplane (taps, sockets, its API socket's peer credentials),
//! the control daemon (named netns, processes, host routes) and the CNI
//! plugin (entering a pod's netns, setting up its interface), so none of them
//! needs another's crate for a system call.
#![allow(unsafe_code)]

pub mod cred;
pub mod epoll;
pub mod eventfd;
pub mod mmsg;
pub mod netlink;
pub mod netns;
pub mod port_error;
pub mod process;
pub mod tap;
pub mod umask;
pub mod uring;

pub use port_error::PortError;

use std::io;

/// Turns a libc return value into `io::Result`: `-1` means "look at errno".
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

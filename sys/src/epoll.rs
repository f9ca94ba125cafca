//! A minimal level-triggered epoll: register fds for readability under a
//! `u64` token and wait for them.
//!
//! `epoll_ctl` is thread-safe, so another thread may [`Epoll::add`] while one
//! thread sits in [`Epoll::wait`]; the new fd is reported by that wait.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// Events fetched per `epoll_wait` call at most.
const MAX_EVENTS: usize = 64;

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// Creates an epoll instance (close-on-exec).
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by epoll_create1 and nobody else
        // owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a live, initialised epoll_event for the call; the
        // kernel only reads it. A bad `fd` makes the call fail, not UB.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Watches `fd` for readability (level-triggered), reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token)
    }

    /// Changes the token reported for an already watched `fd`.
    pub fn modify(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0)
    }

    /// Waits up to `timeout_ms` (-1: forever) and replaces the contents of
    /// `events` with `(token, readable)` pairs; `readable` is false when only
    /// an error or hang-up was reported. Returns the number of events; an
    /// interrupted wait (`EINTR`) returns 0.
    pub fn wait(&self, events: &mut Vec<(u64, bool)>, timeout_ms: i32) -> io::Result<usize> {
        events.clear();
        let mut raw = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        // SAFETY: `raw` is a writable array of MAX_EVENTS epoll_events that
        // outlives the call; the kernel writes at most MAX_EVENTS entries.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                raw.as_mut_ptr(),
                MAX_EVENTS as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        for ev in &raw[..n as usize] {
            let (flags, token) = (ev.events, ev.u64);
            events.push((token, flags & libc::EPOLLIN as u32 != 0));
        }
        Ok(events.len())
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

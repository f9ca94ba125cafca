//! Tap queues: `/dev/net/tun` file descriptors attached to one multi-queue tap.
//!
//! Every queue is opened with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
//! IFF_MULTI_QUEUE`, a 10-byte little-endian virtio-net header
//! (`TUNSETVNETHDRSZ`, `TUNSETVNETLE`) and `TUN_F_CSUM | TUN_F_TSO4 |
//! TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6` offloads (USO where the kernel
//! knows it, 6.2 and later; without it where it refuses), so the kernel may
//! hand us TCP and UDP GSO super-frames with partial checksums (the pipeline
//! handles them). Queues are nonblocking.
//!
//! `TUNSETIFF` looks the name up in the calling thread's network namespace:
//! it creates the tap there, or attaches to an existing tap of that name.
//! The fds stay valid when the link is later moved to another netns.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::cvt;

/// The virtio-net header length we ask for (`struct virtio_net_hdr`, no
/// `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// Maximum interface name length, without the trailing NUL (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

const TUN_PATH: &str = "/dev/net/tun";

/// `struct ifreq` as the tun ioctls use it: a name and the flags member of the
/// union, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn zeroed() -> Self {
        IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        }
    }

    fn new(name: &str) -> io::Result<Self> {
        check_ifname(name)?;
        let mut req = Self::zeroed();
        for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        Ok(req)
    }

    fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Checks that `name` is a valid Linux interface name (1..=15 bytes, no `/`,
/// whitespace or NUL).
pub fn check_ifname(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?} (1..={IFNAME_MAX} bytes, no '/', ':', space)"),
        ))
    }
}

/// One queue of a multi-queue tap. Closing the last queue of a
/// non-persistent tap removes the interface.
#[derive(Debug)]
pub struct TapQueue {
    file: File,
}

impl TapQueue {
    /// Reads one frame (virtio-net header first) into `buf`. Nonblocking:
    /// `WouldBlock` when the queue is empty.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for
        // the whole call, and the fd is owned by `self` and open.
        let n = unsafe { libc::read(self.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Writes one frame (virtio-net header first). Nonblocking.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid, readable region of `buf.len()` bytes for
        // the whole call, and the fd is owned by `self` and open.
        let n = unsafe { libc::write(self.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Writes one frame gathered from `iov` (virtio-net header first).
    /// Nonblocking.
    pub fn write_vectored(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(iov)
    }

    /// The interface name the queue is attached to (`TUNGETIFF`). After a
    /// rename this is the new name.
    pub fn ifname(&self) -> io::Result<String> {
        let mut req = IfReq::zeroed();
        // SAFETY: TUNGETIFF writes a `struct ifreq` (40 bytes, which `IfReq`
        // is, `repr(C)`) through the pointer, valid for the call.
        cvt(unsafe { libc::ioctl(self.as_raw_fd(), libc::TUNGETIFF, &mut req as *mut IfReq) })?;
        Ok(req.name())
    }

    fn ioctl_int(&self, request: libc::Ioctl, value: libc::c_int) -> io::Result<()> {
        // SAFETY: these tun ioctls read one `int` through the pointer, which
        // points at a live local for the duration of the call.
        cvt(unsafe { libc::ioctl(self.as_raw_fd(), request, &value as *const libc::c_int) })?;
        Ok(())
    }

    fn ioctl_val(&self, request: libc::Ioctl, value: libc::c_ulong) -> io::Result<()> {
        // SAFETY: these tun ioctls take their argument by value, no memory is
        // accessed through it.
        cvt(unsafe { libc::ioctl(self.as_raw_fd(), request, value) })?;
        Ok(())
    }
}

impl AsRawFd for TapQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TapQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Adds the failing step and interface to an `io::Error`, keeping its kind
/// (and so its errno class) intact.
fn step_err(step: &str, name: &str, queue: usize, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{step} on tap {name:?} (queue {queue}): {e}"),
    )
}

fn open_one(name: &str, queue: usize, exclusive: bool) -> io::Result<TapQueue> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_PATH)
        .map_err(|e| step_err("open /dev/net/tun", name, queue, e))?;
    let q = TapQueue { file };

    let mut req = IfReq::new(name)?;
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | libc::IFF_MULTI_QUEUE;
    if exclusive {
        flags |= libc::IFF_TUN_EXCL;
    }
    req.flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes, which
    // `IfReq` is, `repr(C)`) through the pointer, valid for the call.
    cvt(unsafe { libc::ioctl(q.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) })
        .map_err(|e| step_err("TUNSETIFF", name, queue, e))?;

    q.ioctl_int(libc::TUNSETVNETHDRSZ, VNET_HDR_LEN as libc::c_int)
        .map_err(|e| step_err("TUNSETVNETHDRSZ", name, queue, e))?;
    q.ioctl_int(libc::TUNSETVNETLE, 1)
        .map_err(|e| step_err("TUNSETVNETLE", name, queue, e))?;
    let offload = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    let uso = libc::TUN_F_USO4 | libc::TUN_F_USO6;
    match q.ioctl_val(libc::TUNSETOFFLOAD, libc::c_ulong::from(offload | uso)) {
        // A kernel before 6.2 does not know USO: UDP is then segmented by
        // the pod's kernel, as before.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => q
            .ioctl_val(libc::TUNSETOFFLOAD, libc::c_ulong::from(offload))
            .map_err(|e| step_err("TUNSETOFFLOAD", name, queue, e))?,
        other => other.map_err(|e| step_err("TUNSETOFFLOAD", name, queue, e))?,
    }
    Ok(q)
}

fn open_queues(name: &str, queues: usize, exclusive: bool) -> io::Result<Vec<TapQueue>> {
    if queues == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("tap {name:?}: at least one queue is required"),
        ));
    }
    (0..queues)
        .map(|i| open_one(name, i, exclusive && i == 0))
        .collect()
}

/// Opens `queues` queues of the tap `name` in the calling thread's netns,
/// creating it if it does not exist or attaching to it if it does.
pub fn open_tap_queues(name: &str, queues: usize) -> io::Result<Vec<TapQueue>> {
    open_queues(name, queues, false)
}

/// Like [`open_tap_queues`], but fails with `EBUSY` if an interface named
/// `name` already exists (`IFF_TUN_EXCL` on the first queue), so we never
/// attach to somebody else's tap by accident.
pub fn create_tap_queues(name: &str, queues: usize) -> io::Result<Vec<TapQueue>> {
    open_queues(name, queues, true)
}

/// Marks the tap persistent (`TUNSETPERSIST`): it outlives its queues.
pub fn set_persist(q: &TapQueue, on: bool) -> io::Result<()> {
    q.ioctl_val(libc::TUNSETPERSIST, libc::c_ulong::from(on))
}

/// Returns the name of the tap behind `q` (`TUNGETIFF`).
pub fn tap_name(q: &TapQueue) -> io::Result<String> {
    q.ifname()
}

// The kernel copies exactly `sizeof(struct ifreq)` bytes.
const _: () = assert!(std::mem::size_of::<IfReq>() == 40);

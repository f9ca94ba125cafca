//! Network namespaces: run a closure on a dedicated thread inside another
//! netns.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread* only.
//! A thread that entered another netns must never go back to a pool (tokio's
//! or anyone's), so [`run_in_netns`] spawns a fresh std thread, enters the
//! namespace, runs the closure and joins; the thread then exits.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use super::cvt;

/// The calling thread's own netns, as procfs exposes it.
pub const SELF_NETNS: &str = "/proc/thread-self/ns/net";

/// An open handle on a network namespace (a file under `/run/netns/`,
/// `/proc/<pid>/ns/net`, ...). Holding it keeps the namespace alive.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// Opens the namespace file at `path`. `NotFound` if it does not exist.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        Ok(NetNs {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens the calling thread's current netns (to move links back to it).
    pub fn current() -> io::Result<Self> {
        Self::open(Path::new(SELF_NETNS))
    }

    /// A second handle on the same namespace (a `dup` of the fd).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(NetNs {
            file: self.file.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the calling thread into this namespace. Private: only threads
    /// that [`NetNs::run`] spawned (and that die afterwards) may call it.
    fn enter(&self) -> io::Result<()> {
        // SAFETY: setns only reads the fd, which `self.file` keeps open; it
        // affects only the calling thread, which is a dedicated thread.
        cvt(unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) })?;
        Ok(())
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    /// A panic in `f` is propagated to the caller.
    pub fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let ns = self.try_clone()?;
        let handle = std::thread::Builder::new()
            .name("tweed-netns".into())
            .spawn(move || -> io::Result<T> {
                ns.enter().map_err(|e| {
                    io::Error::new(e.kind(), format!("setns({}): {e}", ns.path.display()))
                })?;
                drop(ns);
                Ok(f())
            })?;
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Why a path given as a network namespace cannot be used as one.
#[derive(Debug, thiserror::Error)]
pub enum NetnsFileError {
    /// Opening the path failed (ENOENT, ENOTDIR, EACCES, ...).
    #[error("cannot open {}", .path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause, as the kernel gave it.
        #[source]
        source: io::Error,
    },
    /// The path opened, but is not a network namespace.
    #[error("{} is not a network namespace ({what})", .path.display())]
    NotNetns {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
}

impl NetNs {
    /// Opens `path` as a container runtime's netns must be opened (read-only,
    /// close-on-exec, non-blocking, so a FIFO put there cannot hang us) and
    /// checks that it is a network namespace (`NS_GET_NSTYPE`).
    pub fn open_checked(path: &Path) -> Result<Self, NetnsFileError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| NetnsFileError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let not_netns = |what: String| NetnsFileError::NotNetns {
            path: path.to_path_buf(),
            what,
        };
        // SAFETY: NS_GET_NSTYPE takes no argument and writes no memory; the
        // fd is open for the whole call. A non-nsfs file fails with ENOTTY.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
        if kind < 0 {
            let e = io::Error::last_os_error();
            let what = match file.metadata() {
                Ok(m) if m.is_dir() => "a directory".to_owned(),
                Ok(m) if m.is_file() => "a regular file".to_owned(),
                _ => format!("not a namespace file: {e}"),
            };
            return Err(not_netns(what));
        }
        if kind != libc::CLONE_NEWNET {
            let name = match kind {
                libc::CLONE_NEWNS => "mnt",
                libc::CLONE_NEWPID => "pid",
                libc::CLONE_NEWUTS => "uts",
                libc::CLONE_NEWIPC => "ipc",
                libc::CLONE_NEWUSER => "user",
                libc::CLONE_NEWCGROUP => "cgroup",
                _ => "another kind of",
            };
            return Err(not_netns(format!("it is a {name} namespace")));
        }
        Ok(NetNs {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The namespace file's metadata (its device and inode name the namespace).
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }
}

impl AsRawFd for NetNs {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Opens the netns at `netns` and runs `f` on a dedicated thread inside it.
pub fn run_in_netns<T, F>(netns: &Path, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    NetNs::open(netns)?.run(f)
}

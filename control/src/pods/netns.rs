//! The pod's netns as the dataplane will open it.
//!
//! The runtime names the netns by a path in *its* mount namespace; the
//! daemon and the dataplane may not see that path (podman run under `ip netns
//! exec` makes its netns bind mounts in a mount namespace of its own), or
//! may see another file there. So the plugin opens the path where the
//! runtime sees it and keeps the descriptor open during `pod_add`; the
//! daemon opens the same namespace as `/proc/PEER/fd/N` (PEER from
//! `SO_PEERCRED`) and:
//! - if the path, looked up in the daemon's own mount namespace, is that very
//!   namespace (same nsfs device and inode), uses the path, as before;
//! - otherwise bind-mounts the namespace on `RUN_DIR/netns/CONTAINER_IFNAME`
//!   (as `ip netns add` does) and gives the dataplane that path, which stays
//!   valid across daemon and dataplane restarts until DEL unmounts it.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tweed_sys::netns::{NetNs, NetnsFileError};

/// Why the runtime's netns could not be found from the daemon.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The request carries a descriptor but the kernel named no peer pid.
    #[error(
        "netns {netns}: the plugin passed its descriptor {fd}, but the daemon cannot see the \
         plugin's pid (another pid namespace?)"
    )]
    NoPeer {
        /// The runtime's path.
        netns: String,
        /// The plugin's descriptor.
        fd: i32,
    },
    /// The plugin's descriptor could not be opened, or is not a netns.
    #[error("netns {netns}: the plugin's descriptor")]
    Descriptor {
        /// The runtime's path.
        netns: String,
        /// The cause.
        #[source]
        source: NetnsFileError,
    },
    /// Bind-mounting the namespace for the dataplane failed; `step` says where.
    #[error("netns {netns}: {step} {}", .path.display())]
    Mount {
        /// The runtime's path.
        netns: String,
        /// What was being done.
        step: &'static str,
        /// The path being made.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The namespace the plugin handed over, when the daemon must mount it for
/// the dataplane; `None` when the runtime's path works here as it is (or the
/// plugin passed no descriptor: an older plugin, or a test).
pub fn resolve(
    netns: &str,
    peer: Option<u32>,
    fd: Option<i32>,
) -> Result<Option<NetNs>, NetnsError> {
    let Some(fd) = fd else {
        return Ok(None);
    };
    let Some(pid) = peer else {
        return Err(NetnsError::NoPeer {
            netns: netns.to_owned(),
            fd,
        });
    };
    let theirs = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    let ns = NetNs::open_checked(&theirs).map_err(|source| NetnsError::Descriptor {
        netns: netns.to_owned(),
        source,
    })?;
    let here = std::fs::metadata(netns).ok().map(|m| (m.dev(), m.ino()));
    let there = ns.metadata().ok().map(|m| (m.dev(), m.ino()));
    Ok(if here.is_some() && here == there {
        None
    } else {
        Some(ns)
    })
}

/// The file under `dir` a pod interface's netns is mounted on: the container
/// id and interface name, with anything but `[A-Za-z0-9._-]` as `_`.
pub fn mount_path(dir: &Path, container_id: &str, ifname: &str) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    dir.join(format!("{}_{}", clean(container_id), clean(ifname)))
}

/// Bind-mounts `ns` on `path` (made if missing).
pub fn mount(ns: &NetNs, netns: &str, path: &Path) -> Result<(), NetnsError> {
    use std::os::fd::AsRawFd;
    let err = |step, source| NetnsError::Mount {
        netns: netns.to_owned(),
        step,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err("create the directory of", e))?;
    }
    // A mount left by a crash between mount and record: replace it.
    let _ = tweed_sys::process::unmount(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| err("create", e))?;
    let source = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
    tweed_sys::process::bind_mount(&source, path).map_err(|e| {
        let _ = std::fs::remove_file(path);
        err("bind-mount the pod's netns on", e)
    })
}

/// Undoes [`mount`]; what is already gone is not an error.
pub fn unmount(path: &Path) {
    if let Err(e) = tweed_sys::process::unmount(path)
        && e.raw_os_error() != Some(libc::EINVAL)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "unmounting a pod's netns");
    }
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "removing a pod's netns mount point");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_one_safe_file_name() {
        assert_eq!(
            mount_path(Path::new("/run/tweed/netns"), "abc123", "eth0"),
            Path::new("/run/tweed/netns/abc123_eth0")
        );
        assert_eq!(
            mount_path(Path::new("/d"), "../x/y", "e 1"),
            Path::new("/d/.._x_y_e_1")
        );
    }

    #[test]
    fn no_descriptor_keeps_the_path() {
        assert!(
            resolve("/run/netns/whatever", Some(1), None)
                .unwrap()
                .is_none()
        );
        let e = resolve("/run/netns/x", None, Some(3)).unwrap_err();
        assert!(e.to_string().contains("pid"), "{e}");
    }
}

//! Processes and mounts: signalling a process by pid, whether we run as
//! root, and the `unshare` and bind mounts that make and remove a named
//! network namespace (pods' netns for `tweed demo`, the tests' nodes).

/// Sends SIGTERM to `pid`; false if there is no such process.
pub fn terminate(pid: u32) -> bool {
    signal(pid, libc::SIGTERM)
}

/// Whether a process `pid` exists (signal 0).
pub fn alive(pid: u32) -> bool {
    signal(pid, 0)
}

fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a
    // positive pid names one process, never a group.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Sends SIGKILL to `pid`; false if there is no such process.
pub fn kill(pid: u32) -> bool {
    signal(pid, libc::SIGKILL)
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) takes nothing, cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread into a new, empty network namespace (its
/// `/proc/thread-self/ns/net` names it until the thread ends).
pub fn unshare_netns() -> std::io::Result<()> {
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours;
    // CLONE_NEWNET changes only the calling thread's namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Bind-mounts `source` on `target` (an existing file), as `ip netns add`
/// does to keep a namespace alive under a name.
pub fn bind_mount(source: &std::path::Path, target: &std::path::Path) -> std::io::Result<()> {
    let source = c_path(source)?;
    let target = c_path(target)?;
    // SAFETY: both pointers are NUL-terminated strings that live across the
    // call; a bind mount reads no filesystem type or data (null pointers).
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Detaches the mount on `target` (lazily, like `umount -l`).
pub fn unmount(target: &std::path::Path) -> std::io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: the pointer is a NUL-terminated string that lives across the
    // call; umount2 only reads it.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn c_path(path: &std::path::Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", path.display()),
        )
    })
}

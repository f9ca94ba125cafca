//! Binding a Unix socket whose file never has a wider mode than 0600.
//!
//! `bind` creates the socket file with the process's umask applied; a
//! `chmod` afterwards leaves a window in which another user may connect.
//! The umask is per process, though, and changing it would race with every
//! other thread that creates files. So the bind runs on a thread of its own
//! that first unshares its filesystem attributes (`unshare(CLONE_FS)`: its
//! own umask, cwd and root) and sets the umask to 0177 there only.

use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;

use super::cvt;

/// Binds a listening Unix socket at `path`, created with mode 0600 (owner
/// read and write only) from the start.
pub fn bind_owner_only(path: &Path) -> io::Result<UnixListener> {
    let path = path.to_owned();
    let thread = std::thread::Builder::new()
        .name("tweed-bind".into())
        .spawn(move || {
            // SAFETY: unshare(2) takes a flag word and touches no memory of
            // ours; CLONE_FS gives only this thread its own umask, cwd and
            // root, so the umask below changes nothing for other threads.
            cvt(unsafe { libc::unshare(libc::CLONE_FS) })?;
            // SAFETY: umask(2) takes a mode, cannot fail and touches no memory.
            unsafe { libc::umask(0o177) };
            UnixListener::bind(&path)
        })?;
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_socket_is_born_0600_whatever_the_process_umask() {
        let dir = std::env::temp_dir().join(format!("tweed-umask-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("s.sock");
        let _listener = bind_owner_only(&path).expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        // A plain bind in this process gets the process umask (0022 or
        // looser), i.e. a wider mode: what the helper avoids.
        let plain = dir.join("plain.sock");
        let _plain = UnixListener::bind(&plain).expect("bind");
        let plain_mode = std::fs::metadata(&plain)
            .expect("stat")
            .permissions()
            .mode();
        assert_ne!(plain_mode & 0o777, 0o600, "{plain_mode:o}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}

//! A small tmpfs mounted for one test: a state directory whose disk can be
//! filled up and freed again (the disk-full tests).
//!
//! [`Tmpfs::mount`] mounts `SIZE` bytes of tmpfs (`mount -t tmpfs`) on a fresh
//! `/tmp/tw-<prefix>-tmpfs-<pid>`; [`Tmpfs::fill`] writes a filler file until
//! the file system says `ENOSPC`, and [`Tmpfs::free`] removes it. Drop
//! unmounts it (lazily, in case a process still has a file open there) and
//! removes the directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts `bytes` of tmpfs on a fresh directory named after `prefix`.
    pub fn mount(prefix: &str, bytes: u64) -> Self {
        let dir = PathBuf::from(format!("/tmp/tw-{prefix}-tmpfs-{}", std::process::id()));
        // A mount a killed run of this test left behind.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes to a filler file until no space is left; returns how many
    /// bytes it took.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("create the filler file");
        let chunk = vec![0xa5u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("fill {}: {e}", self.dir.display()),
            }
        }
        written
    }

    /// Removes the filler file: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler file");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cleanup: remove {}: {e}", self.dir.display());
        }
    }
}

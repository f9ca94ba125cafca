//! Named network namespaces, made and removed the way `ip netns` does it
//! (a bind mount of the namespace on `/run/netns/NAME`), so `ip netns exec`
//! works on what the demo built; and the processes that live in them.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tweed_sys::netlink::with_netlink_on_this_thread;

use crate::links;
use tweed_sys::process as sys;

/// Where named namespaces live.
pub const NETNS_DIR: &str = "/run/netns";

/// The path of namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates namespace `name` with its loopback up. A stale one of the same
/// name must have been removed first ([`remove`]).
pub fn create(name: &str) -> io::Result<PathBuf> {
    let target = path(name);
    std::fs::create_dir_all(NETNS_DIR)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(|e| annotate(e, &format!("create {}", target.display())))?;
    let mount_on = target.clone();
    let made = std::thread::spawn(move || -> io::Result<()> {
        sys::unshare_netns().map_err(|e| annotate(e, "unshare(CLONE_NEWNET)"))?;
        sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &mount_on)
            .map_err(|e| annotate(e, &format!("bind-mount on {}", mount_on.display())))?;
        with_netlink_on_this_thread(|h| async move { Ok(links::lo_up(&h).await) })
            .map_err(|e| io::Error::other(format!("set lo up: {e}")))?
            .map_err(|e| io::Error::other(format!("set lo up: {e}")))
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")));
    if let Err(e) = made {
        let _ = remove(name);
        return Err(e);
    }
    Ok(target)
}

/// Removes namespace `name` (its interfaces go with it once no process
/// holds it). Absent is fine.
pub fn remove(name: &str) -> io::Result<()> {
    let target = path(name);
    if !target.exists() {
        return Ok(());
    }
    match sys::unmount(&target) {
        Ok(()) => {}
        // Not mounted: a file left by a crash between create and mount.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(annotate(e, &format!("unmount {}", target.display()))),
    }
    std::fs::remove_file(&target).map_err(|e| annotate(e, &format!("remove {}", target.display())))
}

/// The pids of the processes inside namespace `name`.
pub fn pids_in(name: &str) -> Vec<u32> {
    let Ok(meta) = std::fs::metadata(path(name)) else {
        return Vec::new();
    };
    let wanted = format!("net:[{}]", meta.ino());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.as_os_str() == wanted.as_str())
        })
        .collect()
}

/// Stops every process inside the namespaces: SIGTERM, then SIGKILL for
/// those still there after `grace`. Returns how many had to be killed.
pub fn stop_processes(names: &[String], grace: Duration) -> usize {
    for pid in pids_of(names) {
        sys::terminate(pid);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !pids_of(names).is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_processes(names, Duration::from_secs(5))
}

/// Kills (SIGKILL) every process inside the namespaces and waits up to
/// `wait` for them to be gone. Returns how many it killed.
pub fn kill_processes(names: &[String], wait: Duration) -> usize {
    let left = pids_of(names);
    for &pid in &left {
        sys::kill(pid);
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !pids_of(names).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    left.len()
}

fn pids_of(names: &[String]) -> Vec<u32> {
    names.iter().flat_map(|n| pids_in(n)).collect()
}

/// Sets sysctl `key` (dotted, e.g. `net.ipv4.ip_forward`) to `value` inside
/// namespace `name` (the `net.*` sysctls are per namespace: written from a
/// thread inside it).
pub fn sysctl(name: &str, key: &str, value: &str) -> io::Result<()> {
    let file = Path::new("/proc/sys").join(key.replace('.', "/"));
    let value = value.to_owned();
    sys_in(name, move || {
        std::fs::write(&file, value).map_err(|e| annotate(e, &format!("write {}", file.display())))
    })
}

/// Reads `/proc/net/FILE` (e.g. `tcp`) as seen from inside namespace `name`.
pub fn proc_net(name: &str, file: &str) -> io::Result<String> {
    let path = Path::new("/proc/thread-self/net").join(file);
    sys_in(name, move || {
        std::fs::read_to_string(&path).map_err(|e| annotate(e, &format!("read {}", path.display())))
    })
}

fn sys_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tweed_sys::netns::run_in_netns(&path(name), f)
        .map_err(|e| annotate(e, &format!("enter namespace {name}")))?
}

fn annotate(e: io::Error, step: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{step}: {e}"))
}

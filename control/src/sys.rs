//! The control crate's only unsafe code: signalling processes by pid.
#![allow(unsafe_code)]

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

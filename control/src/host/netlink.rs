//! The daemon's rtnetlink connection and the error codes we tolerate.
//!
//! Each host operation opens its own connection on the caller's tokio runtime (so in
//! the netns of the thread that runs it) and aborts its connection task when done: the
//! operations are rare (startup, shutdown) and a fresh socket never carries stale
//! replies.

use rtnetlink::Handle;
use tokio::task::JoinHandle;
use tweed_sys::netlink::{self as nl, NlError};

use super::HostError;

/// An rtnetlink handle whose connection task ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The request handle.
    pub(crate) handle: Handle,
    task: JoinHandle<()>,
}

impl Conn {
    /// Opens a connection and spawns its task on the current runtime.
    pub(crate) fn open() -> Result<Self, HostError> {
        let (conn, handle, _messages) =
            rtnetlink::new_connection().map_err(HostError::NetlinkConnection)?;
        let task = tokio::spawn(conn);
        Ok(Conn { handle, task })
    }

    /// The index of link `name`, or `None` if there is none.
    pub(crate) async fn link_index(&self, name: &str) -> Result<Option<u32>, HostError> {
        nl::link_index(&self.handle, name)
            .await
            .map_err(|source| HostError::LinkLookup {
                name: name.to_string(),
                source,
            })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The errno of a netlink error reply, if it is one (positive, like `libc::EEXIST`).
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// "Already there": adding an address or route that exists.
pub(crate) fn is_exists(e: &NlError) -> bool {
    errno(e) == Some(libc::EEXIST)
}

/// "Already gone": deleting a route (`ESRCH` for IPv4, `ENOENT` for IPv6), an address
/// (`EADDRNOTAVAIL`), or anything on a link that vanished (`ENODEV`).
pub(crate) fn is_gone(e: &NlError) -> bool {
    nl::is_not_found(e) || errno(e) == Some(libc::EADDRNOTAVAIL)
}

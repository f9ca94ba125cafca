//! [`PortError`]: one variant per step of creating, re-attaching or removing
//! a port, each naming the interface and netns and chaining the cause.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use super::netlink::NlError;

/// A port operation failed; the variant says at which step.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// An interface name is empty, too long (> 15 bytes) or has bad bytes.
    #[error("invalid interface name {name:?}")]
    InvalidName {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The netns file could not be opened (usually: it does not exist).
    #[error("cannot open netns {}", .netns.display())]
    NetnsOpen {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A thread could not be started in, or could not enter, the netns.
    #[error("cannot enter netns {}", .netns.display())]
    NetnsEnter {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The rtnetlink socket (or its runtime) could not be created.
    #[error("cannot open an rtnetlink socket in netns {}", .netns.display())]
    NetlinkSocket {
        netns: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The requested interface name is already taken in the netns.
    #[error("interface {ifname:?} already exists in netns {}", .netns.display())]
    LinkExists { netns: PathBuf, ifname: String },
    /// The interface does not exist in the netns.
    #[error("interface {ifname:?} does not exist in netns {}", .netns.display())]
    LinkNotFound { netns: PathBuf, ifname: String },
    /// A link lookup by name failed.
    #[error("cannot look up interface {ifname:?} in netns {}", .netns.display())]
    LinkLookup {
        netns: PathBuf,
        ifname: String,
        #[source]
        source: NlError,
    },
    /// The interface exists but is not a tap we may drive or delete.
    #[error("interface {ifname:?} in netns {} is not a tap", .netns.display())]
    NotATap { netns: PathBuf, ifname: String },
    /// Opening or configuring the tap queues failed (`TUNSETIFF`,
    /// `TUNSETVNETHDRSZ`, `TUNSETVNETLE`, `TUNSETOFFLOAD`; the cause says
    /// which).
    #[error("cannot open the queues of tap {ifname:?} in netns {}", .netns.display())]
    TapOpen {
        netns: PathBuf,
        ifname: String,
        #[source]
        source: io::Error,
    },
    /// `TUNSETPERSIST` failed.
    #[error("cannot set persist={on} on tap {ifname:?}")]
    TapSetPersist {
        ifname: String,
        on: bool,
        #[source]
        source: io::Error,
    },
    /// Setting the MTU failed.
    #[error("cannot set mtu {mtu} on interface {ifname:?} in netns {}", .netns.display())]
    LinkSetMtu {
        netns: PathBuf,
        ifname: String,
        mtu: u16,
        #[source]
        source: NlError,
    },
    /// Setting the MAC address failed.
    #[error("cannot set the mac address of interface {ifname:?} in netns {}", .netns.display())]
    LinkSetMac {
        netns: PathBuf,
        ifname: String,
        #[source]
        source: NlError,
    },
    /// The link carries no (or a malformed) MAC address.
    #[error("interface {ifname:?} in netns {} has no ethernet address", .netns.display())]
    LinkNoMac { netns: PathBuf, ifname: String },
    /// Adding an address failed.
    #[error("cannot add address {addr} to interface {ifname:?} in netns {}", .netns.display())]
    AddressAdd {
        netns: PathBuf,
        ifname: String,
        addr: IpAddr,
        #[source]
        source: NlError,
    },
    /// Adding a route failed.
    #[error("cannot add route {route:?} via interface {ifname:?} in netns {}", .netns.display())]
    RouteAdd {
        netns: PathBuf,
        ifname: String,
        route: &'static str,
        #[source]
        source: NlError,
    },
    /// Setting the link up failed.
    #[error("cannot set interface {ifname:?} up in netns {}", .netns.display())]
    LinkUp {
        netns: PathBuf,
        ifname: String,
        #[source]
        source: NlError,
    },
    /// Deleting the link failed.
    #[error("cannot delete interface {ifname:?} in netns {}", .netns.display())]
    LinkDelete {
        netns: PathBuf,
        ifname: String,
        #[source]
        source: NlError,
    },
}

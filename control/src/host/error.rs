//! The host-networking error type.
//!
//! Every variant names the step that failed and what it was applied to (a link, an
//! address, a prefix, an nft step), with the kernel's or nft's answer chained or
//! quoted, and its message says what to check or pass instead, so a daemon log line
//! is enough to act on.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use ipnet::IpNet;
use tweed_sys::netlink::NlError;

/// Which nft run failed (for messages; `Display` is the step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NftStep {
    /// Replacing the masquerade table.
    Install,
    /// Deleting the masquerade table.
    Remove,
    /// Replacing the filter table (anti-spoofing, untranslated Service traffic).
    InstallFilter,
    /// Deleting the filter table.
    RemoveFilter,
    /// Replacing the steering tables (native Services from outside).
    InstallSteer,
    /// Deleting the steering tables.
    RemoveSteer,
}

impl std::fmt::Display for NftStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NftStep::Install => "installing the masquerade table",
            NftStep::Remove => "removing the masquerade table",
            NftStep::InstallFilter => "installing the filter table",
            NftStep::RemoveFilter => "removing the filter table",
            NftStep::InstallSteer => {
                "installing the steering tables (native Services from outside)"
            }
            NftStep::RemoveSteer => "removing the steering tables",
        })
    }
}

/// Setting up (or tearing down) the node's host-side networking failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No rtnetlink socket could be opened.
    #[error(
        "cannot open a netlink socket to configure the host network (does tweed run as root / with CAP_NET_ADMIN?)"
    )]
    NetlinkConnection(#[source] std::io::Error),
    /// Asking the kernel for a link failed.
    #[error("looking up link {name} failed")]
    LinkLookup {
        /// The link's name (or `#index`).
        name: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// The host port does not exist.
    #[error("link {name} does not exist: is tweed-dataplane running with host port {name}?")]
    LinkMissing {
        /// The link's name.
        name: String,
    },
    /// The host port did not appear in time.
    #[error(
        "link {name} did not appear within {waited:?}: is tweed-dataplane running with host port {name}?"
    )]
    LinkWait {
        /// The link's name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Setting the host port up failed.
    #[error("setting link {name} up failed")]
    LinkUp {
        /// The link's name.
        name: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Listing addresses failed.
    #[error("listing the addresses of {dev} failed")]
    AddressList {
        /// The link's name (`all` for a dump of every link).
        dev: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Adding a node address to the host port failed.
    #[error("adding address {addr} to {dev} failed")]
    AddressAdd {
        /// The address (with its prefix length).
        addr: IpNet,
        /// The link's name.
        dev: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Deleting a node address from the host port failed.
    #[error("deleting address {addr} from {dev} failed")]
    AddressDelete {
        /// The address (with its prefix length).
        addr: IpNet,
        /// The link's name.
        dev: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Installing the route to a cluster CIDR failed.
    #[error(
        "installing the route {prefix} via {gateway} dev {dev} src {source_addr} failed (is {source_addr} on {dev}?)"
    )]
    RouteReplace {
        /// The destination prefix.
        prefix: IpNet,
        /// The next hop (the dataplane's gateway address).
        gateway: IpAddr,
        /// The link's name.
        dev: String,
        /// The preferred source address.
        source_addr: IpAddr,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Deleting the route to a cluster CIDR failed.
    #[error("deleting the route {prefix} dev {dev} failed")]
    RouteDelete {
        /// The destination prefix.
        prefix: IpNet,
        /// The link's name.
        dev: String,
        /// The kernel's answer.
        #[source]
        source: NlError,
    },
    /// Listing routes failed.
    #[error("listing the routes failed")]
    RouteList(#[source] NlError),
    /// The plan is inconsistent (a bug in the caller, or bad configuration).
    #[error("invalid host network plan: {reason}")]
    InvalidPlan {
        /// What is wrong with it.
        reason: String,
    },
    /// The nftables table name cannot be used in an nft script.
    #[error(
        "invalid nftables table name {table:?}: use 1-64 letters, digits or '_', starting with a letter"
    )]
    InvalidTableName {
        /// The name given.
        table: String,
    },
    /// nft could not be started.
    #[error("cannot run {} for {step}: is nftables installed?", path.display())]
    NftSpawn {
        /// The nft binary tried.
        path: PathBuf,
        /// What nft was run for.
        step: NftStep,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// nft ran and refused the script.
    #[error("nft failed {step} ({status}): {stderr}")]
    Nft {
        /// What nft was run for.
        step: NftStep,
        /// nft's exit status.
        status: ExitStatus,
        /// What nft printed on stderr.
        stderr: String,
    },
    /// A sysctl could not be set.
    #[error("turn on IP forwarding ({path}): {source}")]
    Sysctl {
        /// The sysctl's file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node has no default route to take the underlay from.
    #[error("no default route: pass --underlay-ip")]
    NoDefaultRoute,
    /// The default route's interface has no usable global address.
    #[error(
        "interface {ifname} (of the default route) has no global IPv{family} address: pass --underlay-ip"
    )]
    NoGlobalAddress {
        /// The interface.
        ifname: String,
        /// 4 or 6.
        family: u8,
    },
    /// No interface of the node holds the given address.
    #[error(
        "no interface of this node holds {ip}: pass one of this node's own addresses as --underlay-ip"
    )]
    AddressNotFound {
        /// The address looked for.
        ip: IpAddr,
    },
    /// A link reported by the kernel vanished or lacks its name/MTU.
    #[error("link #{index} has no {what} (did it just disappear?)")]
    LinkIncomplete {
        /// The link's index.
        index: u32,
        /// The missing attribute (`name`, `mtu`) or `link`.
        what: &'static str,
    },
}

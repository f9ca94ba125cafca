//! The records of pod IPAM: who holds which address, and the changes to persist.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::error::IpamError;

/// The key of an allocation: one interface of one container, as CNI names it
/// (`CNI_CONTAINERID`, `CNI_IFNAME`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attachment {
    /// The runtime's container id.
    pub container_id: String,
    /// The interface name inside the pod, e.g. `eth0`.
    pub ifname: String,
}

impl Attachment {
    /// An attachment with a non-empty container id and interface name.
    pub fn new(container_id: &str, ifname: &str) -> Result<Self, IpamError> {
        if container_id.is_empty() {
            return Err(IpamError::EmptyAttachment {
                what: "container id",
            });
        }
        if ifname.is_empty() {
            return Err(IpamError::EmptyAttachment {
                what: "interface name",
            });
        }
        Ok(Attachment {
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
        })
    }
}

/// The addresses of one attachment: one per family the node's pool serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Allocation {
    /// The IPv4 address, if the pool has an IPv4 subnet.
    pub ipv4: Option<Ipv4Addr>,
    /// The IPv6 address, if the pool has an IPv6 subnet.
    pub ipv6: Option<Ipv6Addr>,
}

impl Allocation {
    /// The addresses, IPv4 first.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> {
        let v4 = self.ipv4.map(IpAddr::V4);
        let v6 = self.ipv6.map(IpAddr::V6);
        v4.into_iter().chain(v6)
    }
}

/// An attachment and its addresses: the unit the store persists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds the addresses.
    #[serde(flatten)]
    pub attachment: Attachment,
    /// The addresses.
    #[serde(flatten)]
    pub allocation: Allocation,
}

/// A decided change to a pool: persist it, then [`PoolState::apply`] it.
///
/// [`PoolState::apply`]: super::pool::PoolState::apply
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Record a new lease; the pool's round-robin cursors move to its addresses.
    Assign {
        /// The new lease.
        lease: Lease,
    },
    /// Drop these leases (each only while it still holds the same addresses).
    Release {
        /// The leases released.
        leases: Vec<Lease>,
    },
}

/// What an operation decided: the answer for the caller, and the change to persist
/// before applying it (`None` when nothing changes, e.g. a repeated ADD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<T> {
    /// The answer: the allocation, or the leases released.
    pub outcome: T,
    /// The change to persist and then apply; `None` if the state stays as it is.
    pub change: Option<Change>,
}

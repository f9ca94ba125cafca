//! The one error type of IP address management.
//!
//! Every message names the value at fault and says what to change, because these
//! errors reach an operator through a CNI ADD failure or the daemon's start-up log.

use std::net::IpAddr;

use ipnet::IpNet;

use super::family::Family;

/// Why a subnet or address could not be chosen, or an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// A CIDR string did not parse.
    #[error(
        "cannot parse CIDR {input:?}: {reason}; write it like 10.244.0.0/16 or fd00:10:244::/56"
    )]
    ParseCidr {
        /// The text as given.
        input: String,
        /// The parser's complaint.
        reason: String,
    },

    /// A cluster CIDR or node subnet has bits set after its prefix.
    #[error("CIDR {given} has host bits set: write it as {network}")]
    HostBitsSet {
        /// The CIDR as given.
        given: IpNet,
        /// The same prefix with the host bits cleared.
        network: IpNet,
    },

    /// The node subnet length is shorter than (so larger than) the cluster prefix.
    #[error(
        "subnet length /{subnet_len} is shorter than the cluster CIDR {cluster}: \
         node subnets are carved out of it, so use a length from /{} to /{max}",
        cluster.prefix_len()
    )]
    SubnetLenShorterThanCluster {
        /// The cluster CIDR.
        cluster: IpNet,
        /// The subnet length asked for.
        subnet_len: u8,
        /// The longest usable length for this family.
        max: u8,
    },

    /// The node subnet length leaves no address for a pod.
    #[error(
        "subnet length /{subnet_len} is too long for {family}: a node subnet needs its network \
         address, the node's health address{} and at least one pod address; use /{max} or shorter",
        if *family == Family::V4 { ", its broadcast address" } else { "" }
    )]
    SubnetLenTooLong {
        /// The family of the cluster CIDR.
        family: Family,
        /// The subnet length asked for.
        subnet_len: u8,
        /// The longest usable length for this family.
        max: u8,
    },

    /// A CIDR or address of one family was given where the other was expected.
    #[error(
        "{given} is {}, but {expected} was expected here: give one CIDR per address family \
         and keep IPv4 and IPv6 values apart",
        Family::of(*given)
    )]
    FamilyMismatch {
        /// The family the slot holds.
        expected: Family,
        /// The offending value (a network's address, or an address).
        given: IpAddr,
    },

    /// Two cluster CIDRs of the same family.
    #[error(
        "two {family} cluster CIDRs, {first} and {second}: give at most one per address family"
    )]
    DuplicateFamily {
        /// Their family.
        family: Family,
        /// The first one given.
        first: IpNet,
        /// The second one given.
        second: IpNet,
    },

    /// No cluster CIDR (or node subnet) at all.
    #[error("no CIDR given: give an IPv4 CIDR, an IPv6 CIDR, or one of each for dual-stack")]
    NoCidr,

    /// Every node subnet of the cluster CIDR is taken.
    #[error(
        "cluster CIDR {cluster} is exhausted: all {count} /{subnet_len} subnets are held by \
         other nodes; remove the leases of nodes that are gone, or use a larger cluster CIDR \
         or a longer subnet length"
    )]
    ClusterExhausted {
        /// The cluster CIDR.
        cluster: IpNet,
        /// The node subnet length.
        subnet_len: u8,
        /// How many subnets of that length it holds.
        count: u128,
    },

    /// Every allocatable address of a node subnet is in use.
    #[error(
        "subnet {subnet} has no free address: {allocated} allocated, {reserved} reserved; \
         release pods that are gone (CNI DEL or GC) or give nodes a shorter subnet length"
    )]
    PoolExhausted {
        /// The node subnet.
        subnet: IpNet,
        /// Addresses held by pods.
        allocated: usize,
        /// Addresses reserved by the caller.
        reserved: usize,
    },

    /// An address is outside every subnet the pool serves, or is one the pool never
    /// hands out (network, health endpoint, broadcast).
    #[error("address {addr} is not allocatable from this node's subnets ({subnets})")]
    NotAllocatable {
        /// The address.
        addr: IpAddr,
        /// The pool's subnets, comma-separated.
        subnets: String,
    },

    /// An address is already held by an attachment, so it cannot be given to another or
    /// reserved.
    #[error(
        "address {addr} is already allocated to container {container_id} interface {ifname}; \
         release it first"
    )]
    AddressInUse {
        /// The address.
        addr: IpAddr,
        /// The holder's container id.
        container_id: String,
        /// The holder's interface name.
        ifname: String,
    },

    /// An attachment already holds addresses, so a decision to give it others is stale.
    #[error(
        "container {container_id} interface {ifname} already holds {addrs}; \
         the decision is stale: decide again"
    )]
    AlreadyAllocated {
        /// The container id.
        container_id: String,
        /// The interface name.
        ifname: String,
        /// The addresses it holds, comma-separated.
        addrs: String,
    },

    /// Two different addresses of one family were asked for one attachment.
    #[error(
        "two {family} addresses asked for ({first} and {second}): an interface gets one \
         address per family"
    )]
    WantedTwice {
        /// Their family.
        family: Family,
        /// The first one asked for.
        first: IpAddr,
        /// The second one.
        second: IpAddr,
    },

    /// An attachment asked for addresses other than the ones it already holds.
    #[error(
        "container {container_id} interface {ifname} already holds {held}, not {wanted}; \
         delete it (CNI DEL) before asking for other addresses"
    )]
    HoldsOthers {
        /// The container id.
        container_id: String,
        /// The interface name.
        ifname: String,
        /// The addresses it holds, comma-separated.
        held: String,
        /// The addresses asked for, comma-separated.
        wanted: String,
    },

    /// An address is reserved by the caller, so it cannot be allocated.
    #[error("address {addr} is reserved; unreserve it first")]
    AddressReserved {
        /// The address.
        addr: IpAddr,
    },

    /// A container id or interface name is empty.
    #[error(
        "invalid attachment: {what} is empty; the runtime must pass CNI_CONTAINERID and CNI_IFNAME"
    )]
    EmptyAttachment {
        /// `"container id"` or `"interface name"`.
        what: &'static str,
    },
}

//! The node's host-side networking for `tweed daemon`: the kernel's side of the
//! dataplane's host port, masquerade for traffic leaving the cluster, and the underlay
//! and MTU defaults.
//!
//! The dataplane owns the host port (`tweed0`, a tap in the node's netns) and answers
//! ARP/NDP for the pods' gateway on it; the daemon, running in the same netns, gives
//! the kernel its side: the node's addresses and routes to the cluster CIDRs on that
//! port ([`routes`]), an nftables masquerade table ([`masquerade`]), and a filter
//! table that keeps cluster sources to the host port and drops Service traffic the
//! node did not translate ([`filter`]); with native Services, the steering of
//! packets from outside to their NodePorts and externalIPs into the host port
//! ([`steer`]). Every
//! operation converges (running it again changes nothing) and every removal tolerates
//! what is already gone, so a restarted daemon simply runs them again.
//!
//! Pure decisions (which addresses/routes a plan implies, the nft script, which
//! default route and address to take, the pod MTU) live beside the I/O and are
//! unit-tested; privileged tests in `control/tests/host_network.rs` run the I/O in
//! private network namespaces.

pub mod detect;
pub mod error;
pub mod filter;
pub mod forwarding;
pub mod masquerade;
mod netlink;
pub mod plan;
pub mod routes;
pub mod steer;

pub use detect::{Underlay, default_route_interface, interface_of, pod_mtu};
pub use error::HostError;
pub use plan::{Desired, HostPlan, HostRoute};

//! tweed's control plane: cluster state, IP address management, node peers
//! and policy, and the CLI that shows them.

pub mod host;
pub mod ipam;
pub mod store;

//! tweed's control plane: cluster state, IP address management, node peers
//! and policy, and the CLI that shows them.

pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ipam;
pub mod store;

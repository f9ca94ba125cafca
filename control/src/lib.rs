//! tweed's control plane: cluster state, IP address management, node peers
//! and policy, and the CLI that shows them.

pub mod cluster;
pub mod config;
pub mod dataplane;
pub mod health;
pub mod host;
pub mod ipam;
pub mod metrics;
pub mod pods;
pub mod store;
pub mod sys;

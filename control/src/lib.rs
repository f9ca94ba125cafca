//! tweed's control plane: cluster state, IP address management, node peers
//! and policy, the daemon that runs a node, and the CLI that shows them.

pub mod api;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod demo;
pub mod enforce;
pub mod health;
pub mod host;
pub mod ipam;
pub mod kubernetes;
pub mod metrics;
pub mod pods;
pub mod policy;
pub mod store;
pub mod sys;

//! The CNI protocol as tweed speaks it (containernetworking/cni SPEC 1.1.0),
//! with no I/O: everything a container runtime hands the plugin is decoded
//! and checked here, and everything the plugin answers is built here, so the
//! edge (`cmd`, `main`) only moves bytes and talks to the daemon.
//!
//! - [`version`]: the spec versions we answer to and what each allows;
//! - [`error`]: the error codes and the error JSON;
//! - [`env`]: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//!   `CNI_ARGS`;
//! - [`config`]: the network configuration on stdin;
//! - [`result`]: the ADD result per version, merged into a `prevResult`;
//! - [`check`]: what CHECK compares, and the differences it reports;
//! - [`wanted`]: the static addresses and MAC a runtime asks for.

pub mod check;
pub mod config;
pub mod env;
pub mod error;
pub mod result;
pub mod version;
pub mod wanted;

pub use config::NetConf;
pub use env::{Command, Env};
pub use error::{CniError, code};
pub use result::Attached;
pub use version::CniVersion;

//! Peer reachability through the overlay.
//!
//! Every node puts its overlay address (the first address of its pod subnet) on its
//! host port and serves a TCP health port there ([`responder`]); every node probes
//! each peer's health port through the overlay ([`prober`]) and keeps the results in
//! a [`HealthBook`] ([`book`], pure), whose [`PeerHealth`] read model ([`peer`]) the
//! metrics and the CLI show.

pub mod book;
pub mod peer;
pub mod prober;
pub mod responder;

pub use book::{DEFAULT_FAILURE_THRESHOLD, HealthBook, Transition};
pub use peer::PeerHealth;
pub use prober::{ProbeError, describe, parse_greeting, probe, run};
pub use responder::{greeting, serve};

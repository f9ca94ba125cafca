//! The daemon's side of the dataplane: its API client, the supervisor that
//! keeps it running, and the resync diffs.

pub mod client;
pub mod resync;
pub mod supervisor;

pub use client::{Dataplane, DataplaneError};
pub use supervisor::{DataplaneState, Supervisor};

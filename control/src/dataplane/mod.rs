//! The daemon's side of the dataplane: its API client, the supervisor that
//! keeps it running, the resync diffs, and the batching of pushes (pure).

pub mod batch;
pub mod client;
pub mod resync;
pub mod supervisor;

pub use client::{Dataplane, DataplaneError};
pub use supervisor::{DataplaneState, Supervisor};

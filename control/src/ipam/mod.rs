//! IP address management: pure decisions, no I/O, no clock, no global state.
//!
//! Two levels, both flannel/CNI-shaped:
//!
//! - [`subnet`]: which node subnet of the cluster CIDR a node takes. It yields
//!   candidates in order; the caller claims each with the store's atomic
//!   create-if-absent until one succeeds, so two nodes never hold the same subnet.
//! - [`pool`]: which address of the node's subnet(s) a pod interface gets, idempotent
//!   per (container id, ifname), round-robin, released on DEL and GC.
//!
//! Every operation that changes state is split into *decide* (`&self`, returns a
//! [`Decision`] carrying a serializable [`Change`]), *persist* (the caller's store), and
//! *commit* ([`PoolState::apply`]), so a crash between them neither leaks nor
//! duplicates an address. All state types derive serde and revalidate on load.
//!
//! Errors are one [`IpamError`] enum whose messages say what to fix.

pub mod error;
pub mod family;
pub mod lease;
pub mod pool;
pub mod subnet;

pub use error::IpamError;
pub use family::Family;
pub use lease::{Allocation, Attachment, Change, Decision, Lease};
pub use pool::PoolState;
pub use subnet::{Candidates, ClusterPlan, Order, SubnetPlan};

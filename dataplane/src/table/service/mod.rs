//! Services: the table a native kube-proxy replacement balances with. A
//! frontend (cluster IP, node port, external IP) maps to the usable endpoints
//! behind it, chosen per connection by Maglev consistent hashing so that an
//! endpoint change moves few established flows' choice.
//!
//! - [`model`]: Services, endpoints and policies as Kubernetes states them.
//! - [`maglev`]: the consistent-hash lookup table.
//! - [`table`]: the compiled, immutable table and its lookup.
//! - [`error`]: why a set of Services was refused.
//!
//! Pure: the pipeline asks [`ServiceTable::select`] for a new connection's
//! backend and records the translation in connection tracking.

pub mod error;
pub mod maglev;
pub mod model;
pub mod table;

#[cfg(test)]
mod tests;

pub use error::ServiceError;
pub use model::{
    Affinity, Frontend, FrontendKind, Origin, ServiceEndpoint, ServiceKey, ServicePort,
    TrafficPolicy,
};
pub use table::{Selection, ServiceTable};

//! The daemon's Prometheus metrics: what a scrape shows ([`MetricsSnapshot`]), its
//! OpenMetrics text ([`render`], pure) and the HTTP endpoint serving it ([`serve`]).
//!
//! - [`snapshot`]: the input, gathered by the daemon (dataplane stats, peer health,
//!   address usage);
//! - [`families`]: families and samples through `prometheus-client`'s text encoder,
//!   label values escaped, repeated series dropped (pure);
//! - [`render`](mod@render): which families, in which order (pure);
//! - [`request`]: which answer a method and path get (pure);
//! - [`server`]: hyper's HTTP/1.1 server on a tokio listener, with limits (I/O).

#[cfg(test)]
mod checker;
pub mod families;
pub mod render;
pub mod request;
pub mod server;
pub mod snapshot;

pub use render::render;
pub use server::{Limits, MetricsSource, serve, serve_with};
pub use snapshot::{MetricsSnapshot, PoolUsage};

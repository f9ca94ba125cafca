//! The daemon's Prometheus metrics: what a scrape shows ([`MetricsSnapshot`]), its
//! text ([`render`], pure) and the HTTP endpoint serving it ([`serve`]).
//!
//! - [`snapshot`]: the input, gathered by the daemon (dataplane stats, peer health,
//!   address usage);
//! - [`exposition`]: the text format 0.0.4 writer, escaping included (pure);
//! - [`render`](mod@render): which families, in which order (pure);
//! - [`request`]: request-head parsing, routing and response bytes (pure);
//! - [`server`]: the tokio accept loop (I/O).

#[cfg(test)]
mod checker;
pub mod exposition;
pub mod render;
pub mod request;
pub mod server;
pub mod snapshot;

pub use render::render;
pub use server::{Limits, MetricsSource, serve, serve_with};
pub use snapshot::{MetricsSnapshot, PoolUsage};

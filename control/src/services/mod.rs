//! Services for the native kube-proxy replacement: Kubernetes Services and
//! EndpointSlices read into the Service ports the dataplane's service table
//! balances (`tweed_dataplane::table::service`). Pure.
//!
//! - [`documents`]: `tweed service apply`'s text → Services and slices.
//! - [`translate`]: a Service and its slices → this node's Service ports.
//! - [`health`]: a `LoadBalancer` Service's health check node port and what
//!   this node answers on it.
//! - [`error`]: why a Service could not be read.

pub mod documents;
pub mod error;
pub mod health;
pub mod translate;

#[cfg(test)]
mod tests;

pub use error::{DocumentError, ServiceSpecError};
pub use health::{HealthCheck, health_check};
pub use translate::{Here, SERVICE_NAME_LABEL, service_ports};

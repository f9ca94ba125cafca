//! What a Service is to the dataplane: the wire model of `service_set`
//! (`tweed_api::dataplane::service`: frontends, endpoints and the policies
//! that choose among them, in the terms of Kubernetes' Service and
//! EndpointSlice), and where a connection's client is.

pub use tweed_api::dataplane::service::{
    Affinity, Frontend, FrontendKind, ServiceEndpoint, ServiceKey, ServicePort, TrafficPolicy,
};

/// Where the client of a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A pod of the cluster.
    Pod,
    /// Outside the cluster (arrived on the node's own address).
    External,
}

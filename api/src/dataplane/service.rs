//! What a Service is to the dataplane: the addresses it answers on (its
//! frontends), the endpoints behind it, and the policies that choose among
//! them, in the terms of Kubernetes' Service and EndpointSlice.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An address a Service answers on: a virtual IP, a protocol and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKey {
    /// The cluster IP, external IP, or (for a NodePort) the node's address.
    pub ip: IpAddr,
    /// The IP protocol number (TCP, UDP or SCTP).
    pub protocol: u8,
    /// The port on `ip`.
    pub port: u16,
}

/// Which kind of address a frontend is, which decides the traffic policy
/// that applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontendKind {
    /// The Service's cluster IP: `internalTrafficPolicy` applies.
    ClusterIp,
    /// A node port, an external IP or a load-balancer IP:
    /// `externalTrafficPolicy` applies to clients outside the cluster.
    External,
}

/// One frontend of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// The address it answers on.
    pub key: ServiceKey,
    /// Its kind.
    pub kind: FrontendKind,
}

/// Which endpoints a kind of traffic may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrafficPolicy {
    /// Any endpoint in the cluster.
    #[default]
    Cluster,
    /// Only endpoints on this node; none there drops the traffic.
    Local,
}

/// Session affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Affinity {
    /// Each connection picks its backend by its own flow.
    #[default]
    None,
    /// Connections of one client address pick the same backend.
    ClientIp,
}

/// An endpoint of an EndpointSlice, with its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoint {
    /// The pod's address.
    pub ip: IpAddr,
    /// The port the pod serves this Service port on (the target port).
    pub port: u16,
    /// Whether the endpoint is on this node.
    pub local: bool,
    /// `conditions.ready`.
    pub ready: bool,
    /// `conditions.serving`: it answers even while terminating.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
}

/// One port of a Service with its endpoints: the unit the service table
/// balances over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    /// `NAMESPACE/NAME:PORT-NAME`, for trace, explain and errors.
    pub name: String,
    /// The addresses it answers on.
    pub frontends: Vec<Frontend>,
    /// Its endpoints.
    pub endpoints: Vec<ServiceEndpoint>,
    /// `internalTrafficPolicy`.
    pub internal: TrafficPolicy,
    /// `externalTrafficPolicy`.
    pub external: TrafficPolicy,
    /// `sessionAffinity`.
    pub affinity: Affinity,
}

impl ServicePort {
    /// A port named `name` with no frontends and no endpoints yet, the
    /// Kubernetes defaults for its policies (`Cluster`, no affinity).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            frontends: Vec::new(),
            endpoints: Vec::new(),
            internal: TrafficPolicy::Cluster,
            external: TrafficPolicy::Cluster,
            affinity: Affinity::None,
        }
    }
}

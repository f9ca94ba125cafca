//! The Service ops' wire types (native Services). Pure serde types.
//!
//! Services and EndpointSlices travel as the text a user wrote (YAML or
//! JSON, as kubectl prints them): the daemon reads them in one place.

use serde::{Deserialize, Serialize};

/// `service_apply` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceApply {
    /// Service and EndpointSlice documents, YAML or JSON.
    pub text: String,
}

/// `service_apply` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesApplied {
    /// What was created or replaced, in the order of the text:
    /// `service NS/NAME`, `endpointslice NS/NAME`.
    pub applied: Vec<String>,
    /// Whether this node balances them (`--native-services`); without it
    /// they are stored for the nodes that do.
    pub native: bool,
}

/// `service_delete` arguments: a Service, whose EndpointSlices go with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDelete {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// One Service port as this node balances it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePortInfo {
    /// `NAMESPACE/NAME:PORT`.
    pub name: String,
    /// Where it answers: `10.96.0.10:80/tcp`.
    pub frontends: Vec<String>,
    /// Its endpoints: `10.244.1.5:8080`, with ` (local)`, ` (not ready)`,
    /// ` (terminating)` as they are.
    pub endpoints: Vec<String>,
}

/// `service_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesReply {
    /// Whether this node balances them (`--native-services`).
    pub native: bool,
    /// Every port of every Service, by name.
    pub ports: Vec<ServicePortInfo>,
    /// Services that cannot be balanced, and why.
    #[serde(default)]
    pub refused: Vec<String>,
}

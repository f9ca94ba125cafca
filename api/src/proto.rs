//! The wire types of the control API: the error reply, the request (one
//! variant per op) and the successful answers. See `control/API.md`.
//!
//! Every struct refuses unknown fields, so a misspelt field is an error that
//! names it rather than a silently ignored setting. The pod and node types
//! live in [`super::pod`] and [`super::node`]; routes, stats and traces are
//! the dataplane's own types, passed through unchanged. Pure.

use serde::{Deserialize, Serialize};

pub use crate::dataplane::proto::{
    Empty, MacAddr, Protocol, RouteInfo, RoutesReply, TraceFrom, TraceRequest,
};
pub use crate::dataplane::report::StatsReply;
pub use crate::dataplane::trace::{TraceReply, TraceStage};
pub use crate::dataplane::values::Backend;

use super::node::{NodesReply, PeerAdd, PeersReply, StatusReply};
use super::pod::{GcArgs, PodAdd, PodDel, PodInfo, PodKey, PodsReply, ReleasedReply};
use super::policy::{
    AppliedReply, ExplainReply, LabelNamespace, LabelPod, LabelsReply, PoliciesReply, PolicyApply,
    PolicyDelete, PolicyExplain,
};
use super::service::{ServiceApply, ServiceDelete, ServicesApplied, ServicesReply};

/// The protocol version this build speaks; a request with another is refused.
pub const VERSION: u32 = 1;

/// The control daemon's socket, as the envelope names it in its answers.
pub const SPEAKER: Speaker = Speaker {
    name: "daemon",
    version: VERSION,
};

pub use crate::envelope::Speaker;
pub use crate::error::{ApiError, ErrorKind};

/// One operation with its arguments; on the wire `{"<op_name>":{...args...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// This node, the store, the dataplane and the peers' reachability.
    Status(Empty),
    /// Give a pod an address and a port on the dataplane (CNI ADD).
    PodAdd(PodAdd),
    /// Release a pod's addresses and port (CNI DEL); idempotent.
    PodDel(PodDel),
    /// One pod's attachment (CNI CHECK).
    PodGet(PodKey),
    /// Every pod attached on this node.
    PodList(Empty),
    /// Release every pod not in a list (CNI GC).
    Gc(GcArgs),
    /// This node, the other nodes and the static peers.
    NodeList(Empty),
    /// The dataplane's routes.
    RouteList(Empty),
    /// Add or replace a static peer.
    PeerAdd(PeerAdd),
    /// Remove a static peer.
    PeerRemove(NameArgs),
    /// The static peers.
    PeerList(Empty),
    /// The dataplane's counters.
    Stats(Empty),
    /// Run a synthetic packet through the dataplane as a dry run.
    Trace(TraceRequest),
    /// Create or replace policies from YAML or JSON documents.
    PolicyApply(PolicyApply),
    /// Delete one policy.
    PolicyDelete(PolicyDelete),
    /// Every policy.
    PolicyList(Empty),
    /// Which policy and rule decide a connection between two endpoints.
    PolicyExplain(PolicyExplain),
    /// Set or remove a pod's labels.
    LabelPod(LabelPod),
    /// Set or remove a namespace's labels.
    LabelNamespace(LabelNamespace),
    /// Create or replace Services and EndpointSlices from YAML or JSON.
    ServiceApply(ServiceApply),
    /// Delete a Service and its EndpointSlices.
    ServiceDelete(ServiceDelete),
    /// Every Service port as this node balances it.
    ServiceList(Empty),
}

/// The operations, without their arguments (named as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Status,
    PodAdd,
    PodDel,
    PodGet,
    PodList,
    Gc,
    NodeList,
    RouteList,
    PeerAdd,
    PeerRemove,
    PeerList,
    Stats,
    Trace,
    PolicyApply,
    PolicyDelete,
    PolicyList,
    PolicyExplain,
    LabelPod,
    LabelNamespace,
    ServiceApply,
    ServiceDelete,
    ServiceList,
}

impl Op {
    /// The op's wire name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::PodAdd => "pod_add",
            Op::PodDel => "pod_del",
            Op::PodGet => "pod_get",
            Op::PodList => "pod_list",
            Op::Gc => "gc",
            Op::NodeList => "node_list",
            Op::RouteList => "route_list",
            Op::PeerAdd => "peer_add",
            Op::PeerRemove => "peer_remove",
            Op::PeerList => "peer_list",
            Op::Stats => "stats",
            Op::Trace => "trace",
            Op::PolicyApply => "policy_apply",
            Op::PolicyDelete => "policy_delete",
            Op::PolicyList => "policy_list",
            Op::PolicyExplain => "policy_explain",
            Op::LabelPod => "label_pod",
            Op::LabelNamespace => "label_namespace",
            Op::ServiceApply => "service_apply",
            Op::ServiceDelete => "service_delete",
            Op::ServiceList => "service_list",
        }
    }
}

impl Request {
    /// Which operation this is.
    pub fn op(&self) -> Op {
        match self {
            Request::Status(_) => Op::Status,
            Request::PodAdd(_) => Op::PodAdd,
            Request::PodDel(_) => Op::PodDel,
            Request::PodGet(_) => Op::PodGet,
            Request::PodList(_) => Op::PodList,
            Request::Gc(_) => Op::Gc,
            Request::NodeList(_) => Op::NodeList,
            Request::RouteList(_) => Op::RouteList,
            Request::PeerAdd(_) => Op::PeerAdd,
            Request::PeerRemove(_) => Op::PeerRemove,
            Request::PeerList(_) => Op::PeerList,
            Request::Stats(_) => Op::Stats,
            Request::Trace(_) => Op::Trace,
            Request::PolicyApply(_) => Op::PolicyApply,
            Request::PolicyDelete(_) => Op::PolicyDelete,
            Request::PolicyList(_) => Op::PolicyList,
            Request::PolicyExplain(_) => Op::PolicyExplain,
            Request::LabelPod(_) => Op::LabelPod,
            Request::LabelNamespace(_) => Op::LabelNamespace,
            Request::ServiceApply(_) => Op::ServiceApply,
            Request::ServiceDelete(_) => Op::ServiceDelete,
            Request::ServiceList(_) => Op::ServiceList,
        }
    }
}

/// Arguments naming a static peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    /// The peer's name.
    pub name: String,
}

/// A successful answer, the `ok` field of a reply. Which variant an op
/// answers with is fixed (see [`ResponseBody::decode`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ResponseBody {
    /// `{}`: `peer_add`, `peer_remove`, `policy_delete`, `service_delete`.
    Empty(Empty),
    /// `status`.
    Status(StatusReply),
    /// `pod_add`, `pod_get`.
    Pod(PodInfo),
    /// `pod_del`, `gc`.
    Released(ReleasedReply),
    /// `pod_list`.
    Pods(PodsReply),
    /// `node_list`.
    Nodes(NodesReply),
    /// `route_list`.
    Routes(RoutesReply),
    /// `peer_list`.
    Peers(PeersReply),
    /// `stats`.
    Stats(StatsReply),
    /// `trace`.
    Trace(TraceReply),
    /// `policy_apply`.
    Applied(AppliedReply),
    /// `policy_list`.
    Policies(PoliciesReply),
    /// `policy_explain`.
    Explain(ExplainReply),
    /// `label_pod`, `label_namespace`.
    Labels(LabelsReply),
    /// `service_apply`.
    ServicesApplied(ServicesApplied),
    /// `service_list`.
    Services(ServicesReply),
}

impl ResponseBody {
    /// The empty answer.
    pub fn empty() -> Self {
        ResponseBody::Empty(Empty {})
    }

    /// Decodes the `ok` payload of a reply to `op`.
    pub fn decode(op: Op, value: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value;
        Ok(match op {
            Op::Status => ResponseBody::Status(from_value(value)?),
            Op::PodAdd | Op::PodGet => ResponseBody::Pod(from_value(value)?),
            Op::PodDel | Op::Gc => ResponseBody::Released(from_value(value)?),
            Op::PodList => ResponseBody::Pods(from_value(value)?),
            Op::NodeList => ResponseBody::Nodes(from_value(value)?),
            Op::RouteList => ResponseBody::Routes(from_value(value)?),
            Op::PeerList => ResponseBody::Peers(from_value(value)?),
            Op::Stats => ResponseBody::Stats(from_value(value)?),
            Op::Trace => ResponseBody::Trace(from_value(value)?),
            Op::PolicyApply => ResponseBody::Applied(from_value(value)?),
            Op::PolicyList => ResponseBody::Policies(from_value(value)?),
            Op::PolicyExplain => ResponseBody::Explain(from_value(value)?),
            Op::LabelPod | Op::LabelNamespace => ResponseBody::Labels(from_value(value)?),
            Op::ServiceApply => ResponseBody::ServicesApplied(from_value(value)?),
            Op::ServiceList => ResponseBody::Services(from_value(value)?),
            Op::PeerAdd | Op::PeerRemove | Op::PolicyDelete | Op::ServiceDelete => {
                ResponseBody::Empty(from_value(value)?)
            }
        })
    }

    /// The body as a JSON value (what `-o json` prints).
    pub fn to_value(&self) -> serde_json::Value {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;

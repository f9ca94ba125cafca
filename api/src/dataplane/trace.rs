//! The `trace` answer: the pipeline's stages as JSON objects tagged by a
//! `"stage"` field, with ports and peers named rather than numbered. The
//! dataplane builds it from its pipeline's record; the control daemon and
//! the CLI pass it on and print it. Pure serde types.

use std::net::SocketAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::values::{RouteTarget, VerdictSpec};

/// The flow found by connection tracking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackHit {
    /// `original` or `reply`.
    pub direction: String,
    /// The flow's state after this packet, e.g. `established`.
    pub state: String,
    /// The flow's tag.
    pub tag: u32,
}

/// One stage's decision, on the wire `{"stage":"<name>", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceStage {
    /// What the frame parsed as.
    Parsed {
        /// A one-line summary.
        summary: String,
    },
    /// Source MAC and IP checked against the sending port's.
    SpoofCheck {
        /// Whether they matched.
        passed: bool,
    },
    /// The encapsulated packet's sender and inner source checked.
    Decap {
        /// The sending peer, if known.
        peer: Option<String>,
        /// Whether the checks passed.
        passed: bool,
    },
    /// The packet was for the gateway.
    Gateway {},
    /// Connection tracking.
    Conntrack {
        /// The flow found, if any.
        hit: Option<ConntrackHit>,
    },
    /// The source pod's egress policy.
    EgressPolicy {
        /// The decision.
        verdict: VerdictSpec,
        /// The deciding rule; null = the default.
        rule: Option<u32>,
        /// Log rules that matched.
        logged: Vec<u32>,
    },
    /// A native Service frontend and the backend chosen for the flow.
    Service {
        /// `namespace/name:port`.
        service: String,
        /// The address and port the pod called.
        frontend: SocketAddr,
        /// The backend the packet goes to; null = no endpoint may serve it.
        backend: Option<SocketAddr>,
    },
    /// A reply of a translated flow, sent on as from the frontend.
    ServiceReply {
        /// The frontend; null = the translation is forgotten.
        frontend: Option<SocketAddr>,
    },
    /// The route chosen.
    Route {
        /// The matching prefix; null = no route.
        prefix: Option<IpNet>,
        /// Its next hop.
        next_hop: Option<RouteTarget>,
    },
    /// The destination pod's ingress policy.
    IngressPolicy {
        /// The decision.
        verdict: VerdictSpec,
        /// The deciding rule; null = the default.
        rule: Option<u32>,
        /// Log rules that matched.
        logged: Vec<u32>,
    },
    /// The final action, e.g. `deliver port NS/POD` or `drop policy_egress`.
    Action {
        /// The action.
        action: String,
    },
}

/// The `trace` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceReply {
    /// Every stage, in pipeline order.
    pub stages: Vec<TraceStage>,
    /// What happened to the packet, in words.
    pub verdict: String,
}

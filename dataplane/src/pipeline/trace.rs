//! Recording what each stage of the pipeline decided, for `trace`.
//!
//! The pipeline is generic over a [`Tracer`]; the packet path uses
//! [`NoTrace`], whose methods compile to nothing, so tracing costs nothing
//! when off and a trace runs exactly the code that forwards real packets.
//! A tracer is also a dry run: with one, the pipeline reads connection
//! tracking but never writes it.

use std::net::SocketAddr;

use ipnet::IpNet;

use super::action::Action;
use crate::table::acl::{RuleId, Verdict};
use crate::table::conntrack::Hit;
use crate::table::nexthop::{NextHop, PeerId};

/// One stage's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// The frame parsed; a one-line summary of what it is.
    Parsed(String),
    /// Source MAC and IP checked against the sending port's.
    SpoofCheck { passed: bool },
    /// The encapsulated packet's sender and inner source checked.
    Decap { peer: Option<PeerId>, passed: bool },
    /// The packet was for the gateway and got an answer (or was dropped).
    Gateway,
    /// Connection tracking: the flow found, if any.
    Conntrack(Option<Hit>),
    /// The source pod's egress policy (`rule: None` is the default).
    EgressPolicy {
        verdict: Verdict,
        rule: Option<RuleId>,
        logged: Vec<RuleId>,
    },
    /// A native Service frontend: the backend chosen (or kept for the
    /// flow); `None` when no endpoint may serve it.
    Service {
        service: String,
        frontend: SocketAddr,
        backend: Option<SocketAddr>,
    },
    /// A reply of a translated flow: the frontend it now comes from (`None`:
    /// the translation is forgotten, the reply goes on as it is).
    ServiceReply { frontend: Option<SocketAddr> },
    /// The route chosen.
    Route {
        prefix: Option<IpNet>,
        next_hop: Option<NextHop>,
    },
    /// The destination pod's ingress policy.
    IngressPolicy {
        verdict: Verdict,
        rule: Option<RuleId>,
        logged: Vec<RuleId>,
    },
    /// The final action.
    Action(Action),
}

/// Receives each stage's decision.
pub trait Tracer {
    /// True for tracers: the pipeline then changes no state.
    const DRY_RUN: bool;
    /// Records one stage.
    fn stage(&mut self, stage: impl FnOnce() -> Stage);
}

/// The tracer of the packet path: records nothing, changes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTrace;

impl Tracer for NoTrace {
    const DRY_RUN: bool = false;
    #[inline(always)]
    fn stage(&mut self, _stage: impl FnOnce() -> Stage) {}
}

/// A tracer that keeps every stage, in order.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// The stages seen so far.
    pub stages: Vec<Stage>,
}

impl Tracer for Recorder {
    const DRY_RUN: bool = true;
    fn stage(&mut self, stage: impl FnOnce() -> Stage) {
        self.stages.push(stage());
    }
}

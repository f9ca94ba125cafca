//! The `trace` answer built: the pipeline's [`Stage`]s as the wire's
//! [`TraceStage`]s (`tweed_api::dataplane::trace`), with ports and peers
//! named rather than numbered.
//!
//! Pure: the caller passes a [`Names`] that turns ids into names (from the
//! snapshot the trace ran against).

pub use tweed_api::dataplane::trace::{ConntrackHit, TraceReply, TraceStage};
use tweed_api::dataplane::values::{RouteTarget, VerdictSpec};

use crate::pipeline::Action;
use crate::pipeline::action::Split;
use crate::pipeline::trace::Stage;
use crate::table::acl::{RuleId, Verdict};
use crate::table::conntrack::{Direction, FlowState, Hit};
use crate::table::nexthop::{NextHop, PeerId, PortId};

/// Turns port and peer ids into names for a trace.
pub trait Names {
    /// The name of the port with this id, if it exists.
    fn port(&self, id: PortId) -> Option<String>;
    /// The name of the peer with this id, if it exists.
    fn peer(&self, id: PeerId) -> Option<String>;
}

impl<F, G> Names for (F, G)
where
    F: Fn(PortId) -> Option<String>,
    G: Fn(PeerId) -> Option<String>,
{
    fn port(&self, id: PortId) -> Option<String> {
        (self.0)(id)
    }
    fn peer(&self, id: PeerId) -> Option<String> {
        (self.1)(id)
    }
}

fn port_name(names: &dyn Names, id: PortId) -> String {
    names.port(id).unwrap_or_else(|| format!("#{}", id.0))
}

fn peer_name(names: &dyn Names, id: PeerId) -> String {
    names.peer(id).unwrap_or_else(|| format!("#{}", id.0))
}

/// The answer for the stages a [`crate::pipeline::trace::Recorder`] kept
/// and the action the pipeline returned.
pub fn trace_reply(stages: &[Stage], action: &Action, names: &dyn Names) -> TraceReply {
    TraceReply {
        stages: stages.iter().map(|s| trace_stage(s, names)).collect(),
        verdict: verdict(action, names),
    }
}

/// The wire form of `stage`.
pub fn trace_stage(stage: &Stage, names: &dyn Names) -> TraceStage {
    match stage {
        Stage::Parsed(summary) => TraceStage::Parsed {
            summary: summary.clone(),
        },
        Stage::SpoofCheck { passed } => TraceStage::SpoofCheck { passed: *passed },
        Stage::Decap { peer, passed } => TraceStage::Decap {
            peer: peer.map(|p| peer_name(names, p)),
            passed: *passed,
        },
        Stage::Gateway => TraceStage::Gateway {},
        Stage::Conntrack(hit) => TraceStage::Conntrack {
            hit: hit.as_ref().map(conntrack_hit),
        },
        Stage::EgressPolicy {
            verdict,
            rule,
            logged,
        } => TraceStage::EgressPolicy {
            verdict: verdict_spec(*verdict),
            rule: rule.map(|r| r.0),
            logged: rule_ids(logged),
        },
        Stage::Service {
            service,
            frontend,
            backend,
        } => TraceStage::Service {
            service: service.clone(),
            frontend: *frontend,
            backend: *backend,
        },
        Stage::ServiceReply { frontend } => TraceStage::ServiceReply {
            frontend: *frontend,
        },
        Stage::Route { prefix, next_hop } => TraceStage::Route {
            prefix: *prefix,
            next_hop: next_hop.map(|hop| route_target(hop, names)),
        },
        Stage::IngressPolicy {
            verdict,
            rule,
            logged,
        } => TraceStage::IngressPolicy {
            verdict: verdict_spec(*verdict),
            rule: rule.map(|r| r.0),
            logged: rule_ids(logged),
        },
        Stage::Action(action) => TraceStage::Action {
            action: action_name(action, names),
        },
    }
}

/// A next hop, with its port or peer named.
pub fn route_target(hop: NextHop, names: &dyn Names) -> RouteTarget {
    match hop {
        NextHop::Local(port) => RouteTarget::Port(port_name(names, port)),
        NextHop::Remote(peer) => RouteTarget::Peer(peer_name(names, peer)),
        NextHop::Host => RouteTarget::Host,
        NextHop::Node => RouteTarget::Node,
        NextHop::Blackhole => RouteTarget::Blackhole,
    }
}

/// The action in a few words: `deliver port NS/POD`, `to_host`,
/// `encap peer NAME 192.168.0.2:4789`, `encap_split ...`, `reply`, `drop REASON`.
pub fn action_name(action: &Action, names: &dyn Names) -> String {
    match action {
        Action::Deliver(port) => format!("deliver port {}", port_name(names, *port)),
        Action::ToHost => "to_host".to_owned(),
        Action::Encap(encap) => {
            format!("encap peer {} {}", peer_name(names, encap.peer), encap.dst)
        }
        Action::EncapSplit(encap, split) => {
            let how = match split {
                Split::Segment(_) => "segment".to_owned(),
                Split::Fragment(mtu) => format!("fragment {mtu}"),
            };
            format!(
                "encap_split peer {} {} {how}",
                peer_name(names, encap.peer),
                encap.dst
            )
        }
        Action::Reply => "reply".to_owned(),
        Action::Hold => "hold".to_owned(),
        Action::Drop(reason) => format!("drop {}", reason.name()),
    }
}

fn verdict(action: &Action, names: &dyn Names) -> String {
    match action {
        Action::Deliver(port) => format!("delivered to port {}", port_name(names, *port)),
        Action::ToHost => "sent to the host".to_owned(),
        Action::Encap(encap) | Action::EncapSplit(encap, _) => format!(
            "encapsulated to peer {} at {}",
            peer_name(names, encap.peer),
            encap.dst
        ),
        Action::Reply => "answered by the dataplane".to_owned(),
        Action::Hold => "held until its datagram's first fragment comes".to_owned(),
        Action::Drop(reason) => format!("dropped ({}): {}", reason.name(), reason.describe()),
    }
}

fn verdict_spec(verdict: Verdict) -> VerdictSpec {
    match verdict {
        Verdict::Allow => VerdictSpec::Allow,
        Verdict::Deny => VerdictSpec::Deny,
    }
}

fn rule_ids(ids: &[RuleId]) -> Vec<u32> {
    ids.iter().map(|r| r.0).collect()
}

fn conntrack_hit(hit: &Hit) -> ConntrackHit {
    ConntrackHit {
        direction: match hit.direction {
            Direction::Original => "original",
            Direction::Reply => "reply",
        }
        .to_owned(),
        state: flow_state_name(hit.state).to_owned(),
        tag: hit.tag,
    }
}

/// A flow state's snake_case name.
pub fn flow_state_name(state: FlowState) -> &'static str {
    match state {
        FlowState::SynSent => "syn_sent",
        FlowState::Established => "established",
        FlowState::Closing => "closing",
        FlowState::Closed => "closed",
        FlowState::UdpNew => "udp_new",
        FlowState::UdpEstablished => "udp_established",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DropReason;
    use crate::pipeline::action::Encap;

    fn names() -> impl Names {
        (
            |p: PortId| (p.0 == 0).then(|| "default/web".to_owned()),
            |p: PeerId| (p.0 == 1).then(|| "node2".to_owned()),
        )
    }

    #[test]
    fn stages_become_tagged_objects_with_names() {
        let stages = vec![
            Stage::SpoofCheck { passed: true },
            Stage::Conntrack(None),
            Stage::EgressPolicy {
                verdict: Verdict::Allow,
                rule: Some(RuleId(7)),
                logged: vec![RuleId(3)],
            },
            Stage::Route {
                prefix: Some("10.244.2.0/24".parse().expect("cidr")),
                next_hop: Some(NextHop::Remote(PeerId(1))),
            },
            Stage::Gateway,
            Stage::Action(Action::Deliver(PortId(0))),
        ];
        let reply = trace_reply(&stages, &Action::Deliver(PortId(0)), &names());
        let json = serde_json::to_value(&reply).expect("serialize");
        let expected = serde_json::json!({
            "stages": [
                {"stage": "spoof_check", "passed": true},
                {"stage": "conntrack", "hit": null},
                {"stage": "egress_policy", "verdict": "allow", "rule": 7, "logged": [3]},
                {"stage": "route", "prefix": "10.244.2.0/24", "next_hop": "peer node2"},
                {"stage": "gateway"},
                {"stage": "action", "action": "deliver port default/web"},
            ],
            "verdict": "delivered to port default/web",
        });
        assert_eq!(json, expected);
        let back: TraceReply = serde_json::from_value(json).expect("parse");
        assert_eq!(back, reply);
    }

    #[test]
    fn unknown_ids_and_drops_are_named() {
        let encap = Encap {
            peer: PeerId(9),
            dst: "192.168.0.2:4789".parse().expect("addr"),
            flow_hash: 0,
        };
        assert_eq!(
            action_name(&Action::Encap(encap), &names()),
            "encap peer #9 192.168.0.2:4789"
        );
        assert_eq!(
            action_name(&Action::Drop(DropReason::PolicyEgress), &names()),
            "drop policy_egress"
        );
        assert!(
            verdict(&Action::Drop(DropReason::NoRoute), &names()).starts_with("dropped (no_route)")
        );
    }
}

//! Why a packet from one pod to a pod or address is allowed or denied.
//!
//! Explain does not evaluate policies itself: it compiles the endpoints'
//! rule sets exactly as they are pushed to the dataplane, converts them with
//! the dataplane's own checks ([`tweed_dataplane::api::validate::rule_set`])
//! and classifies with the dataplane's definition
//! ([`tweed_dataplane::table::acl::classify_linear`]), then maps the deciding
//! rule id back to its policy rule. So it cannot disagree with the dataplane.

use std::fmt;
use std::net::IpAddr;

use tweed_dataplane::api::validate;
use tweed_dataplane::table::acl::{Verdict, classify_linear, has_ports};

use super::compile::{CompiledEndpoint, Compiler, RuleOrigin};
use super::model::{Direction, PolicyKey, PolicyKind, World};

/// Where the packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A pod, as an index of `World::pods`.
    Pod(usize),
    /// An address; one that is some pod's address is treated as that pod.
    Ip(IpAddr),
}

/// The verdict on a packet and the steps that reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Whether every step allowed it.
    pub allowed: bool,
    /// The source's egress, then (when the target is a pod) the target's ingress.
    pub steps: Vec<ExplainStep>,
}

/// One endpoint's decision in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainStep {
    /// `NAMESPACE/NAME`.
    pub endpoint: String,
    /// Egress of the source or ingress of the destination.
    pub direction: Direction,
    /// The remote address classified (`None` when the endpoint has no address
    /// of the packet's family).
    pub remote: Option<IpAddr>,
    /// Whether this step lets the packet through.
    pub allowed: bool,
    /// What decided.
    pub decision: Decision,
    /// Log rules that matched before the decision, in order.
    pub logged: Vec<RuleOrigin>,
}

/// What decided one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule decided.
    Rule(RuleOrigin),
    /// No NetworkPolicy selects the pod in this direction, and no ordered
    /// rule decided: open.
    NotIsolated,
    /// NetworkPolicies select the pod in this direction and no rule allowed: default deny.
    Isolated {
        /// The NetworkPolicies that select it.
        by: Vec<PolicyKey>,
    },
    /// The endpoint has no address of the packet's family: no such packet exists.
    NoAddress,
    /// The compiled rule set was refused by the dataplane's checks, or named a
    /// rule id without an origin: a bug in tweed; the dataplane would refuse it too.
    Inconsistent(String),
}

/// Explains a packet of `protocol` to destination `port` from
/// `world.pods[from]` to `to`; the port is ignored (0) for protocols without
/// ports, as in the dataplane.
///
/// # Panics
///
/// If `from` (or a [`Target::Pod`]) is not an index of `world.pods`.
pub fn explain(world: &World, from: usize, to: Target, protocol: u8, port: u16) -> Explanation {
    Compiler::new(world).explain(from, to, protocol, port)
}

impl Compiler<'_> {
    /// [`explain`] with this compiler's indexes and caches.
    ///
    /// # Panics
    ///
    /// If `from` (or a [`Target::Pod`]) is not an index of the world's pods.
    pub fn explain(&self, from: usize, to: Target, protocol: u8, port: u16) -> Explanation {
        let world = self.world();
        let port = if has_ports(protocol) { port } else { 0 };
        let source = &world.pods[from];
        // The destination pod, if any, and the destination address.
        let (dest, dst_ip) = match to {
            Target::Ip(ip) => {
                let pod = world.pods.iter().position(|p| p.addr_like(ip) == Some(ip));
                (pod, Some(ip))
            }
            Target::Pod(j) => {
                let dest = &world.pods[j];
                let v4 = source.ipv4.and(dest.ipv4).map(IpAddr::V4);
                let v6 = source.ipv6.and(dest.ipv6).map(IpAddr::V6);
                (Some(j), v4.or(v6))
            }
        };
        let src_ip = dst_ip.and_then(|ip| source.addr_like(ip));

        let mut steps = vec![step(
            &self.endpoint(from),
            source.full_name(),
            Direction::Egress,
            src_ip.and(dst_ip),
            protocol,
            port,
        )];
        if let Some(j) = dest {
            steps.push(step(
                &self.endpoint(j),
                world.pods[j].full_name(),
                Direction::Ingress,
                dst_ip.and(src_ip),
                protocol,
                port,
            ));
        }
        Explanation {
            allowed: steps.iter().all(|s| s.allowed),
            steps,
        }
    }
}

fn step(
    compiled: &CompiledEndpoint,
    endpoint: String,
    direction: Direction,
    remote: Option<IpAddr>,
    protocol: u8,
    port: u16,
) -> ExplainStep {
    let refused = |decision: Decision| ExplainStep {
        endpoint: endpoint.clone(),
        direction,
        remote,
        allowed: false,
        decision,
        logged: Vec::new(),
    };
    let Some(ip) = remote else {
        return refused(Decision::NoAddress);
    };
    let set = match validate::rule_set(&direction.to_string(), compiled.rule_set(direction)) {
        Ok(set) => set,
        Err(e) => return refused(Decision::Inconsistent(e.to_string())),
    };
    let outcome = classify_linear(&set, ip, protocol, port);
    let origin = |id: u32| compiled.origins.get(&(direction, id)).cloned();
    let Some(logged) = outcome.logged.iter().map(|id| origin(id.0)).collect() else {
        return refused(Decision::Inconsistent(format!(
            "a logged {direction} rule has no origin"
        )));
    };
    let decision = match outcome.rule {
        Some(id) => match origin(id.0) {
            Some(origin) => Decision::Rule(origin),
            None => {
                return refused(Decision::Inconsistent(format!(
                    "{direction} rule {} has no origin",
                    id.0
                )));
            }
        },
        None if outcome.verdict == Verdict::Allow => Decision::NotIsolated,
        None => Decision::Isolated {
            by: compiled.isolated_by(direction).to_vec(),
        },
    };
    ExplainStep {
        endpoint,
        direction,
        remote,
        allowed: outcome.verdict == Verdict::Allow,
        decision,
        logged,
    }
}

impl fmt::Display for Explanation {
    /// One line per step, then the verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        write!(
            f,
            "verdict: {}",
            if self.allowed { "allowed" } else { "denied" }
        )
    }
}

impl fmt::Display for ExplainStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (towards, verdict) = (
            match self.direction {
                Direction::Egress => "to",
                Direction::Ingress => "from",
            },
            if self.allowed { "allowed" } else { "denied" },
        );
        write!(f, "{} {}", self.endpoint, self.direction)?;
        if let Some(ip) = self.remote {
            write!(f, " {towards} {ip}")?;
        }
        write!(f, ": {verdict}")?;
        match &self.decision {
            Decision::Rule(origin) => {
                write!(f, " by {origin}")?;
                let ordered = origin
                    .policy
                    .as_ref()
                    .is_some_and(|k| k.kind != PolicyKind::NetworkPolicy);
                if ordered {
                    write!(f, " ({})", origin.action)?;
                }
            }
            Decision::NotIsolated => write!(
                f,
                ": no NetworkPolicy selects it for {}, so it is open",
                self.direction
            )?,
            Decision::Isolated { by } => {
                let names: Vec<String> = by.iter().map(PolicyKey::to_string).collect();
                write!(
                    f,
                    ": selected by {} and no rule allows it (default deny)",
                    names.join(", ")
                )?;
            }
            Decision::NoAddress => write!(
                f,
                ": no address of the packet's family on one side, so no such packet exists"
            )?,
            Decision::Inconsistent(why) => write!(f, ": tweed bug: {why}")?,
        }
        if !self.logged.is_empty() {
            let names: Vec<String> = self.logged.iter().map(RuleOrigin::to_string).collect();
            write!(f, "; logged by {}", names.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "explain_ordered_tests.rs"]
mod ordered_tests;
#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;

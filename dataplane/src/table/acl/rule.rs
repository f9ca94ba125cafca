//! The policy model: rules, rule sets and the outcome of classifying a packet.
//!
//! These are plain values; [`super::classify_linear`] defines what they mean and
//! [`super::Classifier`] is the compiled form.

use ipnet::IpNet;

pub use crate::wire::transport::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// Whether `protocol` carries destination ports a rule may match on.
pub fn has_ports(protocol: u8) -> bool {
    matches!(protocol, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
}

/// The caller's name for a rule, reported back in an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u32);

/// The final decision for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the packet through.
    Allow,
    /// Drop the packet.
    Deny,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Decide [`Verdict::Allow`].
    Allow,
    /// Decide [`Verdict::Deny`].
    Deny,
    /// Record the rule in [`Outcome::logged`] and keep evaluating.
    Log,
    /// Skip the rest of this tier; continue with the next higher tier.
    Pass,
}

/// An inclusive range of destination ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port of the range.
    pub first: u16,
    /// The last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// The range holding just `port`.
    pub fn single(port: u16) -> Self {
        Self {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// One policy rule; see the module documentation of [`super`] for its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Reported in [`Outcome`] when this rule decides or logs.
    pub id: RuleId,
    /// Rules are evaluated tier by tier, ascending; within a tier in the order given.
    pub tier: u8,
    /// What the rule does when it matches.
    pub action: RuleAction,
    /// Empty = any address; otherwise the remote address must be in one of these...
    pub remote: Vec<IpNet>,
    /// ...and in none of these.
    pub remote_except: Vec<IpNet>,
    /// IP protocol number; `None` = any.
    pub protocol: Option<u8>,
    /// Destination port range; `None` = any. Only with TCP, UDP or SCTP.
    pub ports: Option<PortRange>,
}

impl Rule {
    /// A rule matching every packet.
    pub fn any(id: u32, tier: u8, action: RuleAction) -> Self {
        Self {
            id: RuleId(id),
            tier,
            action,
            remote: Vec::new(),
            remote_except: Vec::new(),
            protocol: None,
            ports: None,
        }
    }
}

/// An ordered list of rules and the verdict when none decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// The rules, grouped into tiers by [`Rule::tier`].
    pub rules: Vec<Rule>,
    /// The verdict when no rule decides.
    pub default: Verdict,
}

/// The result of classifying one packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// The decision.
    pub verdict: Verdict,
    /// The deciding rule; `None` = the default verdict.
    pub rule: Option<RuleId>,
    /// Log rules that matched before the decision, in evaluation order.
    pub logged: Box<[RuleId]>,
}

impl Outcome {
    /// The outcome when no rule matched.
    pub fn default_verdict(verdict: Verdict) -> Self {
        Self {
            verdict,
            rule: None,
            logged: Box::new([]),
        }
    }
}

//! What a worker counts while it decides: plain integers owned by one thread,
//! summed across workers when read (no shared cache lines on the hot path).

use std::collections::HashMap;
use std::sync::Arc;

use super::action::Action;
use super::drop::DropReason;
use crate::table::acl::RuleId;
use crate::table::conntrack::FlowKey;
use crate::table::nexthop::PortId;

/// At most this many flow-log records wait in one worker's counters; beyond
/// that records are counted as lost rather than stored.
pub const FLOW_LOG_CAPACITY: usize = 4096;

/// The rule a denial is counted under: its endpoint, direction, number and
/// name. The name (the policy and rule it came from) is part of the key, so
/// a later rule set that reuses the number for another rule starts its own
/// count instead of inheriting the old rule's denials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeniedBy {
    /// The endpoint's port.
    pub port: PortId,
    /// Its ingress policy (else its egress policy).
    pub ingress: bool,
    /// The denying rule; `None`: the rule set's default.
    pub rule: Option<RuleId>,
    /// The rule's name, when it has one.
    pub name: Option<Arc<str>>,
}

impl DeniedBy {
    /// An unnamed rule's (or the default's) key, as tests look it up.
    pub fn unnamed(port: PortId, ingress: bool, rule: Option<RuleId>) -> Self {
        Self {
            port,
            ingress,
            rule,
            name: None,
        }
    }
}

/// One worker's counters.
#[derive(Debug, Clone)]
pub struct Counters {
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Frames delivered to a local pod.
    pub delivered: u64,
    /// Frames sent to the host port.
    pub to_host: u64,
    /// Frames encapsulated to a peer (before any splitting).
    pub encapsulated: u64,
    /// Answers sent (ARP, ND, echo, ICMP errors).
    pub replied: u64,
    /// Later fragments held until their first fragment came (each time).
    pub held: u64,
    /// Packets that matched an existing flow.
    pub conntrack_hits: u64,
    /// Flows created.
    pub conntrack_created: u64,
    /// Flows that could not be recorded because their slot was busy.
    pub conntrack_busy: u64,
    /// Packets denied, by the rule that denied them.
    pub denied_by_rule: HashMap<DeniedBy, u64>,
    /// Log-rule records waiting to be written by the worker.
    pub flow_logs: Vec<FlowLog>,
    /// Log-rule records dropped because `flow_logs` was full.
    pub flow_logs_lost: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            drops: [0; DropReason::COUNT],
            delivered: 0,
            to_host: 0,
            encapsulated: 0,
            replied: 0,
            held: 0,
            conntrack_hits: 0,
            conntrack_created: 0,
            conntrack_busy: 0,
            denied_by_rule: HashMap::new(),
            flow_logs: Vec::new(),
            flow_logs_lost: 0,
        }
    }
}

/// A record for a Log rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLog {
    /// When it happened (the pipeline's `now_ms`).
    pub at_ms: u64,
    /// The packet's flow.
    pub flow: FlowKey,
    /// The endpoint whose policy logged it.
    pub endpoint: String,
    /// Whether the endpoint's ingress (true) or egress policy logged it.
    pub ingress: bool,
    /// The Log rule.
    pub rule: RuleId,
    /// The Log rule's name, if it has one.
    pub rule_name: Option<std::sync::Arc<str>>,
    /// What the policy then decided.
    pub allowed: bool,
}

impl Counters {
    /// Counts one decision.
    #[inline]
    pub fn count(&mut self, action: &Action) {
        match action {
            Action::Deliver(_) => self.delivered += 1,
            Action::ToHost => self.to_host += 1,
            Action::Encap(_) | Action::EncapSplit(..) => self.encapsulated += 1,
            Action::Reply => self.replied += 1,
            Action::Hold => self.held += 1,
            Action::Drop(reason) => self.drops[*reason as usize] += 1,
        }
    }

    /// Counts an event that also produced an answer (TTL exceeded, no route,
    /// too big): the reason is counted even though the action is a reply.
    #[inline]
    pub fn note(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops of one reason.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Queues a flow-log record, or counts it lost when the queue is full.
    pub fn log(&mut self, record: FlowLog) {
        if self.flow_logs.len() < FLOW_LOG_CAPACITY {
            self.flow_logs.push(record);
        } else {
            self.flow_logs_lost += 1;
        }
    }

    /// Adds another worker's counters into these (flow logs are not merged).
    pub fn merge(&mut self, other: &Counters) {
        for (mine, theirs) in self.drops.iter_mut().zip(other.drops.iter()) {
            *mine += theirs;
        }
        self.delivered += other.delivered;
        self.to_host += other.to_host;
        self.encapsulated += other.encapsulated;
        self.replied += other.replied;
        self.held += other.held;
        self.conntrack_hits += other.conntrack_hits;
        self.conntrack_created += other.conntrack_created;
        self.conntrack_busy += other.conntrack_busy;
        for (rule, n) in &other.denied_by_rule {
            *self.denied_by_rule.entry(rule.clone()).or_default() += n;
        }
        self.flow_logs_lost += other.flow_logs_lost;
    }
}

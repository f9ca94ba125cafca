//! tweed's ordered policies, `tweed.dev/v1` `Policy` and `GlobalPolicy`
//! (after Calico's and AdminNetworkPolicy's): rules with an action, walked in
//! `order` before every Kubernetes NetworkPolicy.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::peer::{Peer, Port};
use crate::policy::selector::LabelSelector;
use crate::policy::serde_util::null_default;

/// A `Policy` (one namespace) or `GlobalPolicy` (cluster-wide).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedPolicy {
    /// Which kind, and for a `Policy` its namespace.
    pub scope: Scope,
    /// `metadata.name`.
    pub name: String,
    /// `spec`.
    pub spec: OrderedSpec,
}

/// Where an ordered policy applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `kind: Policy`: pods of this namespace matching `spec.podSelector`.
    Namespace(String),
    /// `kind: GlobalPolicy`: pods matching `spec.podSelector` in the namespaces
    /// matching `spec.namespaceSelector` (absent = every namespace).
    Global,
}

/// The `spec` of an ordered policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderedSpec {
    /// Lower first; absent = after every policy that has one. Ties go by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// The namespaces a `GlobalPolicy` applies in; absent = all. Not allowed in a `Policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The pods it applies to; `{}` or absent = all (of its namespaces).
    #[serde(default, deserialize_with = "null_default")]
    pub pod_selector: LabelSelector,
    /// Rules for traffic to the pods, walked in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<OrderedIngressRule>,
    /// Rules for traffic from the pods, walked in order.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<OrderedEgressRule>,
}

/// What a matching ordered rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrderedAction {
    /// Allow, and stop.
    Allow,
    /// Deny, and stop.
    Deny,
    /// Record the match and go on with the next rule.
    Log,
    /// Skip the remaining ordered rules: the Kubernetes policies decide.
    Pass,
}

impl fmt::Display for OrderedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrderedAction::Allow => "Allow",
            OrderedAction::Deny => "Deny",
            OrderedAction::Log => "Log",
            OrderedAction::Pass => "Pass",
        })
    }
}

/// An ingress rule of an ordered policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderedIngressRule {
    /// What a match does.
    pub action: OrderedAction,
    /// Sources; empty = every source.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from: Vec<Peer>,
    /// Destination ports; empty = all.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
}

/// An egress rule of an ordered policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderedEgressRule {
    /// What a match does.
    pub action: OrderedAction,
    /// Destinations; empty = every destination.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<Peer>,
    /// Destination ports; empty = all.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
}

impl OrderedPolicy {
    /// The sort key of [`OrderedSpec::order`]: absent sorts last.
    pub fn order(&self) -> f64 {
        self.spec.order.unwrap_or(f64::INFINITY)
    }
}

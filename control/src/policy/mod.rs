//! Network policy, the pure core: manifests in, per-endpoint rule sets out.
//! No I/O, no clock, no globals.
//!
//! - [`parse`]: YAML or JSON manifests to validated [`Policy`] values;
//!   [`PolicyError`] names the document, object and field and says what to fix.
//! - [`model`]: the [`World`] (every pod, namespace and policy of the cluster)
//!   and the policy kinds.
//! - [`validate`]: the checks of each field, and the warnings for what
//!   parses but may not do what the author meant (named ports, host bits).
//! - [`selector`]: label selectors and [`Labels`].
//! - [`compile`]: a [`Compiler`] turns the world into each endpoint's ingress
//!   and egress [`RuleSetSpec`](tweed_api::dataplane::proto::RuleSetSpec)
//!   for `policy_set`, with the [`RuleOrigin`] of every rule id.
//! - [`explain`](mod@explain): why a packet passes or not, computed by
//!   classifying the compiled sets with the dataplane's own definition.
//!
//! # Kubernetes NetworkPolicy
//!
//! `networking.k8s.io/v1` semantics as the Kubernetes documentation gives
//! them. A pod that no NetworkPolicy selects in a direction is open in that
//! direction. Once one selects it (its `podSelector`, in the pod's namespace,
//! with that policy type), only what the rules of some selecting policy allow
//! passes (their union): default deny. Without `policyTypes` a policy is
//! Ingress, plus Egress when `egress` has rules.
//!
//! A peer is an `ipBlock` (its `cidr` minus every `except`), or selectors:
//! `podSelector` alone = pods of the policy's namespace, `namespaceSelector`
//! alone = every pod of the matching namespaces, both in one peer = the
//! matching pods of the matching namespaces (two peers would be the union).
//! Absent or empty `from`/`to` = every address; absent or empty `ports` =
//! every protocol and port; a port entry without `port` = every port of its
//! protocol (TCP by default); `endPort` makes a range. Every namespace has the
//! label `kubernetes.io/metadata.name: NAME`.
//!
//! **Named ports** (`port: http`) are resolved by Kubernetes implementations
//! against the pod's container ports, which tweed does not know. Such an entry
//! matches no traffic: it fails closed (the pod stays isolated, the entry
//! allows nothing), and [`validate::warnings`] names the field. Use port numbers.
//!
//! # Ordered policies
//!
//! `apiVersion: tweed.dev/v1`, `kind: Policy` (namespaced: pods of its
//! namespace matching `spec.podSelector`) or `kind: GlobalPolicy` (pods
//! matching `spec.podSelector` in the namespaces matching
//! `spec.namespaceSelector`, absent = all). `spec.order` sorts them, lower
//! first, absent last, ties by [`PolicyKey`]. Their rules
//! (`{action: Allow|Deny|Log|Pass, from|to: [PEER], ports: [PORT]}`, the peer
//! and port shapes of NetworkPolicy; in a GlobalPolicy a podSelector-only peer
//! means pods of every namespace) are walked before every NetworkPolicy, as
//! AdminNetworkPolicy's are: the first matching Allow or Deny decides, Log
//! records the match and the walk goes on, Pass hands the decision to the
//! NetworkPolicies, and traffic no ordered rule matches falls through to them
//! too. Ordered policies never isolate a pod: with no NetworkPolicy selecting
//! it, what no ordered rule decides is allowed.
//!
//! # Compiled form
//!
//! Tier 0: one Allow rule for the node's addresses (traffic between a pod and
//! its own node is always allowed, as Kubernetes documents). Tier 1: ordered
//! rules, policy by policy in (order, key) order, rule by rule. Tier 2:
//! NetworkPolicy rules, all Allow. Default: Deny when a NetworkPolicy selects
//! the pod in that direction, else Allow. Rule ids are unique per rule set,
//! from 1.
//!
//! A policy rule becomes one dataplane rule per (remote group, port entry): one
//! group holds the addresses (/32, /128) of every pod its selector peers
//! select, and each ipBlock is a group of its own (cidr, with its excepts). A
//! peer set that selects no address makes no rule at all (an empty remote
//! would mean every address); a rule of named ports only makes none either.

pub mod compile;
pub mod error;
pub mod explain;
pub mod model;
pub mod parse;
pub mod selector;
mod serde_util;
pub mod validate;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod random_tests;

pub use compile::{CompiledEndpoint, Compiler, RuleOrigin};
pub use error::PolicyError;
pub use explain::{Decision, ExplainStep, Explanation, Target, explain};
pub use model::{
    Cidr, Direction, EgressRule, IngressRule, IpBlock, Labels, NAMESPACE_NAME_LABEL, NetworkPolicy,
    NetworkPolicySpec, OrderedAction, OrderedEgressRule, OrderedIngressRule, OrderedPolicy,
    OrderedSpec, Peer, PodIdentity, Policy, PolicyKey, PolicyKind, PolicyType, Port, PortValue,
    Protocol, Scope, World,
};
pub use parse::parse_documents;
pub use selector::{LabelSelector, Operator, Requirement};

/// Checks labels as Kubernetes does (keys `[PREFIX/]NAME`, values empty or
/// a label name) and label keys to remove; the message names `field` and the key.
pub fn check_labels<'a>(
    field: &str,
    set: impl IntoIterator<Item = (&'a String, &'a String)>,
    remove: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    let problem = |e: error::Invalid| format!("{}: {}", e.field, e.problem);
    for (key, value) in set {
        validate::label_key(&format!("{field}.labels"), key).map_err(problem)?;
        validate::label_value(&format!("{field}.labels.{key}"), value).map_err(problem)?;
    }
    for key in remove {
        validate::label_key(&format!("{field}.remove"), key).map_err(problem)?;
    }
    Ok(())
}

/// Checks a namespace name (a DNS-1123 label); the message names `field`.
pub fn check_namespace(field: &str, name: &str) -> Result<(), String> {
    validate::namespace(field, name).map_err(|e| format!("{}: {}", e.field, e.problem))
}

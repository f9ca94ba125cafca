//! `networking.k8s.io/v1` NetworkPolicy, the fields tweed reads.

use serde::{Deserialize, Serialize};

use super::peer::{Peer, Port};
use crate::policy::selector::LabelSelector;
use crate::policy::serde_util::null_default;

/// A Kubernetes NetworkPolicy, with its namespace resolved (absent = `default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec`.
    pub spec: NetworkPolicySpec,
}

/// `NetworkPolicySpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// The pods of the policy's namespace it applies to; `{}` = all of them.
    #[serde(default, deserialize_with = "null_default")]
    pub pod_selector: LabelSelector,
    /// Empty = defaulted: Ingress, plus Egress when `egress` is non-empty.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub policy_types: Vec<PolicyType>,
    /// Ingress rules; their union is allowed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<IngressRule>,
    /// Egress rules; their union is allowed.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<EgressRule>,
}

/// A direction a NetworkPolicy isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyType {
    /// Traffic to the selected pods.
    Ingress,
    /// Traffic from the selected pods.
    Egress,
}

/// `NetworkPolicyIngressRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    /// Sources; empty = every source.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from: Vec<Peer>,
    /// Destination ports on the pod; empty = all.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
}

/// `NetworkPolicyEgressRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressRule {
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

impl NetworkPolicy {
    /// Whether the policy isolates its pods for ingress, with Kubernetes' defaulting.
    pub fn isolates_ingress(&self) -> bool {
        self.spec.policy_types.is_empty() || self.spec.policy_types.contains(&PolicyType::Ingress)
    }

    /// Whether the policy isolates its pods for egress, with Kubernetes' defaulting
    /// (when `policyTypes` is absent: only if `egress` has rules).
    pub fn isolates_egress(&self) -> bool {
        if self.spec.policy_types.is_empty() {
            !self.spec.egress.is_empty()
        } else {
            self.spec.policy_types.contains(&PolicyType::Egress)
        }
    }
}

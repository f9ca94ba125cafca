//! The policy and label ops' wire types. Pure serde types.
//!
//! Policies travel as the text a user wrote (YAML or JSON, one or many
//! documents): the daemon parses and validates them in one place (its
//! `policy::parse_documents`), so every client gets the same errors. The
//! names of a policy ([`PolicyKind`], [`PolicyKey`]) are defined here, and
//! the daemon's policy model uses them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Which kind a policy is; on the wire and in store keys by its
/// [`name`](PolicyKind::name), kubectl's resource name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// A Kubernetes NetworkPolicy.
    NetworkPolicy,
    /// A namespaced tweed `Policy`.
    Policy,
    /// A cluster-wide tweed `GlobalPolicy`.
    GlobalPolicy,
}

impl PolicyKind {
    /// The kind in lower case (`networkpolicy`, `policy`, `globalpolicy`).
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "networkpolicy",
            PolicyKind::Policy => "policy",
            PolicyKind::GlobalPolicy => "globalpolicy",
        }
    }

    /// The manifest's `kind`.
    pub fn manifest_kind(self) -> &'static str {
        match self {
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::Policy => "Policy",
            PolicyKind::GlobalPolicy => "GlobalPolicy",
        }
    }
}

/// Names a policy uniquely in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PolicyKey {
    /// The kind.
    pub kind: PolicyKind,
    /// The namespace; `None` for a `GlobalPolicy`.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.name();
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// `policy_apply` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyApply {
    /// NetworkPolicy, Policy or GlobalPolicy documents, YAML or JSON.
    pub text: String,
}

/// `policy_apply` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedReply {
    /// The policies created or replaced, in the order of the text.
    pub applied: Vec<PolicyKey>,
    /// What the daemon accepted but cannot honour fully (named ports).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `policy_delete` arguments: one policy by key.
pub type PolicyDelete = PolicyKey;

/// One policy as `policy_list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInfo {
    /// Which policy.
    pub key: PolicyKey,
    /// Its order (ordered policies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// The directions it governs: `ingress`, `egress`.
    pub directions: Vec<String>,
    /// How many pods of the cluster it applies to.
    pub selected_pods: usize,
    /// The policy as stored.
    pub policy: serde_json::Value,
}

/// `policy_list` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesReply {
    /// Every policy, by key.
    pub policies: Vec<PolicyInfo>,
}

/// `policy_explain` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyExplain {
    /// The source pod, `NAMESPACE/NAME`.
    pub from: String,
    /// The destination: a pod (`NAMESPACE/NAME`) or an IP address.
    pub to: String,
    /// The IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, ...).
    pub protocol: u8,
    /// The destination port (0 for portless protocols).
    #[serde(default)]
    pub port: u16,
}

/// One endpoint's verdict in an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainStepInfo {
    /// The pod whose policy decided, `NAMESPACE/NAME`.
    pub endpoint: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// Whether this step lets the packet through.
    pub allowed: bool,
    /// The policy that decided, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyKey>,
    /// The deciding rule, e.g. `ingress[0]`, if a rule decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in a sentence.
    pub reason: String,
}

/// `policy_explain` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainReply {
    /// The verdict: every step allowed it.
    pub allowed: bool,
    /// The source's egress, then the destination pod's ingress.
    pub steps: Vec<ExplainStepInfo>,
}

/// `label_pod` arguments, kubectl's `label` semantics: set these, remove those.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelPod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Labels to set (added or overwritten).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Label keys to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `label_namespace` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelNamespace {
    /// The namespace.
    pub namespace: String,
    /// Labels to set (added or overwritten).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Label keys to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `label_pod` and `label_namespace` answer: the labels now in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsReply {
    /// Every label of the pod or namespace after the change.
    pub labels: BTreeMap<String, String>,
}

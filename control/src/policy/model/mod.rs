//! What policy is computed from: the cluster's pods and namespaces, and the
//! policies themselves (Kubernetes NetworkPolicy and tweed's ordered kinds).

pub mod k8s;
pub mod ordered;
pub mod peer;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

pub use k8s::{EgressRule, IngressRule, NetworkPolicy, NetworkPolicySpec, PolicyType};
pub use ordered::{
    OrderedAction, OrderedEgressRule, OrderedIngressRule, OrderedPolicy, OrderedSpec, Scope,
};
pub use peer::{Cidr, IpBlock, Peer, Port, PortValue, Protocol};

pub use super::selector::Labels;

/// The label every namespace carries, whose value is the namespace's name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A pod anywhere in the cluster, as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIdentity {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its IPv4 address, if it has one.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address, if it has one.
    pub ipv6: Option<Ipv6Addr>,
}

impl PodIdentity {
    /// Its address of the family of `like`, if it has one.
    pub fn addr_like(&self, like: IpAddr) -> Option<IpAddr> {
        match like {
            IpAddr::V4(_) => self.ipv4.map(IpAddr::V4),
            IpAddr::V6(_) => self.ipv6.map(IpAddr::V6),
        }
    }

    /// `NAMESPACE/NAME`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The cluster-wide inputs of policy compilation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// Every pod, on every node.
    pub pods: Vec<PodIdentity>,
    /// Every namespace's labels ([`NAMESPACE_NAME_LABEL`] is implied; a
    /// namespace with pods but no entry has just that label).
    pub namespaces: BTreeMap<String, Labels>,
    /// Every policy.
    pub policies: Vec<Policy>,
    /// The addresses of the node whose pods are compiled: always allowed.
    pub node_addrs: Vec<IpAddr>,
}

/// The direction of traffic relative to a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Arriving at the pod.
    Ingress,
    /// Leaving the pod.
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// A policy of any kind. (De)serializes as its manifest (`apiVersion`, `kind`,
/// `metadata`, `spec`), and deserializing validates it as [`super::parse_documents`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// `networking.k8s.io/v1` `NetworkPolicy`.
    Kubernetes(NetworkPolicy),
    /// `tweed.dev/v1` `Policy` or `GlobalPolicy`.
    Ordered(OrderedPolicy),
}

pub use tweed_api::policy::{PolicyKey, PolicyKind};

/// One rule of a policy in one direction, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub struct RuleRef<'a> {
    /// `from` (ingress) or `to` (egress); empty = every address.
    pub peers: &'a [Peer],
    /// `ports`; empty = all.
    pub ports: &'a [Port],
    /// Always [`OrderedAction::Allow`] for a NetworkPolicy.
    pub action: OrderedAction,
}

impl Policy {
    /// The policy's unique name.
    pub fn key(&self) -> PolicyKey {
        match self {
            Policy::Kubernetes(p) => PolicyKey {
                kind: PolicyKind::NetworkPolicy,
                namespace: Some(p.namespace.clone()),
                name: p.name.clone(),
            },
            Policy::Ordered(p) => match &p.scope {
                Scope::Namespace(ns) => PolicyKey {
                    kind: PolicyKind::Policy,
                    namespace: Some(ns.clone()),
                    name: p.name.clone(),
                },
                Scope::Global => PolicyKey {
                    kind: PolicyKind::GlobalPolicy,
                    namespace: None,
                    name: p.name.clone(),
                },
            },
        }
    }

    /// An ordered policy's `order` (absent: last); `None` for a NetworkPolicy.
    pub fn order(&self) -> Option<f64> {
        match self {
            Policy::Kubernetes(_) => None,
            Policy::Ordered(p) => Some(p.order()),
        }
    }

    /// The directions it governs: a NetworkPolicy's policy types (with
    /// Kubernetes' defaulting), an ordered policy's non-empty rule lists.
    pub fn directions(&self) -> Vec<Direction> {
        let (ingress, egress) = match self {
            Policy::Kubernetes(p) => (p.isolates_ingress(), p.isolates_egress()),
            Policy::Ordered(p) => (!p.spec.ingress.is_empty(), !p.spec.egress.is_empty()),
        };
        [(ingress, Direction::Ingress), (egress, Direction::Egress)]
            .into_iter()
            .filter_map(|(on, d)| on.then_some(d))
            .collect()
    }

    /// The policy's rules in `direction`, in order.
    pub fn rules(&self, direction: Direction) -> Vec<RuleRef<'_>> {
        let allow = OrderedAction::Allow;
        match (self, direction) {
            (Policy::Kubernetes(p), Direction::Ingress) => p
                .spec
                .ingress
                .iter()
                .map(|r| RuleRef {
                    peers: &r.from,
                    ports: &r.ports,
                    action: allow,
                })
                .collect(),
            (Policy::Kubernetes(p), Direction::Egress) => p
                .spec
                .egress
                .iter()
                .map(|r| RuleRef {
                    peers: &r.to,
                    ports: &r.ports,
                    action: allow,
                })
                .collect(),
            (Policy::Ordered(p), Direction::Ingress) => p
                .spec
                .ingress
                .iter()
                .map(|r| RuleRef {
                    peers: &r.from,
                    ports: &r.ports,
                    action: r.action,
                })
                .collect(),
            (Policy::Ordered(p), Direction::Egress) => p
                .spec
                .egress
                .iter()
                .map(|r| RuleRef {
                    peers: &r.to,
                    ports: &r.ports,
                    action: r.action,
                })
                .collect(),
        }
    }
}

//! From the world to per-endpoint rule sets: the tiers the dataplane runs.
//!
//! A [`Compiler`] is built once per [`World`]: it indexes pods and policies by
//! namespace, ranks the ordered policies, and resolves each policy rule's
//! peers to address groups the first time an endpoint needs them (cached, so
//! compiling every endpoint resolves each rule once). See the [module
//! documentation](super) for the tiers and what each rule becomes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use ipnet::IpNet;
use tweed_api::dataplane::proto::{
    PortRangeSpec, RuleActionSpec, RuleSetSpec, RuleSpec, VerdictSpec,
};

mod resolve;

use resolve::{Group, Resolved};

use super::model::{
    Direction, Labels, NAMESPACE_NAME_LABEL, OrderedAction, PodIdentity, Policy, PolicyKey,
    RuleRef, Scope, World,
};

/// The tier of the rule that always allows the pod's node.
pub const TIER_NODE: u8 = 0;
/// The tier of ordered policies' rules.
pub const TIER_ORDERED: u8 = 1;
/// The tier of NetworkPolicy rules.
pub const TIER_KUBERNETES: u8 = 2;

/// The rule sets of one endpoint, and where each rule came from.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledEndpoint {
    /// For traffic arriving at the pod (remote = source).
    pub ingress: RuleSetSpec,
    /// For traffic leaving the pod (remote = destination).
    pub egress: RuleSetSpec,
    /// The origin of every rule id of both sets.
    pub origins: BTreeMap<(Direction, u32), RuleOrigin>,
    /// The NetworkPolicies that isolate the pod for ingress (default deny when non-empty).
    pub ingress_isolated_by: Vec<PolicyKey>,
    /// The NetworkPolicies that isolate the pod for egress.
    pub egress_isolated_by: Vec<PolicyKey>,
}

impl CompiledEndpoint {
    /// The rule set of `direction`.
    pub fn rule_set(&self, direction: Direction) -> &RuleSetSpec {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// The NetworkPolicies that isolate the pod in `direction`.
    pub fn isolated_by(&self, direction: Direction) -> &[PolicyKey] {
        match direction {
            Direction::Ingress => &self.ingress_isolated_by,
            Direction::Egress => &self.egress_isolated_by,
        }
    }
}

/// Which policy rule a compiled rule came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleOrigin {
    /// The policy; `None` = the built-in rule for the node's addresses.
    pub policy: Option<PolicyKey>,
    /// The direction of the rule list.
    pub direction: Direction,
    /// The index in the policy's `ingress` or `egress` list.
    pub rule: Option<usize>,
    /// What the rule does ([`OrderedAction::Allow`] for NetworkPolicy and node rules).
    pub action: OrderedAction,
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.policy, self.rule) {
            (Some(key), Some(i)) => write!(f, "{key} {}[{i}]", self.direction),
            (Some(key), None) => write!(f, "{key} {}", self.direction),
            (None, _) => f.write_str("the node rule (the pod's own node is always allowed)"),
        }
    }
}

/// A namespace as matching sees it.
#[derive(Debug)]
struct Namespace {
    /// Its labels, with [`NAMESPACE_NAME_LABEL`].
    labels: Labels,
    /// Its pods, as indexes in `World::pods`.
    pods: Vec<usize>,
    /// The GlobalPolicies whose namespaceSelector matches it.
    globals: Vec<usize>,
}

/// Compiles the endpoints of one [`World`]; see the module documentation.
#[derive(Debug)]
pub struct Compiler<'w> {
    world: &'w World,
    namespaces: HashMap<&'w str, Namespace>,
    /// NetworkPolicies by namespace.
    kubernetes: HashMap<&'w str, Vec<usize>>,
    /// Namespaced ordered policies by namespace.
    ordered: HashMap<&'w str, Vec<usize>>,
    /// Per policy: its position in (order, key) among the ordered policies.
    rank: Vec<usize>,
    /// Per policy: its key.
    keys: Vec<PolicyKey>,
    /// Per policy: its ingress and egress rules.
    rules: Vec<[Vec<RuleRef<'w>>; 2]>,
    /// Per policy and direction: where its rules start in `resolved`.
    base: Vec<[usize; 2]>,
    /// Per policy rule: its peers and ports, resolved on first use.
    resolved: Vec<OnceLock<Resolved>>,
    /// The node rule's remote: the node's addresses (`None` without any).
    node: Option<Group>,
}

fn dir_index(direction: Direction) -> usize {
    match direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'w> Compiler<'w> {
    /// Indexes `world`.
    pub fn new(world: &'w World) -> Self {
        let mut namespaces: HashMap<&str, Namespace> = HashMap::new();
        let namespace = |name: &'w str| Namespace {
            labels: {
                let mut labels = world.namespaces.get(name).cloned().unwrap_or_default();
                labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
                labels
            },
            pods: Vec::new(),
            globals: Vec::new(),
        };
        for name in world.namespaces.keys() {
            namespaces.insert(name, namespace(name));
        }
        for (i, pod) in world.pods.iter().enumerate() {
            namespaces
                .entry(&pod.namespace)
                .or_insert_with(|| namespace(&pod.namespace))
                .pods
                .push(i);
        }

        let mut kubernetes: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut ordered: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut global = Vec::new();
        let mut ranked = Vec::new();
        let keys: Vec<PolicyKey> = world.policies.iter().map(Policy::key).collect();
        for (i, policy) in world.policies.iter().enumerate() {
            match policy {
                Policy::Kubernetes(p) => kubernetes.entry(&p.namespace).or_default().push(i),
                Policy::Ordered(p) => {
                    ranked.push(i);
                    match &p.scope {
                        Scope::Namespace(ns) => ordered.entry(ns).or_default().push(i),
                        Scope::Global => global.push(i),
                    }
                }
            }
        }
        ranked.sort_by(|&a, &b| {
            let order = |i: usize| match &world.policies[i] {
                Policy::Ordered(p) => p.order(),
                Policy::Kubernetes(_) => f64::INFINITY,
            };
            order(a)
                .total_cmp(&order(b))
                .then_with(|| keys[a].cmp(&keys[b]))
        });
        for ns in namespaces.values_mut() {
            ns.globals = global
                .iter()
                .copied()
                .filter(|&i| match &world.policies[i] {
                    Policy::Ordered(p) => p
                        .spec
                        .namespace_selector
                        .as_ref()
                        .is_none_or(|s| s.matches(&ns.labels)),
                    Policy::Kubernetes(_) => false,
                })
                .collect();
        }
        let mut rank = vec![usize::MAX; world.policies.len()];
        for (position, &i) in ranked.iter().enumerate() {
            rank[i] = position;
        }

        let rules: Vec<[Vec<RuleRef<'w>>; 2]> = world
            .policies
            .iter()
            .map(|p| [p.rules(Direction::Ingress), p.rules(Direction::Egress)])
            .collect();
        let mut base = Vec::with_capacity(rules.len());
        let mut total = 0;
        for [ingress, egress] in &rules {
            base.push([total, total + ingress.len()]);
            total += ingress.len() + egress.len();
        }
        let resolved = (0..total).map(|_| OnceLock::new()).collect();

        Self {
            world,
            namespaces,
            kubernetes,
            ordered,
            rank,
            keys,
            rules,
            base,
            resolved,
            node: (!world.node_addrs.is_empty()).then(|| Group {
                remote: world.node_addrs.iter().map(|&ip| IpNet::from(ip)).collect(),
                except: Vec::new(),
            }),
        }
    }

    /// The world this compiler indexes.
    pub fn world(&self) -> &'w World {
        self.world
    }

    /// Compiles the ingress and egress rule sets of `world.pods[pod]`.
    ///
    /// # Panics
    ///
    /// If `pod` is not an index of `world.pods`.
    pub fn endpoint(&self, pod: usize) -> CompiledEndpoint {
        let target = &self.world.pods[pod];
        let namespace = self.namespaces.get(target.namespace.as_str());
        // The policies that apply, whatever the direction.
        let ordered = self.ordered_for(target, namespace);
        let kubernetes: Vec<usize> = self
            .kubernetes
            .get(target.namespace.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| match &self.world.policies[i] {
                Policy::Kubernetes(p) => p.spec.pod_selector.matches(&target.labels),
                Policy::Ordered(_) => false,
            })
            .collect();
        let mut origins = BTreeMap::new();
        let (ingress, ingress_isolated_by) =
            self.direction(Direction::Ingress, &ordered, &kubernetes, &mut origins);
        let (egress, egress_isolated_by) =
            self.direction(Direction::Egress, &ordered, &kubernetes, &mut origins);
        CompiledEndpoint {
            ingress,
            egress,
            origins,
            ingress_isolated_by,
            egress_isolated_by,
        }
    }

    /// How many pods `world.policies[policy]` applies to (selects, in either
    /// direction), for `tweed policy list`.
    pub fn selected_pods(&self, policy: usize) -> usize {
        match &self.world.policies[policy] {
            Policy::Kubernetes(p) => self.namespaces.get(p.namespace.as_str()).map_or(0, |ns| {
                ns.pods
                    .iter()
                    .filter(|&&i| p.spec.pod_selector.matches(&self.world.pods[i].labels))
                    .count()
            }),
            Policy::Ordered(_) => self
                .world
                .pods
                .iter()
                .filter(|pod| {
                    let namespace = self.namespaces.get(pod.namespace.as_str());
                    self.ordered_for(pod, namespace).contains(&policy)
                })
                .count(),
        }
    }

    /// The ordered policies that apply to `target`, in (order, key) order.
    fn ordered_for(&self, target: &PodIdentity, namespace: Option<&Namespace>) -> Vec<usize> {
        let local = self
            .ordered
            .get(target.namespace.as_str())
            .into_iter()
            .flatten();
        let global = namespace.into_iter().flat_map(|ns| &ns.globals);
        let mut applicable: Vec<usize> = local
            .chain(global)
            .copied()
            .filter(|&i| match &self.world.policies[i] {
                Policy::Ordered(p) => p.spec.pod_selector.matches(&target.labels),
                Policy::Kubernetes(_) => false,
            })
            .collect();
        applicable.sort_by_key(|&i| self.rank[i]);
        applicable
    }

    /// One direction's rule set from the applicable `ordered` policies and the
    /// NetworkPolicies whose podSelector matches (`kubernetes`).
    fn direction(
        &self,
        direction: Direction,
        ordered: &[usize],
        kubernetes: &[usize],
        origins: &mut BTreeMap<(Direction, u32), RuleOrigin>,
    ) -> (RuleSetSpec, Vec<PolicyKey>) {
        let mut out = Emitter {
            rules: Vec::new(),
            next_id: 1,
            direction,
            origins,
        };
        if let Some(group) = &self.node {
            out.push(
                TIER_NODE,
                group,
                (None, None),
                RuleOrigin {
                    policy: None,
                    direction,
                    rule: None,
                    action: OrderedAction::Allow,
                },
            );
        }
        for &policy in ordered {
            self.emit_policy(&mut out, policy, TIER_ORDERED);
        }
        let mut isolated_by = Vec::new();
        for &policy in kubernetes {
            let Policy::Kubernetes(p) = &self.world.policies[policy] else {
                continue;
            };
            let isolates = match direction {
                Direction::Ingress => p.isolates_ingress(),
                Direction::Egress => p.isolates_egress(),
            };
            if isolates {
                isolated_by.push(self.keys[policy].clone());
                self.emit_policy(&mut out, policy, TIER_KUBERNETES);
            }
        }
        isolated_by.sort();
        let default = if isolated_by.is_empty() {
            VerdictSpec::Allow
        } else {
            VerdictSpec::Deny
        };
        // Under a default allow, rules that only allow or pass decide
        // nothing: the set is allow-all, which the dataplane shares instead
        // of compiling a classifier per pod (most pods are selected by no
        // policy and hold only the node's rule).
        let decides_nothing = default == VerdictSpec::Allow
            && out
                .rules
                .iter()
                .all(|r| matches!(r.action, RuleActionSpec::Allow | RuleActionSpec::Pass));
        let rules = if decides_nothing {
            out.origins.retain(|&(d, _), _| d != direction);
            Vec::new()
        } else {
            out.rules
        };
        (RuleSetSpec { default, rules }, isolated_by)
    }

    /// Emits every rule of `policy` in the emitter's direction.
    fn emit_policy(&self, out: &mut Emitter<'_>, policy: usize, tier: u8) {
        let d = dir_index(out.direction);
        for (i, rule) in self.rules[policy][d].iter().enumerate() {
            let resolved =
                self.resolved[self.base[policy][d] + i].get_or_init(|| self.resolve(policy, rule));
            for group in &resolved.groups {
                for &ports in &resolved.ports {
                    out.push(
                        tier,
                        group,
                        ports,
                        RuleOrigin {
                            policy: Some(self.keys[policy].clone()),
                            direction: out.direction,
                            rule: Some(i),
                            action: rule.action,
                        },
                    );
                }
            }
        }
    }
}

/// Appends rules with fresh ids and records their origins.
struct Emitter<'a> {
    rules: Vec<RuleSpec>,
    next_id: u32,
    direction: Direction,
    origins: &'a mut BTreeMap<(Direction, u32), RuleOrigin>,
}

impl Emitter<'_> {
    fn push(
        &mut self,
        tier: u8,
        group: &Group,
        (protocol, ports): (Option<u8>, Option<PortRangeSpec>),
        origin: RuleOrigin,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        let action = match origin.action {
            OrderedAction::Allow => RuleActionSpec::Allow,
            OrderedAction::Deny => RuleActionSpec::Deny,
            OrderedAction::Log => RuleActionSpec::Log,
            OrderedAction::Pass => RuleActionSpec::Pass,
        };
        self.rules.push(RuleSpec {
            id,
            tier,
            action,
            remote: group.remote.clone(),
            remote_except: group.except.clone(),
            protocol,
            ports,
            // Log and Deny rules carry their origin into the dataplane's
            // flow-log lines and per-rule drop counts.
            name: matches!(origin.action, OrderedAction::Log | OrderedAction::Deny)
                .then(|| origin.to_string()),
        });
        self.origins.insert((self.direction, id), origin);
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;

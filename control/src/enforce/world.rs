//! What policy is computed from, as the store holds it: every pod record of
//! every node, the labels set on pods and namespaces, and every policy; kept
//! current from listings and watch events, and turned into a
//! [`policy::World`](crate::policy::World). Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::cluster::keys;
use crate::pods::PodRecord;
use crate::policy::{Labels, PodIdentity, Policy, PolicyKey, World};
use crate::store::follow::{Inputs, decoded};

/// The cluster's policy inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyInputs {
    /// Pod records by store key.
    pub pods: BTreeMap<String, PodRecord>,
    /// Labels set with `tweed label pod`, by (namespace, name); they replace
    /// the labels the pod was attached with.
    pub pod_labels: BTreeMap<(String, String), Labels>,
    /// Namespace labels, by namespace.
    pub namespaces: BTreeMap<String, Labels>,
    /// Policies, by store key.
    pub policies: BTreeMap<String, Policy>,
}

/// Which of the inputs a store key belongs to.
enum Input<'a> {
    Pod,
    PodLabels(&'a str, &'a str),
    Namespace(&'a str),
    Policy,
}

fn input(key: &str) -> Option<Input<'_>> {
    if key.starts_with(keys::ALL_PODS) {
        Some(Input::Pod)
    } else if let Some((ns, name)) = keys::pod_labels_of(key) {
        Some(Input::PodLabels(ns, name))
    } else if let Some(ns) = keys::name_of(keys::NAMESPACES, key) {
        Some(Input::Namespace(ns))
    } else if key.starts_with(keys::POLICIES) {
        Some(Input::Policy)
    } else {
        None
    }
}

impl PolicyInputs {
    /// A pod's labels in force: those set with `tweed label pod`, else the
    /// ones it was attached with.
    pub fn labels_of(&self, record: &PodRecord) -> Labels {
        self.pod_labels
            .get(&(record.namespace.clone(), record.name.clone()))
            .cloned()
            .unwrap_or_else(|| record.labels.clone())
    }

    /// The first record of pod `namespace/name` (its `eth0`, if it has one).
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodRecord> {
        let mut matching = self
            .pods
            .values()
            .filter(|r| r.namespace == namespace && r.name == name);
        let first = matching.next()?;
        Some(
            std::iter::once(first)
                .chain(matching)
                .find(|r| r.ifname == "eth0")
                .unwrap_or(first),
        )
    }

    /// The policy under `key`.
    pub fn policy(&self, key: &PolicyKey) -> Option<&Policy> {
        self.policies.get(&keys::policy(key))
    }

    /// The world to compile, with `node_addrs` as the node's own addresses,
    /// and for each of its pods the store key of the record it came from.
    pub fn world(&self, node_addrs: &[IpAddr]) -> (World, Vec<&str>) {
        let mut record_keys = Vec::with_capacity(self.pods.len());
        let pods = self
            .pods
            .iter()
            .map(|(key, record)| {
                record_keys.push(key.as_str());
                PodIdentity {
                    namespace: record.namespace.clone(),
                    name: record.name.clone(),
                    labels: self.labels_of(record),
                    ipv4: record.ipv4,
                    ipv6: record.ipv6,
                }
            })
            .collect();
        let world = World {
            pods,
            namespaces: self.namespaces.clone(),
            policies: self.policies.values().cloned().collect(),
            node_addrs: node_addrs.to_vec(),
        };
        (world, record_keys)
    }
}

impl Inputs for PolicyInputs {
    const PREFIXES: &'static [&'static str] = &[
        keys::ALL_PODS,
        keys::POD_LABELS,
        keys::NAMESPACES,
        keys::POLICIES,
    ];

    fn put(&mut self, key: &str, value: &[u8]) -> bool {
        let Some(which) = input(key) else {
            return false;
        };
        match which {
            Input::Pod => match decoded::<PodRecord>(key, value) {
                Some(record) => self.pods.insert(key.to_owned(), record.clone()) != Some(record),
                None => self.pods.remove(key).is_some(),
            },
            Input::PodLabels(ns, name) => {
                let k = (ns.to_owned(), name.to_owned());
                match decoded::<Labels>(key, value) {
                    Some(labels) => self.pod_labels.insert(k, labels.clone()) != Some(labels),
                    None => self.pod_labels.remove(&k).is_some(),
                }
            }
            Input::Namespace(ns) => match decoded::<Labels>(key, value) {
                Some(labels) => {
                    self.namespaces.insert(ns.to_owned(), labels.clone()) != Some(labels)
                }
                None => self.namespaces.remove(ns).is_some(),
            },
            Input::Policy => match decoded::<Policy>(key, value) {
                Some(policy) => {
                    self.policies.insert(key.to_owned(), policy.clone()) != Some(policy)
                }
                None => self.policies.remove(key).is_some(),
            },
        }
    }

    fn delete(&mut self, key: &str) -> bool {
        match input(key) {
            Some(Input::Pod) => self.pods.remove(key).is_some(),
            Some(Input::PodLabels(ns, name)) => self
                .pod_labels
                .remove(&(ns.to_owned(), name.to_owned()))
                .is_some(),
            Some(Input::Namespace(ns)) => self.namespaces.remove(ns).is_some(),
            Some(Input::Policy) => self.policies.remove(key).is_some(),
            None => false,
        }
    }
}

#[cfg(test)]
#[path = "world_tests.rs"]
mod tests;

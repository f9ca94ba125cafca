//! Which native Services to push (pure): everything for a full sync, or
//! the Services that changed, in `service_set` batches that stay well under
//! the dataplane's request line limit.

use std::collections::{BTreeMap, BTreeSet};

use tweed_api::dataplane::proto::ServiceSpec;
use tweed_dataplane::table::service::{FrontendKind, ServiceKey, ServicePort};

use crate::dataplane::batch;

/// One `service_set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Whether the Services not in it (or in the batches after it) go.
    pub replace: bool,
    /// The Services set (those without ports are removed).
    pub services: Vec<ServiceSpec>,
}

/// The frontends of `wanted` reached from outside the cluster (NodePorts on
/// this node's addresses, externalIPs, load-balancer addresses): what the
/// node steers into the dataplane.
pub fn outside_frontends(wanted: &BTreeMap<String, Vec<ServicePort>>) -> BTreeSet<ServiceKey> {
    wanted
        .values()
        .flatten()
        .flat_map(|port| &port.frontends)
        .filter(|f| f.kind == FrontendKind::External)
        .map(|f| f.key)
        .collect()
}

/// Every Service in `wanted`; the first batch replaces what the dataplane
/// holds (so at least one batch, even for no Services).
pub fn full(wanted: &BTreeMap<String, Vec<ServicePort>>, max_bytes: usize) -> Vec<Batch> {
    full_sync(
        wanted
            .iter()
            .map(|(name, ports)| spec(name, ports))
            .collect(),
        max_bytes,
    )
}

/// `specs` as a full sync: the first batch replaces what the dataplane holds
/// (so at least one batch, even for none), the others add.
pub fn full_sync(specs: Vec<ServiceSpec>, max_bytes: usize) -> Vec<Batch> {
    let mut batches = batches(specs, max_bytes);
    match batches.first_mut() {
        Some(first) => first.replace = true,
        None => batches.push(Batch {
            replace: true,
            services: Vec::new(),
        }),
    }
    batches
}

/// The Services of `wanted` that differ from `pushed`, and those of
/// `pushed` that are gone (without ports, which removes them).
pub fn changes(
    wanted: &BTreeMap<String, Vec<ServicePort>>,
    pushed: &BTreeMap<String, Vec<ServicePort>>,
    max_bytes: usize,
) -> Vec<Batch> {
    let set = wanted
        .iter()
        .filter(|(name, ports)| pushed.get(*name) != Some(ports))
        .map(|(name, ports)| spec(name, ports));
    let gone = pushed
        .keys()
        .filter(|name| !wanted.contains_key(*name))
        .map(|name| spec(name, &[]));
    batches(set.chain(gone).collect(), max_bytes)
}

fn spec(name: &str, ports: &[ServicePort]) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        ports: ports.to_vec(),
    }
}

/// `specs` in batches of at most `max_bytes` of JSON, none replacing.
fn batches(specs: Vec<ServiceSpec>, max_bytes: usize) -> Vec<Batch> {
    batch::batches(specs, max_bytes)
        .into_iter()
        .map(|services| Batch {
            replace: false,
            services,
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn services(names: &[&str]) -> BTreeMap<String, Vec<ServicePort>> {
        names
            .iter()
            .map(|n| (n.to_string(), vec![ServicePort::named(format!("{n}:http"))]))
            .collect()
    }

    fn names(batches: &[Batch]) -> Vec<(bool, Vec<(&str, usize)>)> {
        batches
            .iter()
            .map(|b| {
                let services = b
                    .services
                    .iter()
                    .map(|s| (s.name.as_str(), s.ports.len()))
                    .collect();
                (b.replace, services)
            })
            .collect()
    }

    #[test]
    fn only_frontends_reached_from_outside_are_steered_each_once() {
        use tweed_dataplane::table::service::Frontend;
        let key = |ip: &str, port| ServiceKey {
            ip: ip.parse().unwrap(),
            protocol: 6,
            port,
        };
        let frontend = |k, kind| Frontend { key: k, kind };
        let mut wanted = services(&["a/x", "a/y"]);
        wanted.get_mut("a/x").unwrap()[0].frontends = vec![
            frontend(key("10.96.0.1", 80), FrontendKind::ClusterIp),
            frontend(key("192.168.1.1", 30080), FrontendKind::External),
            frontend(key("192.0.2.9", 80), FrontendKind::External),
        ];
        wanted.get_mut("a/y").unwrap()[0].frontends =
            vec![frontend(key("192.0.2.9", 80), FrontendKind::External)];
        assert_eq!(
            outside_frontends(&wanted).into_iter().collect::<Vec<_>>(),
            [key("192.0.2.9", 80), key("192.168.1.1", 30080)]
        );
    }

    #[test]
    fn a_full_sync_replaces_in_its_first_batch_even_when_empty() {
        assert_eq!(names(&full(&BTreeMap::new(), 1000)), [(true, vec![])]);
        let all = full(&services(&["a/x", "a/y", "a/z"]), 1000);
        assert_eq!(
            names(&all),
            [(true, vec![("a/x", 1), ("a/y", 1), ("a/z", 1)])]
        );
        let small = full(&services(&["a/x", "a/y", "a/z"]), 1);
        assert_eq!(small.len(), 3, "one per batch when each is too big");
        assert!(small[0].replace && !small[1].replace && !small[2].replace);
    }

    #[test]
    fn only_changed_and_removed_services_are_pushed() {
        let pushed = services(&["a/x", "a/y"]);
        let mut wanted = services(&["a/x", "a/z"]);
        assert_eq!(
            names(&changes(&wanted, &pushed, 1000)),
            [(false, vec![("a/z", 1), ("a/y", 0)])]
        );
        wanted.insert(
            "a/x".into(),
            vec![
                ServicePort::named("a/x:http"),
                ServicePort::named("a/x:https"),
            ],
        );
        wanted.remove("a/z");
        wanted.insert("a/y".into(), pushed["a/y"].clone());
        assert_eq!(
            names(&changes(&wanted, &pushed, 1000)),
            [(false, vec![("a/x", 2)])]
        );
        assert!(changes(&pushed, &pushed, 1000).is_empty());
    }
}

//! Which ports' rule sets to push: the compiled sets against the ones the
//! dataplane was last given. Pure.

use std::collections::BTreeMap;

use tweed_api::dataplane::proto::{PolicySet, RuleSetSpec};

/// A port's rule sets: (ingress, egress).
pub type PortRules = (RuleSetSpec, RuleSetSpec);

/// The `policy_set` requests that make the dataplane's rule sets `wanted`,
/// given that it holds `pushed` (ports missing from `pushed` are pushed).
/// Ports only in `pushed` are gone and need nothing.
pub fn changes(
    wanted: &BTreeMap<String, PortRules>,
    pushed: &BTreeMap<String, PortRules>,
) -> Vec<PolicySet> {
    wanted
        .iter()
        .filter(|(port, rules)| pushed.get(*port) != Some(*rules))
        .map(|(port, (ingress, egress))| PolicySet {
            name: port.clone(),
            ingress: ingress.clone(),
            egress: egress.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweed_api::dataplane::proto::VerdictSpec;

    fn deny() -> RuleSetSpec {
        RuleSetSpec {
            default: VerdictSpec::Deny,
            rules: Vec::new(),
        }
    }

    #[test]
    fn only_new_and_changed_ports_are_pushed() {
        let mut wanted = BTreeMap::new();
        wanted.insert("ns/same".to_owned(), (deny(), RuleSetSpec::default()));
        wanted.insert("ns/changed".to_owned(), (deny(), deny()));
        wanted.insert("ns/new".to_owned(), (RuleSetSpec::default(), deny()));
        let mut pushed = BTreeMap::new();
        pushed.insert("ns/same".to_owned(), (deny(), RuleSetSpec::default()));
        pushed.insert("ns/changed".to_owned(), (deny(), RuleSetSpec::default()));
        pushed.insert("ns/gone".to_owned(), (deny(), deny()));
        let names: Vec<String> = changes(&wanted, &pushed)
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["ns/changed", "ns/new"]);
        assert!(changes(&wanted, &wanted).is_empty());
    }
}

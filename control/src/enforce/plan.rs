//! Which ports' rule sets to push: the compiled sets against the ones the
//! dataplane was last given. Pure.

use std::collections::BTreeMap;

use tweed_dataplane::api::proto::{PolicySet, RuleSetSpec};

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

/// The most bytes of rule sets one `policy_set_many` carries: a quarter of
/// the dataplane's line limit, so a request never comes near it.
pub const BATCH_BYTES: usize = tweed_dataplane::api::MAX_LINE / 4;

/// Cuts `sets` into batches of at most `max_bytes` of JSON each (a set
/// larger than that alone is a batch of its own), in order.
pub fn batches(sets: Vec<PolicySet>, max_bytes: usize) -> Vec<Vec<PolicySet>> {
    let mut out: Vec<Vec<PolicySet>> = Vec::new();
    let mut size = 0;
    for set in sets {
        let len = serde_json::to_vec(&set).map_or(0, |json| json.len());
        match out.last_mut() {
            Some(batch) if size + len <= max_bytes => {
                batch.push(set);
                size += len;
            }
            _ => {
                out.push(vec![set]);
                size = len;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweed_dataplane::api::proto::VerdictSpec;

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

    #[test]
    fn batches_stay_under_the_size_in_order() {
        let set = |name: &str| PolicySet {
            name: name.into(),
            ingress: RuleSetSpec::default(),
            egress: RuleSetSpec::default(),
        };
        let one = serde_json::to_vec(&set("a")).expect("json").len();
        let sets: Vec<PolicySet> = ["a", "b", "c", "d", "e"].map(set).to_vec();
        let cut = batches(sets.clone(), 2 * one);
        let names: Vec<Vec<&str>> = cut
            .iter()
            .map(|b| b.iter().map(|s| s.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
        assert_eq!(batches(sets.clone(), 1).len(), 5, "one each when too big");
        assert_eq!(batches(sets, usize::MAX).len(), 1);
        assert!(batches(Vec::new(), 10).is_empty());
    }
}

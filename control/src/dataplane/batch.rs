//! Cutting a push into requests the dataplane takes: its API refuses a line
//! longer than `MAX_LINE`, so the policy and Service pushes send their items
//! in batches of at most a quarter of it. Pure.

use serde::Serialize;

/// The most bytes of items one request carries: a quarter of the
/// dataplane's line limit, so a request never comes near it.
pub const BATCH_BYTES: usize = tweed_dataplane::api::MAX_LINE / 4;

/// Cuts `items` into batches of at most `max_bytes` of JSON each (an item
/// larger than that alone is a batch of its own), in order.
pub fn batches<T: Serialize>(items: Vec<T>, max_bytes: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for item in items {
        let len = serde_json::to_vec(&item).map_or(0, |json| json.len());
        match out.last_mut() {
            Some(batch) if size + len <= max_bytes => {
                batch.push(item);
                size += len;
            }
            _ => {
                out.push(vec![item]);
                size = len;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tweed_api::dataplane::proto::{PolicySet, RuleSetSpec};

    use super::*;

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
        assert!(batches(Vec::<PolicySet>::new(), 10).is_empty());
    }
}

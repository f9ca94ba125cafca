//! Namespace → its labels, `kubernetes.io/metadata.name` always among them
//! (the API server sets it on every namespace since 1.21; namespaceSelectors
//! that pick one namespace by name use it).

use k8s_openapi::api::core::v1::Namespace;

use super::{Context, Entry, Translate, encode};
use crate::cluster::keys;

/// The label every namespace carries with its own name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Translate for Namespace {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        let Some(name) = &self.metadata.name else {
            return Err("a namespace without a name".into());
        };
        let mut labels = self.metadata.labels.clone().unwrap_or_default();
        labels
            .entry(NAME_LABEL.to_owned())
            .or_insert_with(|| name.clone());
        Ok(vec![(keys::namespace(name), encode(&labels))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_label_is_always_there() {
        let ns: Namespace = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "prod", "labels": {"team": "x"}}}),
        )
        .unwrap();
        let entries = ns.entries(&Context { node: "a".into() }).unwrap();
        assert_eq!(entries[0].0, keys::namespace("prod"));
        let labels: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&entries[0].1).unwrap();
        assert_eq!(labels[NAME_LABEL], "prod");
        assert_eq!(labels["team"], "x");
    }
}

//! NetworkPolicy (`networking.k8s.io/v1`) and tweed's ordered Policy and
//! GlobalPolicy (`tweed.dev/v1` custom resources) → the policy entry `tweed
//! policy apply` would write: the same parser and validation, so a policy
//! means the same whichever way it came. One that does not validate gives no
//! entry and its reason (shown by `tweed status`; the API server has no
//! admission webhook of tweed's to refuse it earlier).

use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DynamicObject;

use super::{Context, Entry, Translate, encode};
use crate::cluster::keys;
use crate::policy::Policy;

/// A manifest as the API server returns it → the policy entry.
pub fn entry(manifest: serde_json::Value) -> Result<Vec<Entry>, String> {
    let policy: Policy = serde_json::from_value(manifest).map_err(|e| e.to_string())?;
    Ok(vec![(keys::policy(&policy.key()), encode(&policy))])
}

impl Translate for NetworkPolicy {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        entry(serde_json::to_value(self).map_err(|e| e.to_string())?)
    }
}

/// tweed's ordered policies, read as dynamic objects of their CRDs.
impl Translate for DynamicObject {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        let mut value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            // What the API server adds beside the manifest: not the policy's.
            map.remove("status");
        }
        entry(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_policy_from_the_api_server_becomes_its_store_entry() {
        let np: NetworkPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"namespace": "prod", "name": "db", "uid": "u", "resourceVersion": "7",
                          "creationTimestamp": "2026-12-05T08:00:00Z", "generation": 1},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]},
        }))
        .unwrap();
        let entries = np.entries(&Context { node: "a".into() }).unwrap();
        assert_eq!(entries[0].0, "/tweed/v1/policies/networkpolicy/prod/db");
        let back: Policy = serde_json::from_slice(&entries[0].1).unwrap();
        assert_eq!(back.key().name, "db");
    }

    #[test]
    fn an_invalid_ordered_policy_gives_its_reason() {
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "tweed.dev/v1",
            "kind": "GlobalPolicy",
            "metadata": {"name": "bad"},
            "spec": {"order": 10, "podSelector": {}, "ingress": [{"action": "Maybe"}]},
        }))
        .unwrap();
        let reason = obj.entries(&Context { node: "a".into() }).unwrap_err();
        assert!(!reason.is_empty());
    }
}

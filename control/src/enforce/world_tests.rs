use std::collections::BTreeMap;

use super::*;
use crate::pods::PodRecord;
use crate::policy::fixtures::DENY_INGRESS_PROD;
use crate::store::Revision;
use crate::store::{KeyValue, WatchEvent};
use tweed_api::dataplane::proto::MacAddr;

fn record(node_ns: &str, name: &str, ifname: &str, ip: &str) -> PodRecord {
    PodRecord {
        container_id: format!("c-{name}"),
        ifname: ifname.to_owned(),
        namespace: node_ns.to_owned(),
        name: name.to_owned(),
        netns: format!("/run/netns/{name}"),
        dataplane_netns: None,
        port: format!("{node_ns}/{name}"),
        ipv4: Some(ip.parse().unwrap()),
        ipv6: None,
        mac: MacAddr([0x0a, 0x58, 0, 0, 0, 1]),
        mtu: 1450,
        labels: BTreeMap::from([("app".to_owned(), name.to_owned())]),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<u8> {
    let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
    serde_json::to_vec(&map).unwrap()
}

#[test]
fn every_input_comes_and_goes_by_key() {
    let mut inputs = PolicyInputs::default();
    let web = record("prod", "web", "eth0", "10.244.1.2");
    let pod_key = keys::pod("n1", "c-web", "eth0");
    assert!(inputs.put(&pod_key, &web.encode()));
    assert!(
        !inputs.put(&pod_key, &web.encode()),
        "the same value is no change"
    );
    assert!(inputs.put(&keys::namespace("prod"), &labels(&[("team", "a")])));
    assert!(inputs.put(&keys::pod_labels("prod", "web"), &labels(&[("app", "api")])));
    let policy = &crate::policy::parse_documents(DENY_INGRESS_PROD).unwrap()[0];
    let policy_key = keys::policy(&policy.key());
    assert!(inputs.put(&policy_key, &serde_json::to_vec(policy).unwrap()));
    assert_eq!(inputs.pods.len(), 1);
    assert_eq!(inputs.namespaces["prod"]["team"], "a");
    assert_eq!(inputs.labels_of(&web)["app"], "api", "labels set later win");
    assert_eq!(inputs.policy(&policy.key()), Some(policy));

    let (world, record_keys) = inputs.world(&["10.244.1.1".parse().unwrap()]);
    assert_eq!(record_keys, [pod_key.as_str()]);
    assert_eq!(world.pods[0].labels["app"], "api");
    assert_eq!(world.policies.len(), 1);
    assert_eq!(world.node_addrs.len(), 1);

    for key in [
        &pod_key,
        &keys::namespace("prod"),
        &keys::pod_labels("prod", "web"),
        &policy_key,
    ] {
        let event = WatchEvent::Delete {
            key: key.clone(),
            revision: Revision(9),
        };
        assert!(inputs.apply(&event), "{key}");
        assert!(!inputs.apply(&event), "{key} again");
    }
    assert_eq!(inputs, PolicyInputs::default());
}

#[test]
fn corrupt_values_and_foreign_keys_are_ignored() {
    let mut inputs = PolicyInputs::default();
    assert!(!inputs.put(&keys::pod("n1", "c", "eth0"), b"not json"));
    assert!(!inputs.put(&keys::namespace("prod"), b"[1,2]"));
    assert!(!inputs.put("/tweed/v1/nodes/n1", b"{}"));
    assert!(!inputs.put(&format!("{}prod", keys::POD_LABELS), b"{}"));
    assert_eq!(inputs, PolicyInputs::default());
    // A value that turns corrupt removes what was there.
    let key = keys::namespace("prod");
    assert!(inputs.put(&key, &labels(&[("a", "b")])));
    assert!(inputs.put(&key, b"garbage"));
    assert!(inputs.namespaces.is_empty());
}

#[test]
fn a_pod_is_found_by_name_and_prefers_eth0() {
    let listed = [
        (
            keys::pod("n1", "c-web", "net1"),
            record("prod", "web", "net1", "10.244.1.3"),
        ),
        (
            keys::pod("n1", "c-web", "eth0"),
            record("prod", "web", "eth0", "10.244.1.2"),
        ),
    ]
    .map(|(key, r)| KeyValue {
        key,
        value: r.encode(),
        revision: Revision(1),
    });
    let inputs = PolicyInputs::from_lists(&listed);
    assert_eq!(
        inputs.pod("prod", "web").map(|r| r.ifname.as_str()),
        Some("eth0")
    );
    assert!(inputs.pod("prod", "db").is_none());
    assert!(inputs.pod("dev", "web").is_none());
}

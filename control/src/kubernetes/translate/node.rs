//! Node ↔ [`NodeRecord`]: the subnets from `spec.podCIDRs` (as kube-controller-manager
//! allocates them with `--allocate-node-cidrs`, which flannel's kube subnet manager
//! also reads), the rest from tweed's own annotations, which each node publishes on
//! its Node object. Pure.

use std::collections::BTreeMap;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use super::{Context, Entry, Translate};
use crate::cluster::{NodeRecord, keys};
use crate::config::{Backend, parse_backend};

/// The annotation with the address peers send overlay traffic to.
pub const UNDERLAY_IP: &str = "tweed.dev/underlay-ip";
/// The annotation with the node's VTEP MAC.
pub const VTEP_MAC: &str = "tweed.dev/vtep-mac";
/// The annotation with the encapsulation the node speaks (`vxlan` or `udp`).
pub const BACKEND: &str = "tweed.dev/backend";
/// The annotation with the UDP ports the node sends VXLAN from (`FIRST-LAST`).
pub const VXLAN_SOURCE_PORTS: &str = "tweed.dev/vxlan-source-ports";
/// The annotation, `"true"` when present, that the node accepts VXLAN whose
/// inner checksums are left partial.
pub const PARTIAL_CHECKSUMS: &str = "tweed.dev/partial-checksums";

/// Why a Node gives no record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeGap {
    /// No pod CIDR is allocated yet.
    #[error(
        "node {0} has no spec.podCIDRs yet (kube-controller-manager allocates them with --allocate-node-cidrs)"
    )]
    NoPodCidr(String),
    /// A pod CIDR does not parse.
    #[error("node {node}: spec.podCIDRs holds {value:?}, not a CIDR")]
    BadPodCidr {
        /// The node.
        node: String,
        /// The value.
        value: String,
    },
    /// tweed has not published its annotations on it (not running there yet).
    #[error("node {0} carries no tweed annotations (tweed does not run there yet)")]
    NotTweed(String),
    /// An annotation does not parse.
    #[error("node {node}: annotation {key}={value:?}: {reason}")]
    BadAnnotation {
        /// The node.
        node: String,
        /// The annotation.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// The node's pod subnets, IPv4 first (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn pod_cidrs(node: &Node) -> Result<Vec<IpNet>, NodeGap> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let spec = node.spec.as_ref();
    let listed: Vec<String> = spec
        .and_then(|s| s.pod_cidrs.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| spec.and_then(|s| s.pod_cidr.clone()).map(|c| vec![c]))
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(NodeGap::NoPodCidr(name));
    }
    let mut nets = listed
        .into_iter()
        .map(|value| {
            value.parse::<IpNet>().map_err(|_| NodeGap::BadPodCidr {
                node: name.clone(),
                value,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    nets.sort_by_key(|n| matches!(n, IpNet::V6(_)));
    Ok(nets)
}

/// The annotations node `record` publishes.
pub fn annotations(record: &NodeRecord) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (UNDERLAY_IP.to_owned(), record.underlay_ip.to_string()),
        (VTEP_MAC.to_owned(), record.vtep_mac.to_string()),
        (BACKEND.to_owned(), backend_name(record.backend).to_owned()),
    ]);
    if let Some(ports) = record.vxlan_source_ports {
        out.insert(VXLAN_SOURCE_PORTS.to_owned(), ports.to_string());
    }
    if record.partial_checksums {
        out.insert(PARTIAL_CHECKSUMS.to_owned(), "true".to_owned());
    }
    out
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Vxlan => "vxlan",
        Backend::Udp => "udp",
    }
}

/// The record of a Node that runs tweed.
pub fn record(node: &Node) -> Result<NodeRecord, NodeGap> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let empty = BTreeMap::new();
    let notes = node.metadata.annotations.as_ref().unwrap_or(&empty);
    if !notes.contains_key(UNDERLAY_IP) {
        return Err(NodeGap::NotTweed(name));
    }
    let subnets = pod_cidrs(node)?;
    let field = |key: &'static str| -> Result<Option<&String>, NodeGap> { Ok(notes.get(key)) };
    let bad = |key: &'static str, value: &str, reason: String| NodeGap::BadAnnotation {
        node: name.clone(),
        key,
        value: value.to_owned(),
        reason,
    };
    let required = |key: &'static str| -> Result<&String, NodeGap> {
        field(key)?.ok_or_else(|| bad(key, "", "missing".into()))
    };
    let ip = required(UNDERLAY_IP)?;
    let underlay_ip = ip
        .parse::<std::net::IpAddr>()
        .map_err(|e| bad(UNDERLAY_IP, ip, e.to_string()))?;
    let mac = required(VTEP_MAC)?;
    let vtep_mac = mac
        .parse::<tweed_api::dataplane::proto::MacAddr>()
        .map_err(|e| bad(VTEP_MAC, mac, e.to_string()))?;
    let backend = match field(BACKEND)? {
        Some(text) => parse_backend(text).map_err(|e| bad(BACKEND, text, e))?,
        None => Backend::Vxlan,
    };
    let vxlan_source_ports = match field(VXLAN_SOURCE_PORTS)? {
        Some(text) => Some(text.parse().map_err(|e| bad(VXLAN_SOURCE_PORTS, text, e))?),
        None => None,
    };
    let partial_checksums = match field(PARTIAL_CHECKSUMS)? {
        Some(text) => text
            .parse::<bool>()
            .map_err(|e| bad(PARTIAL_CHECKSUMS, text, e.to_string()))?,
        None => false,
    };
    Ok(NodeRecord {
        name,
        subnets,
        underlay_ip,
        vtep_mac,
        backend,
        vxlan_source_ports,
        partial_checksums,
    })
}

/// A Node gives its record once tweed runs there; one that runs tweed but
/// whose record is unusable is refused with the reason.
impl Translate for Node {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        match record(self) {
            Ok(record) => Ok(vec![(keys::node(&record.name), record.encode())]),
            Err(NodeGap::NotTweed(_)) => Ok(Vec::new()),
            Err(gap) => Err(gap.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_VXLAN_SOURCE_PORTS;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).unwrap()
    }

    fn published() -> NodeRecord {
        NodeRecord {
            name: "a".into(),
            subnets: vec![
                "10.244.1.0/24".parse().unwrap(),
                "fd00:10:244:1::/64".parse().unwrap(),
            ],
            underlay_ip: "192.168.0.1".parse().unwrap(),
            vtep_mac: "02:77:c0:a8:00:01".parse().unwrap(),
            backend: Backend::Vxlan,
            vxlan_source_ports: Some(DEFAULT_VXLAN_SOURCE_PORTS),
            partial_checksums: true,
        }
    }

    #[test]
    fn a_record_survives_its_annotations_and_pod_cidrs() {
        let record = published();
        let n = node(serde_json::json!({
            "metadata": {"name": "a", "annotations": annotations(&record)},
            // The API server may list IPv6 first; the record has IPv4 first.
            "spec": {"podCIDRs": ["fd00:10:244:1::/64", "10.244.1.0/24"]},
        }));
        assert_eq!(self::record(&n), Ok(record));
    }

    #[test]
    fn the_single_pod_cidr_field_serves_when_the_list_is_absent() {
        let n = node(
            serde_json::json!({"metadata": {"name": "a"}, "spec": {"podCIDR": "10.244.3.0/24"}}),
        );
        assert_eq!(
            pod_cidrs(&n).unwrap(),
            vec!["10.244.3.0/24".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn gaps_say_what_is_missing() {
        let bare = node(serde_json::json!({"metadata": {"name": "a"}}));
        assert_eq!(pod_cidrs(&bare), Err(NodeGap::NoPodCidr("a".into())));
        assert_eq!(record(&bare), Err(NodeGap::NotTweed("a".into())));
        let mut notes = annotations(&published());
        notes.insert(PARTIAL_CHECKSUMS.into(), "yes".into());
        let unsure = node(serde_json::json!({
            "metadata": {"name": "a", "annotations": notes},
            "spec": {"podCIDRs": ["10.244.1.0/24"]},
        }));
        let err = record(&unsure).unwrap_err();
        assert!(
            matches!(
                err,
                NodeGap::BadAnnotation {
                    key: PARTIAL_CHECKSUMS,
                    ..
                }
            ),
            "{err}"
        );
        let mut notes = annotations(&published());
        notes.insert(VTEP_MAC.into(), "nope".into());
        let bad = node(serde_json::json!({
            "metadata": {"name": "a", "annotations": notes},
            "spec": {"podCIDRs": ["10.244.1.0/24"]},
        }));
        let err = record(&bad).unwrap_err();
        assert!(
            matches!(err, NodeGap::BadAnnotation { key: VTEP_MAC, .. }),
            "{err}"
        );
        let no_cidr = node(serde_json::json!({
            "metadata": {"name": "a", "annotations": annotations(&published())},
            "spec": {"podCIDRs": ["10.244.1.0/33"]},
        }));
        assert!(matches!(record(&no_cidr), Err(NodeGap::BadPodCidr { .. })));
    }
}

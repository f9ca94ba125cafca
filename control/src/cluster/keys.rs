//! The store's key layout, in one place.
//!
//! ```text
//! /tweed/v1/nodes/NODE                  NodeRecord, on the node's lease
//! /tweed/v1/subnets/10.244.1.0-24       SubnetClaim, on the node's lease (uniqueness)
//! /tweed/v1/static-peers/NAME           NodeRecord of a host that runs no tweed
//! /tweed/v1/pods/NODE/CONTAINER/IFNAME  PodRecord, the pod's durable IPAM lease
//! /tweed/v1/pod-labels/NS/NAME          labels set with `tweed label pod`, in place of the CNI's
//! /tweed/v1/namespaces/NS               a namespace's labels
//! /tweed/v1/policies/KIND/NS/NAME       a policy (`_` for the namespace of a GlobalPolicy)
//! /tweed/v1/services/NS/NAME            a Kubernetes Service (JSON), for native Services
//! /tweed/v1/endpointslices/NS/NAME      a Kubernetes EndpointSlice (JSON)
//! ```
//!
//! A subnet is written `ADDR-LEN` (flannel's form), so a key never holds a
//! second `/`.

use ipnet::IpNet;

/// Every node record.
pub const NODES: &str = "/tweed/v1/nodes/";
/// Every subnet claim.
pub const SUBNETS: &str = "/tweed/v1/subnets/";
/// Every static peer.
pub const STATIC_PEERS: &str = "/tweed/v1/static-peers/";

/// A node's record.
pub fn node(name: &str) -> String {
    format!("{NODES}{name}")
}

/// The claim on a subnet.
pub fn subnet(net: &IpNet) -> String {
    format!("{SUBNETS}{}-{}", net.addr(), net.prefix_len())
}

/// The subnet a claim key is about.
pub fn subnet_of(key: &str) -> Option<IpNet> {
    let (addr, len) = key.strip_prefix(SUBNETS)?.rsplit_once('-')?;
    IpNet::new(addr.parse().ok()?, len.parse().ok()?).ok()
}

/// A static peer.
pub fn static_peer(name: &str) -> String {
    format!("{STATIC_PEERS}{name}")
}

/// Every pod record of a node.
pub fn pods(node: &str) -> String {
    format!("/tweed/v1/pods/{node}/")
}

/// One attachment's pod record.
pub fn pod(node: &str, container_id: &str, ifname: &str) -> String {
    format!("{}{container_id}/{ifname}", pods(node))
}

/// Every pod record of every node.
pub const ALL_PODS: &str = "/tweed/v1/pods/";
/// Every pod's labels set with `tweed label pod`.
pub const POD_LABELS: &str = "/tweed/v1/pod-labels/";
/// Every namespace's labels.
pub const NAMESPACES: &str = "/tweed/v1/namespaces/";
/// Every policy.
pub const POLICIES: &str = "/tweed/v1/policies/";

/// Every Service.
pub const SERVICES: &str = "/tweed/v1/services/";
/// Every EndpointSlice.
pub const ENDPOINT_SLICES: &str = "/tweed/v1/endpointslices/";

/// A Service.
pub fn service(namespace: &str, name: &str) -> String {
    format!("{SERVICES}{namespace}/{name}")
}

/// An EndpointSlice.
pub fn endpoint_slice(namespace: &str, name: &str) -> String {
    format!("{ENDPOINT_SLICES}{namespace}/{name}")
}

/// The labels `tweed label pod` set on a pod.
pub fn pod_labels(namespace: &str, name: &str) -> String {
    format!("{POD_LABELS}{namespace}/{name}")
}

/// A pod-labels key's namespace and name.
pub fn pod_labels_of(key: &str) -> Option<(&str, &str)> {
    let (ns, name) = key.strip_prefix(POD_LABELS)?.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then_some((ns, name))
}

/// A namespace's labels.
pub fn namespace(name: &str) -> String {
    format!("{NAMESPACES}{name}")
}

/// The namespace a policy key names, or `_` for a cluster-wide one (a
/// namespace name is a DNS label and never `_`).
const GLOBAL: &str = "_";

/// A policy's key.
pub fn policy(key: &crate::policy::PolicyKey) -> String {
    let ns = key.namespace.as_deref().unwrap_or(GLOBAL);
    format!("{POLICIES}{}/{ns}/{}", key.kind.name(), key.name)
}

/// The name after a prefix (`NODES`, `STATIC_PEERS`).
pub fn name_of<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(prefix).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_keys_round_trip_for_both_families() {
        for net in ["10.244.1.0/24", "fd00:1:2:3::/64"] {
            let net: IpNet = net.parse().unwrap();
            let key = subnet(&net);
            assert_eq!(key.matches('/').count(), 4, "{key}");
            assert_eq!(subnet_of(&key), Some(net));
        }
        assert_eq!(subnet_of("/tweed/v1/subnets/garbage"), None);
    }

    #[test]
    fn names_come_back_from_keys() {
        assert_eq!(name_of(NODES, &node("a")), Some("a"));
        assert_eq!(name_of(NODES, NODES), None);
        assert_eq!(pod("n", "c1", "eth0"), "/tweed/v1/pods/n/c1/eth0");
        assert!(pod("n", "c1", "eth0").starts_with(ALL_PODS));
        assert_eq!(
            pod_labels_of(&pod_labels("prod", "web")),
            Some(("prod", "web"))
        );
        assert_eq!(pod_labels_of("/tweed/v1/pod-labels/prod"), None);
    }
}

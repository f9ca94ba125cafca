//! The pod ops' wire types: what the CNI plugin sends on ADD, DEL, CHECK and
//! GC, and the attachment the daemon answers with. Pure serde types.
//!
//! A pod attachment is keyed by `(container_id, ifname)`, as CNI keys it: one
//! container may have several interfaces.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::dataplane::proto::MacAddr;

/// `pod_add` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodAdd {
    /// The container runtime's id of the sandbox (`CNI_CONTAINERID`).
    pub container_id: String,
    /// The pod's network namespace path (`CNI_NETNS`).
    pub netns: String,
    /// The interface to create inside it (`CNI_IFNAME`).
    pub ifname: String,
    /// The pod's Kubernetes namespace, if known (`K8S_POD_NAMESPACE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod's name, if known (`K8S_POD_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The pod's labels, for policy.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The interface's MTU; the node's overlay MTU when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// The addresses the runtime asks for (CNI `IP=`, the `ips` capability),
    /// at most one per family: given exactly, or the ADD fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// The MAC the runtime asks for (CNI `MAC=`, the `mac` capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// The plugin's open descriptor of the netns (the plugin keeps it open
    /// until the answer): the daemon opens it as `/proc/PEER/fd/N`, so the
    /// netns is the one the runtime named even when the daemon's mount
    /// namespace does not show `netns` (SO_PEERCRED gives PEER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_fd: Option<i32>,
}

/// `pod_del` arguments: without `ifname`, every interface of the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodDel {
    /// The sandbox's id.
    pub container_id: String,
    /// The interface; absent = all of the container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
}

/// One attachment's key: `pod_get` arguments and `gc` list entries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodKey {
    /// The sandbox's id.
    pub container_id: String,
    /// The interface inside it.
    pub ifname: String,
}

/// `gc` arguments: the attachments the runtime still knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcArgs {
    /// Every attachment to keep; all others are released.
    pub valid: Vec<PodKey>,
}

/// A pod's attachment: `pod_add` and `pod_get` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodInfo {
    /// The sandbox's id.
    pub container_id: String,
    /// The interface inside the pod.
    pub ifname: String,
    /// The pod's Kubernetes namespace, as the daemon recorded it.
    pub namespace: String,
    /// The pod's name, as the daemon recorded it; `namespace/name` is its
    /// dataplane port name.
    pub name: String,
    /// The pod's network namespace path.
    pub netns: String,
    /// Its IPv4 address, if the node has an IPv4 subnet.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address, if the node has an IPv6 subnet.
    pub ipv6: Option<Ipv6Addr>,
    /// The interface's MAC.
    pub mac: MacAddr,
    /// The interface's MTU.
    pub mtu: u16,
    /// The IPv4 gateway the pod routes through (link-local).
    pub gateway_v4: Option<Ipv4Addr>,
    /// The IPv6 gateway the pod routes through (link-local).
    pub gateway_v6: Option<Ipv6Addr>,
    /// The pod's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The node the pod runs on.
    pub node: String,
}

impl PodInfo {
    /// The attachment's key.
    pub fn key(&self) -> PodKey {
        PodKey {
            container_id: self.container_id.clone(),
            ifname: self.ifname.clone(),
        }
    }

    /// Its dataplane port name, `NAMESPACE/NAME`.
    pub fn port_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// `pod_del` and `gc` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasedReply {
    /// The attachments released (empty when nothing was held).
    pub released: Vec<PodInfo>,
}

/// `pod_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodsReply {
    /// Every attachment on this node.
    pub pods: Vec<PodInfo>,
}

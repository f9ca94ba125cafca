//! The node ops' wire types: this node, the other nodes of the cluster, the
//! static peers and their reachability. Pure serde types.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::dataplane::proto::MacAddr;
use crate::dataplane::values::Backend;

/// Where a node came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// The node this daemon runs on.
    This,
    /// Another node of the cluster, learnt from the store.
    Node,
    /// A peer configured by hand (`peer_add`).
    Static,
}

impl NodeKind {
    /// The kind's wire name.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::This => "this",
            NodeKind::Node => "node",
            NodeKind::Static => "static",
        }
    }
}

/// A node as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Its pod subnets.
    pub subnets: Vec<IpNet>,
    /// Its address on the underlay (where encapsulated traffic goes).
    pub underlay_ip: IpAddr,
    /// The MAC of its VTEP.
    pub vtep_mac: MacAddr,
    /// The encapsulation it speaks.
    pub backend: Backend,
    /// Where it came from.
    pub kind: NodeKind,
    /// Its own addresses (the host's, as Kubernetes reports them).
    #[serde(default)]
    pub node_addrs: Vec<IpAddr>,
}

/// The dataplane process as the daemon supervises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataplaneStatus {
    /// Whether it answers on its socket.
    pub up: bool,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// How often it was restarted.
    pub restarts: u64,
    /// Its API socket.
    pub socket: String,
    /// How many pod ports it holds.
    pub ports: usize,
    /// The last failure, if any.
    pub error: Option<String>,
    /// Its tap I/O back end, as it reports it (absent from older daemons
    /// and while it is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
}

/// Whether the store works, as the daemon's calls showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreStatus {
    /// The last call that reached the store worked.
    pub up: bool,
    /// Why the last call failed, while it is down.
    pub error: Option<String>,
    /// Calls that failed since the daemon started.
    pub failures: u64,
}

/// A peer node and whether it can be reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerStatus {
    /// The peer.
    pub node: NodeInfo,
    /// Whether it answered the last probe; null = not probed yet.
    pub reachable: Option<bool>,
    /// The last probe's round-trip time.
    pub rtt_ms: Option<f64>,
    /// Why the last probe failed.
    pub last_error: Option<String>,
}

/// `status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReply {
    /// This node.
    pub node: NodeInfo,
    /// The store: `embedded PATH` or `etcd ENDPOINTS`.
    pub store: String,
    /// Whether the store works.
    pub store_health: StoreStatus,
    /// The dataplane process.
    pub dataplane: DataplaneStatus,
    /// Every other node and static peer.
    pub peers: Vec<PeerStatus>,
    /// The Kubernetes datasource, when the node reads the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource: Option<DatasourceStatus>,
    /// Whether the dataplane balances Services (`--native-services`);
    /// absent: kube-proxy's job.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native_services: bool,
}

/// How current the Kubernetes datasource is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasourceStatus {
    /// `kubernetes`.
    pub kind: String,
    /// The API server's URL.
    pub server: String,
    /// Some resource has not been listed yet or its watch is failing: the
    /// node enforces the last state it saw.
    pub stale: bool,
    /// Per resource.
    pub resources: Vec<ResourceStatus>,
}

fn served_by_default() -> bool {
    true
}

/// One watched resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceStatus {
    /// The resource (`pods`, `networkpolicies`, ...).
    pub resource: String,
    /// Its first listing is done.
    pub synced: bool,
    /// The API server serves it (false: a custom resource whose CRD is not
    /// installed; it counts as empty and is listed again now and then).
    #[serde(default = "served_by_default")]
    pub served: bool,
    /// Objects that gave tweed something.
    pub objects: u64,
    /// The watch's last error since its last good event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Objects tweed refused, with why (`NS/NAME: reason`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
}

/// `peer_add` arguments: a static peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAdd {
    /// The peer's name.
    pub name: String,
    /// The pod subnets behind it (no host bits).
    pub subnets: Vec<IpNet>,
    /// Its address on the underlay.
    pub underlay_ip: IpAddr,
    /// The MAC of its VTEP.
    pub vtep_mac: MacAddr,
    /// The encapsulation it speaks.
    #[serde(default = "default_backend")]
    pub backend: Backend,
}

fn default_backend() -> Backend {
    Backend::Vxlan
}

/// `node_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesReply {
    /// This node first, then the other nodes and the static peers.
    pub nodes: Vec<NodeInfo>,
}

/// `peer_list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersReply {
    /// The static peers.
    pub peers: Vec<NodeInfo>,
}

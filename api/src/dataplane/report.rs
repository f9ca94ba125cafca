//! The answers of `stats` and `dump`: counters, node settings and flows.
//! Pure serde types, re-exported from [`super::proto`]; the dataplane fills
//! them from its counters and tables.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::proto::{MacAddr, PeerSpec, PortInfo, RouteInfo};

/// One worker's packet counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerStats {
    /// The worker's index.
    pub id: u32,
    /// Frames it received.
    pub rx: u64,
    /// Frames it sent.
    pub tx: u64,
    /// Datagrams it received from the underlay (part of `rx`).
    pub underlay_rx: u64,
    /// Datagrams it sent to the underlay (part of `tx`).
    pub underlay_tx: u64,
    /// Writes and sends that failed (a full queue, an unreachable peer).
    pub io_errors: u64,
}

/// One pod port's traffic counts, seen from the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortStats {
    /// `NAMESPACE/POD`.
    pub name: String,
    /// Frames read from the pod's tap.
    pub rx_packets: u64,
    /// Bytes read from the pod's tap.
    pub rx_bytes: u64,
    /// Frames written to the pod's tap.
    pub tx_packets: u64,
    /// Bytes written to the pod's tap.
    pub tx_bytes: u64,
}

/// Frames by the pipeline's decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionStats {
    /// Delivered to a local pod.
    pub delivered: u64,
    /// Sent to the host port.
    pub to_host: u64,
    /// Encapsulated to a peer.
    pub encapsulated: u64,
    /// Answered (ARP, ND, echo, ICMP errors).
    pub replied: u64,
}

/// Connection tracking occupancy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConntrackStats {
    /// Live flows.
    pub entries: u64,
    /// Slots.
    pub capacity: u64,
    /// Live flows evicted to make room.
    pub evictions: u64,
    /// New flows not recorded because their bucket stayed locked (a worker
    /// preempted while inserting); their packets went on as new ones each
    /// time. Absent from older dataplanes.
    #[serde(default)]
    pub busy: u64,
}

/// `stats` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsReply {
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Per pod port.
    pub ports: Vec<PortStats>,
    /// Drops by the dataplane's reason names; every reason is present.
    pub drops: BTreeMap<String, u64>,
    /// Frames by decision.
    pub actions: ActionStats,
    /// Connection tracking.
    pub conntrack: ConntrackStats,
    /// Packets denied by policy, per port, direction and rule.
    #[serde(default)]
    pub policy_drops: Vec<PolicyDrops>,
    /// The workers' tap I/O back end (`io_uring`, `epoll`, or `epoll
    /// (io_uring unavailable: ...)`); absent from older dataplanes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
}

/// Packets one rule (or a rule set's default) of one port's policy denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDrops {
    /// The port, `NAMESPACE/POD`.
    pub port: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// The rule's id; `null` = the rule set's default verdict.
    pub rule: Option<u32>,
    /// The rule's name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Packets denied.
    pub packets: u64,
}

/// Node-wide settings, as dumped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// The MAC the dataplane answers with on pod ports.
    pub gateway_mac: MacAddr,
    /// This node's VTEP MAC.
    pub vtep_mac: MacAddr,
    /// The MAC of the kernel's side of the host port.
    pub host_mac: MacAddr,
    /// The VXLAN network identifier.
    pub vni: u32,
    /// The UDP port VXLAN is sent to.
    pub vxlan_port: u16,
    /// The UDP port of flannel's UDP encapsulation.
    pub udp_port: u16,
    /// The overlay path MTU.
    pub overlay_mtu: u16,
}

/// A live flow, as dumped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowInfo {
    /// Source of the packet that created the flow.
    pub src: IpAddr,
    /// Its destination.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port (or echo identifier).
    pub src_port: u16,
    /// Destination port (or echo identifier).
    pub dst_port: u16,
    /// The flow's state, e.g. `established`.
    pub state: String,
    /// The creator's tag.
    pub tag: u32,
    /// Milliseconds since creation.
    pub age_ms: u64,
    /// Milliseconds before it expires unless refreshed.
    pub expires_in_ms: u64,
}

/// `dump` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpReply {
    /// Node-wide settings.
    pub node: NodeInfo,
    /// Every route.
    pub routes: Vec<RouteInfo>,
    /// Every pod port.
    pub ports: Vec<PortInfo>,
    /// Every peer.
    pub peers: Vec<PeerSpec>,
    /// Live flows.
    pub flows: Vec<FlowInfo>,
}

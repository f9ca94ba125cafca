//! What one scrape shows: everything [`render`](super::render) needs, gathered by the
//! daemon before rendering so rendering stays pure.

use serde::{Deserialize, Serialize};
use tweed_api::dataplane::report::StatsReply;

use crate::health::PeerHealth;

/// The state of the node at one scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// This node's name.
    pub node: String,
    /// The dataplane's counters; `None` when it did not answer.
    pub dataplane: Option<StatsReply>,
    /// How many times the daemon restarted the dataplane.
    pub dataplane_restarts: u64,
    /// Whether the store works.
    #[serde(skip)]
    pub store: crate::store::StoreHealth,
    /// Reachability of every peer, as probed.
    pub peers: Vec<PeerHealth>,
    /// Address usage of each of this node's pod subnets.
    pub ipam: Vec<PoolUsage>,
    /// The Kubernetes datasource's resources, when the node reads the API server.
    #[serde(default)]
    pub datasource: Vec<crate::api::node::ResourceStatus>,
}

/// Address usage of one pod subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolUsage {
    /// The subnet, in CIDR notation.
    pub subnet: String,
    /// Addresses that can be handed out.
    pub capacity: u64,
    /// Addresses handed out.
    pub used: u64,
}

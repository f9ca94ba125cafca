//! The `stats` and `dump` answers (`tweed_api::dataplane::report`) filled
//! from the dataplane's counters and tables. Pure.

use std::collections::BTreeMap;

use tweed_api::dataplane::proto::MacAddr;
pub use tweed_api::dataplane::report::*;

use crate::pipeline::DropReason;
use crate::table::conntrack::FlowEntry;
use crate::table::tables::NodeConfig;

/// The `drops` map of [`StatsReply`] from counters indexed by `DropReason as usize`.
pub fn drops_by_name(drops: &[u64; DropReason::COUNT]) -> BTreeMap<String, u64> {
    DropReason::ALL
        .iter()
        .map(|reason| (reason.name().to_owned(), drops[*reason as usize]))
        .collect()
}

impl From<&NodeConfig> for NodeInfo {
    fn from(node: &NodeConfig) -> Self {
        Self {
            gateway_mac: MacAddr(node.gateway_mac),
            vtep_mac: MacAddr(node.vtep_mac),
            host_mac: MacAddr(node.host_mac),
            vni: node.vni,
            vxlan_port: node.vxlan_port,
            udp_port: node.udp_port,
            overlay_mtu: node.overlay_mtu,
        }
    }
}

impl From<&FlowEntry> for FlowInfo {
    fn from(flow: &FlowEntry) -> Self {
        Self {
            src: flow.key.src,
            dst: flow.key.dst,
            protocol: flow.key.protocol,
            src_port: flow.key.src_port,
            dst_port: flow.key.dst_port,
            state: super::trace::flow_state_name(flow.state).to_owned(),
            tag: flow.tag,
            age_ms: flow.age_ms,
            expires_in_ms: flow.expires_in_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_by_name_lists_every_reason() {
        let mut drops = [0u64; DropReason::COUNT];
        drops[DropReason::SpoofedIp as usize] = 3;
        let map = drops_by_name(&drops);
        assert_eq!(map.len(), DropReason::COUNT);
        assert_eq!(map["spoofed_ip"], 3);
    }
}

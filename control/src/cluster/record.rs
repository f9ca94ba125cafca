//! What the store holds about nodes: the records peers program their
//! dataplanes from.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tweed_api::dataplane::proto::{MacAddr, PeerSpec, PortRange};

use crate::config::Backend;

/// A node as the cluster sees it: a tweed node (on its lease) or a static peer.
///
/// Nodes of different versions read each other's records during a rolling
/// upgrade, so fields a newer node adds are ignored, not refused (a refused
/// record would drop the newer node from every older node's peers); a new
/// field therefore must be safe to ignore, as `partial_checksums` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's name.
    pub name: String,
    /// Its pod subnets, IPv4 first.
    pub subnets: Vec<IpNet>,
    /// Where peers send overlay traffic.
    pub underlay_ip: IpAddr,
    /// Its VTEP MAC (the inner destination MAC of VXLAN frames to it).
    pub vtep_mac: MacAddr,
    /// The encapsulation it speaks.
    pub backend: Backend,
    /// The UDP ports it sends VXLAN from: peers drop VXLAN from its address
    /// on any other port. Absent for static peers and older records: any port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vxlan_source_ports: Option<PortRange>,
    /// It accepts VXLAN whose inner checksums are left partial (every tweed
    /// node that publishes it). Absent for static peers and older records:
    /// peers complete the checksums they send it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_checksums: bool,
}

impl NodeRecord {
    /// The node's own overlay addresses: the first address of each subnet, where
    /// it answers health probes (static peers may not).
    pub fn node_addrs(&self) -> Vec<IpAddr> {
        self.subnets.iter().filter_map(node_addr).collect()
    }

    /// The dataplane's peer entry for this node.
    pub fn peer_spec(&self) -> PeerSpec {
        PeerSpec {
            name: self.name.clone(),
            subnets: self.subnets.clone(),
            underlay_ip: self.underlay_ip,
            vtep_mac: self.vtep_mac,
            backend: self.backend,
            source_ports: self.vxlan_source_ports,
            partial_checksums: self.partial_checksums,
        }
    }

    /// Decodes a stored record.
    pub fn decode(value: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(value)
    }

    /// Encodes for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a node record always serializes")
    }
}

/// The first host address of a subnet: the node's address on the overlay.
/// (network + 1, for both families; the pool never hands it to a pod).
pub fn node_addr(subnet: &IpNet) -> Option<IpAddr> {
    let addr = match subnet.network() {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).checked_add(1)?.into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).checked_add(1)?.into()),
    };
    subnet.contains(&addr).then_some(addr)
}

/// The value of a subnet claim: who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetClaim {
    /// The holding node.
    pub node: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_nodes_record_with_fields_this_version_lacks_still_reads() {
        let newer = r#"{"name":"c","subnets":["10.244.5.0/24"],"underlay_ip":"192.168.0.3","vtep_mac":"02:77:c0:a8:00:03","backend":"vxlan","partial_checksums":true,"wireguard_key":"k"}"#;
        let record = NodeRecord::decode(newer.as_bytes()).unwrap();
        assert_eq!(record.name, "c");
        assert!(record.partial_checksums);
    }

    #[test]
    fn a_record_carries_its_vxlan_source_ports_to_the_peer_entry() {
        let json = r#"{"name":"b","subnets":["10.244.4.0/24"],"underlay_ip":"192.168.0.2","vtep_mac":"02:77:c0:a8:00:02","backend":"vxlan","vxlan_source_ports":{"first":61000,"last":61007}}"#;
        let record = NodeRecord::decode(json.as_bytes()).unwrap();
        let ports = PortRange {
            first: 61000,
            last: 61007,
        };
        assert_eq!(record.peer_spec().source_ports, Some(ports));
        assert_eq!(NodeRecord::decode(&record.encode()).unwrap(), record);
        // A record without them (a static peer, an older node) accepts any port.
        let old = r#"{"name":"b","subnets":["10.244.4.0/24"],"underlay_ip":"192.168.0.2","vtep_mac":"02:77:c0:a8:00:02","backend":"vxlan"}"#;
        assert_eq!(
            NodeRecord::decode(old.as_bytes())
                .unwrap()
                .peer_spec()
                .source_ports,
            None
        );
    }

    #[test]
    fn the_node_address_is_the_first_host_of_each_subnet() {
        let record = NodeRecord {
            name: "a".into(),
            subnets: vec![
                "10.244.3.0/24".parse().unwrap(),
                "fd00:0:0:3::/64".parse().unwrap(),
            ],
            underlay_ip: "192.168.0.1".parse().unwrap(),
            vtep_mac: "02:77:c0:a8:00:01".parse().unwrap(),
            backend: Backend::Vxlan,
            vxlan_source_ports: None,
            partial_checksums: false,
        };
        let addrs: Vec<String> = record
            .node_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(addrs, ["10.244.3.1", "fd00:0:0:3::1"]);
        assert_eq!(NodeRecord::decode(&record.encode()).unwrap(), record);
        assert_eq!(record.peer_spec().subnets, record.subnets);
    }
}

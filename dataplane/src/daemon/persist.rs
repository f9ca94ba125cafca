//! Converting the control side's state to and from the state file, so a
//! restarted dataplane finds its ports, peers, routes and policy, and the
//! tap removals it had not finished.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::api::state::{PortRecord, RemovalRecord, STATE_VERSION, StateFile};
use crate::table::nexthop::PortId;
use tweed_api::dataplane::proto::{PeerSpec, PortInfo, RouteSpec, RouteVia, RuleSetSpec};

/// The state file for these ports, peers, static routes and pending tap
/// removals.
pub fn state_of<'a>(
    ports: impl Iterator<Item = (&'a PortInfo, &'a RuleSetSpec, &'a RuleSetSpec)>,
    peers: &[PeerSpec],
    routes: &BTreeMap<IpNet, RouteVia>,
    removing: impl Iterator<Item = &'a RemovalRecord>,
) -> StateFile {
    StateFile {
        version: STATE_VERSION,
        ports: ports
            .map(|(info, ingress, egress)| PortRecord {
                id: info.id.0,
                name: info.name.clone(),
                netns: info.netns.clone(),
                ifname: info.ifname.clone(),
                mac: info.mac,
                ipv4: info.ipv4,
                ipv6: info.ipv6,
                mtu: info.mtu,
                ingress: ingress.clone(),
                egress: egress.clone(),
            })
            .collect(),
        peers: peers.to_vec(),
        routes: routes
            .iter()
            .map(|(prefix, via)| RouteSpec {
                prefix: *prefix,
                via: *via,
            })
            .collect(),
        removing: removing.cloned().collect(),
    }
}

/// The ports of a state file, with their policy.
pub fn ports_of(state: &StateFile) -> Vec<(PortInfo, RuleSetSpec, RuleSetSpec)> {
    state
        .ports
        .iter()
        .map(|p| {
            let info = PortInfo {
                id: PortId(p.id),
                name: p.name.clone(),
                netns: p.netns.clone(),
                ifname: p.ifname.clone(),
                mac: p.mac,
                ipv4: p.ipv4,
                ipv6: p.ipv6,
                mtu: p.mtu,
            };
            (info, p.ingress.clone(), p.egress.clone())
        })
        .collect()
}

/// The peers of a state file.
pub fn peers_of(state: &StateFile) -> Vec<PeerSpec> {
    state.peers.clone()
}

/// The static routes of a state file.
pub fn routes_of(state: &StateFile) -> Vec<(IpNet, RouteVia)> {
    state
        .routes
        .iter()
        .map(|r| (r.prefix.trunc(), r.via))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweed_api::dataplane::proto::MacAddr;

    #[test]
    fn state_round_trips_through_the_file_types() {
        let info = PortInfo {
            id: PortId(3),
            name: "ns/pod".into(),
            netns: "/run/netns/pod".into(),
            ifname: "eth0".into(),
            mac: MacAddr([0x0a, 0x58, 10, 244, 1, 2]),
            ipv4: Some("10.244.1.2".parse().expect("ip")),
            ipv6: None,
            mtu: 1450,
        };
        let ingress = RuleSetSpec::default();
        let egress = RuleSetSpec::default();
        let mut routes = BTreeMap::new();
        routes.insert("10.9.0.0/16".parse().expect("cidr"), RouteVia::Blackhole);
        routes.insert("10.244.1.1/32".parse().expect("cidr"), RouteVia::Node);
        let removal = RemovalRecord {
            name: "ns/gone".into(),
            netns: "/run/netns/gone".into(),
            ifname: "eth0".into(),
        };
        let state = state_of(
            [(&info, &ingress, &egress)].into_iter(),
            &[],
            &routes,
            [&removal].into_iter(),
        );
        assert_eq!(state.removing, vec![removal]);
        let ports = ports_of(&state);
        assert_eq!(ports, vec![(info, ingress, egress)]);
        assert_eq!(
            routes_of(&state),
            vec![
                ("10.9.0.0/16".parse().expect("cidr"), RouteVia::Blackhole),
                ("10.244.1.1/32".parse().expect("cidr"), RouteVia::Node),
            ]
        );
    }
}

//! The API's wire types (`tweed_api::dataplane::proto`) to and from the
//! tables' own: a peer as set and listed, a static route's next hop. Pure.

use tweed_api::dataplane::proto::{MacAddr, PeerSpec, RouteVia};

use crate::table::nexthop::NextHop;
use crate::table::peers::Peer;

impl From<&Peer> for PeerSpec {
    fn from(peer: &Peer) -> Self {
        Self {
            name: peer.name.clone(),
            subnets: peer.subnets.clone(),
            underlay_ip: peer.underlay_ip,
            vtep_mac: MacAddr(peer.vtep_mac),
            backend: peer.backend,
            source_ports: peer.source_ports,
            partial_checksums: peer.partial_checksums,
        }
    }
}

impl From<PeerSpec> for Peer {
    fn from(spec: PeerSpec) -> Self {
        Self {
            name: spec.name,
            subnets: spec.subnets,
            underlay_ip: spec.underlay_ip,
            vtep_mac: spec.vtep_mac.0,
            backend: spec.backend,
            source_ports: spec.source_ports,
            partial_checksums: spec.partial_checksums,
        }
    }
}

impl From<RouteVia> for NextHop {
    fn from(via: RouteVia) -> Self {
        match via {
            RouteVia::Host => NextHop::Host,
            RouteVia::Blackhole => NextHop::Blackhole,
            RouteVia::Node => NextHop::Node,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_route_goes_to_the_node() {
        assert_eq!(NextHop::from(RouteVia::Node), NextHop::Node);
        assert_eq!(NextHop::from(RouteVia::Host), NextHop::Host);
        assert_eq!(NextHop::from(RouteVia::Blackhole), NextHop::Blackhole);
    }

    #[test]
    fn a_peer_round_trips_through_its_spec() {
        let spec = PeerSpec {
            name: "node2".into(),
            subnets: vec!["10.244.2.0/24".parse().expect("cidr")],
            underlay_ip: "192.168.0.2".parse().expect("ip"),
            vtep_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            backend: tweed_api::dataplane::proto::Backend::Vxlan,
            source_ports: None,
            partial_checksums: true,
        };
        let peer = Peer::from(spec.clone());
        assert_eq!(PeerSpec::from(&peer), spec);
    }
}

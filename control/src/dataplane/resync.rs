//! What to change in the dataplane so it holds exactly the daemon's state:
//! pure diffs of desired against listed.
//!
//! Only what the daemon owns is touched: the peers, the static routes it sets
//! (the node's overlay addresses), and the pod ports of its pod records. Ports
//! the daemon has no record of are removed (a pod whose DEL deleted the record
//! but crashed before the port); records without a port are added (a crash
//! between persisting an allocation and creating its port).

use std::collections::{BTreeMap, BTreeSet};

use tweed_api::dataplane::proto::{
    PeerSpec, PortInfo, RouteInfo, RouteSpec, RouteTarget, RouteVia,
};

/// Peers to set (new or changed) and to remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerChanges {
    /// Set these (peer_set replaces by name).
    pub set: Vec<PeerSpec>,
    /// Remove these names.
    pub remove: Vec<String>,
}

impl PeerChanges {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// The peer changes that turn `current` into `desired`.
pub fn peers(desired: &[PeerSpec], current: &[PeerSpec]) -> PeerChanges {
    let current: BTreeMap<&str, &PeerSpec> = current.iter().map(|p| (p.name.as_str(), p)).collect();
    let wanted: BTreeSet<&str> = desired.iter().map(|p| p.name.as_str()).collect();
    PeerChanges {
        set: desired
            .iter()
            .filter(|p| current.get(p.name.as_str()) != Some(p))
            .cloned()
            .collect(),
        remove: current
            .keys()
            .filter(|name| !wanted.contains(*name))
            .map(|name| (*name).to_owned())
            .collect(),
    }
}

/// The static routes of `desired` that `current` lacks or routes elsewhere.
pub fn routes(desired: &[RouteSpec], current: &[RouteInfo]) -> Vec<RouteSpec> {
    desired
        .iter()
        .filter(|want| {
            let target = match want.via {
                RouteVia::Host => RouteTarget::Host,
                RouteVia::Blackhole => RouteTarget::Blackhole,
                RouteVia::Node => RouteTarget::Node,
            };
            !current
                .iter()
                .any(|r| r.prefix == want.prefix && r.next_hop == target)
        })
        .cloned()
        .collect()
}

/// A pod port the daemon wants: its name and how to create it.
pub trait WantedPort {
    /// The dataplane port name.
    fn port_name(&self) -> &str;
    /// Whether `port` is this pod's port as created (addresses and place).
    fn matches(&self, port: &PortInfo) -> bool;
}

/// Port changes: which wanted ports to create, and which listed ports to remove
/// (unknown, or different from the record: removed and then created again).
#[derive(Debug, PartialEq, Eq)]
pub struct PortChanges<'a, W> {
    /// Create these.
    pub add: Vec<&'a W>,
    /// Remove these names.
    pub remove: Vec<String>,
}

/// The port changes that turn `current` into `wanted`.
pub fn ports<'a, W: WantedPort>(wanted: &'a [W], current: &[PortInfo]) -> PortChanges<'a, W> {
    let by_name: BTreeMap<&str, &PortInfo> = current.iter().map(|p| (p.name.as_str(), p)).collect();
    let names: BTreeSet<&str> = wanted.iter().map(W::port_name).collect();
    let mut remove: Vec<String> = current
        .iter()
        .filter(|p| !names.contains(p.name.as_str()))
        .map(|p| p.name.clone())
        .collect();
    let mut add = Vec::new();
    for want in wanted {
        match by_name.get(want.port_name()) {
            Some(port) if want.matches(port) => {}
            Some(port) => {
                remove.push(port.name.clone());
                add.push(want);
            }
            None => add.push(want),
        }
    }
    PortChanges { add, remove }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweed_api::dataplane::proto::MacAddr;
    use tweed_dataplane::table::nexthop::PortId;
    use tweed_dataplane::table::peers::Backend;

    fn peer(name: &str, ip: &str) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            subnets: vec!["10.244.2.0/24".parse().unwrap()],
            underlay_ip: ip.parse().unwrap(),
            vtep_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            backend: Backend::Vxlan,
            source_ports: None,
            partial_checksums: false,
        }
    }

    #[test]
    fn peers_diff_sets_new_and_changed_and_removes_gone() {
        let current = [
            peer("a", "192.168.0.1"),
            peer("b", "192.168.0.2"),
            peer("c", "192.168.0.3"),
        ];
        let desired = [
            peer("a", "192.168.0.1"),
            peer("b", "192.168.0.9"),
            peer("d", "192.168.0.4"),
        ];
        let changes = peers(&desired, &current);
        let set: Vec<&str> = changes.set.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(set, ["b", "d"]);
        assert_eq!(changes.remove, ["c"]);
        assert!(peers(&desired, &desired).is_empty());
    }

    #[test]
    fn routes_diff_keeps_what_is_there() {
        let want = RouteSpec {
            prefix: "10.244.1.1/32".parse().unwrap(),
            via: RouteVia::Node,
        };
        let there = RouteInfo {
            prefix: want.prefix,
            next_hop: RouteTarget::Node,
        };
        assert!(routes(std::slice::from_ref(&want), &[there]).is_empty());
        assert_eq!(routes(std::slice::from_ref(&want), &[]), vec![want]);
    }

    struct Want(&'static str, &'static str);
    impl WantedPort for Want {
        fn port_name(&self) -> &str {
            self.0
        }
        fn matches(&self, port: &PortInfo) -> bool {
            port.ipv4.map(|a| a.to_string()).as_deref() == Some(self.1)
        }
    }

    fn port(name: &str, ip: &str) -> PortInfo {
        PortInfo {
            id: PortId(0),
            name: name.into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            ipv4: Some(ip.parse().unwrap()),
            ipv6: None,
            mtu: 1450,
        }
    }

    #[test]
    fn ports_diff_adds_missing_replaces_different_removes_unknown() {
        let wanted = [
            Want("ns/a", "10.0.0.2"),
            Want("ns/b", "10.0.0.3"),
            Want("ns/c", "10.0.0.4"),
        ];
        let current = [
            port("ns/a", "10.0.0.2"),
            port("ns/b", "10.0.0.9"),
            port("ns/z", "10.0.0.5"),
        ];
        let changes = ports(&wanted, &current);
        let add: Vec<&str> = changes.add.iter().map(|w| w.0).collect();
        assert_eq!(add, ["ns/b", "ns/c"]);
        assert_eq!(changes.remove, ["ns/z", "ns/b"]);
    }
}

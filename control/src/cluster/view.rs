//! The daemon's view of the cluster: every node record and static peer, kept
//! current from a list followed by prefix watches.
//!
//! Applying events is pure; watch events that overlap the initial list (set up
//! before it, so none is missed) converge to the same view because they arrive
//! in revision order.

use std::collections::BTreeMap;

use tweed_api::dataplane::proto::PeerSpec;

use super::keys;
use super::record::NodeRecord;
use crate::store::{KeyValue, WatchEvent};

/// Every node and static peer the store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// tweed nodes (this one included), by name.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Static peers, by name.
    pub statics: BTreeMap<String, NodeRecord>,
    /// Records that did not decode, by key, with the reason (shown by `status`).
    pub corrupt: BTreeMap<String, String>,
}

impl ClusterView {
    /// The view of a fresh listing of both prefixes.
    pub fn from_lists(nodes: &[KeyValue], statics: &[KeyValue]) -> Self {
        let mut view = ClusterView::default();
        for kv in nodes.iter().chain(statics) {
            view.put(&kv.key, &kv.value);
        }
        view
    }

    /// Applies one watch event; false when it was about nothing the view holds.
    pub fn apply(&mut self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Put { key, value, .. } => self.put(key, value),
            WatchEvent::Delete { key, .. } => {
                self.corrupt.remove(key);
                match self.slot(key) {
                    Some((map, name)) => map.remove(&name).is_some(),
                    None => false,
                }
            }
        }
    }

    fn put(&mut self, key: &str, value: &[u8]) -> bool {
        let Some((map, name)) = self.slot(key) else {
            return false;
        };
        match NodeRecord::decode(value) {
            Ok(record) if record.name == name => {
                map.insert(name, record);
                self.corrupt.remove(key);
            }
            Ok(record) => {
                map.remove(&name);
                self.corrupt.insert(
                    key.to_owned(),
                    format!("holds the record of {:?}", record.name),
                );
            }
            Err(e) => {
                map.remove(&name);
                self.corrupt.insert(key.to_owned(), e.to_string());
            }
        }
        true
    }

    fn slot(&mut self, key: &str) -> Option<(&mut BTreeMap<String, NodeRecord>, String)> {
        if let Some(name) = keys::name_of(keys::NODES, key) {
            Some((&mut self.nodes, name.to_owned()))
        } else {
            let name = keys::name_of(keys::STATIC_PEERS, key)?;
            Some((&mut self.statics, name.to_owned()))
        }
    }

    /// The peers node `this` should program: every other node, then every static
    /// peer whose name no node uses (a node's record wins a name clash).
    pub fn peers_of(&self, this: &str) -> Vec<PeerSpec> {
        let nodes = self.nodes.values().filter(|n| n.name != this);
        let statics = self
            .statics
            .values()
            .filter(|s| s.name != this && !self.nodes.contains_key(&s.name));
        nodes.chain(statics).map(NodeRecord::peer_spec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;
    use crate::store::Revision;

    fn record(name: &str, third: u8) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            subnets: vec![format!("10.244.{third}.0/24").parse().unwrap()],
            underlay_ip: format!("192.168.0.{third}").parse().unwrap(),
            vtep_mac: format!("02:77:c0:a8:00:{third:02x}").parse().unwrap(),
            backend: Backend::Vxlan,
            vxlan_source_ports: None,
            partial_checksums: false,
        }
    }

    fn put(key: String, record: &NodeRecord) -> WatchEvent {
        WatchEvent::Put {
            key,
            value: record.encode(),
            revision: Revision(1),
        }
    }

    #[test]
    fn peers_are_the_other_nodes_and_unshadowed_static_peers() {
        let mut view = ClusterView::default();
        view.apply(&put(keys::node("a"), &record("a", 1)));
        view.apply(&put(keys::node("b"), &record("b", 2)));
        view.apply(&put(keys::static_peer("gw"), &record("gw", 9)));
        view.apply(&put(keys::static_peer("b"), &record("b", 7)));
        let names: Vec<String> = view.peers_of("a").into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["b", "gw"]);
        assert_eq!(view.peers_of("a")[0].subnets, record("b", 2).subnets);
    }

    #[test]
    fn a_delete_removes_and_a_bad_record_is_reported_not_used() {
        let mut view = ClusterView::default();
        view.apply(&put(keys::node("b"), &record("b", 2)));
        assert!(view.apply(&WatchEvent::Delete {
            key: keys::node("b"),
            revision: Revision(2)
        }));
        assert!(view.nodes.is_empty());
        view.apply(&WatchEvent::Put {
            key: keys::node("c"),
            value: b"{".to_vec(),
            revision: Revision(3),
        });
        view.apply(&put(keys::node("d"), &record("e", 5)));
        assert!(view.nodes.is_empty());
        assert_eq!(view.corrupt.len(), 2);
        assert!(!view.apply(&put("/tweed/v1/other/x".into(), &record("x", 1))));
    }
}

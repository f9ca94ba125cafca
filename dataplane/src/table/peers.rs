//! Peer nodes: where their pod subnets are reached on the underlay.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

pub use tweed_api::dataplane::values::{Backend, PortRange};

use super::endpoints::Mac;
use super::nexthop::PeerId;

/// A node that hosts pod subnets reached through the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's name (its node name).
    pub name: String,
    /// The pod subnets behind it.
    pub subnets: Vec<IpNet>,
    /// Its address on the underlay.
    pub underlay_ip: IpAddr,
    /// The MAC of its VTEP: the inner destination MAC of VXLAN frames to it.
    pub vtep_mac: Mac,
    /// The encapsulation it speaks.
    pub backend: Backend,
    /// The UDP source ports it sends VXLAN from, when it publishes them (a
    /// tweed node); `None` accepts any (a kernel `vxlan` device picks its
    /// source port per flow from the whole ephemeral range).
    pub source_ports: Option<PortRange>,
    /// Whether it accepts VXLAN whose inner checksums are left partial
    /// ([`crate::wire::vxlan::FLAG_PARTIAL_CSUM`]): a tweed node that says
    /// so. Neither tweed node then sums the payload; the outer UDP checksum
    /// covers it on the wire.
    pub partial_checksums: bool,
}

/// The peer table of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    by_id: Vec<Option<Peer>>,
    by_underlay: HashMap<IpAddr, PeerId>,
}

impl Peers {
    /// The peer with this id.
    #[inline]
    pub fn get(&self, id: PeerId) -> Option<&Peer> {
        self.by_id.get(id.0 as usize)?.as_ref()
    }

    /// The peer whose underlay address is `ip`: who sent an encapsulated packet.
    #[inline]
    pub fn by_underlay(&self, ip: IpAddr) -> Option<(PeerId, &Peer)> {
        let id = *self.by_underlay.get(&ip)?;
        Some((id, self.get(id)?))
    }

    /// The id of the peer called `name`.
    pub fn id_of(&self, name: &str) -> Option<PeerId> {
        self.by_id
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.name == name))
            .map(|i| PeerId(i as u32))
    }

    /// Every peer with its id.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &Peer)> {
        self.by_id
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (PeerId(i as u32), p)))
    }

    /// Adds a peer under the lowest free id, or replaces the one with the same
    /// name (keeping its id). Returns the id.
    pub fn upsert(&mut self, peer: Peer) -> PeerId {
        let id = self.id_of(&peer.name).unwrap_or_else(|| {
            let index = self
                .by_id
                .iter()
                .position(Option::is_none)
                .unwrap_or(self.by_id.len());
            PeerId(index as u32)
        });
        let index = id.0 as usize;
        if self.by_id.len() <= index {
            self.by_id.resize(index + 1, None);
        }
        if let Some(old) = self.by_id[index].take() {
            self.by_underlay.remove(&old.underlay_ip);
        }
        self.by_underlay.insert(peer.underlay_ip, id);
        self.by_id[index] = Some(peer);
        id
    }

    /// Removes the peer called `name`.
    pub fn remove(&mut self, name: &str) -> Option<(PeerId, Peer)> {
        let id = self.id_of(name)?;
        let peer = self.by_id.get_mut(id.0 as usize)?.take()?;
        if self.by_underlay.get(&peer.underlay_ip) == Some(&id) {
            self.by_underlay.remove(&peer.underlay_ip);
        }
        Some((id, peer))
    }
}

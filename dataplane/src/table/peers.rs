//! Peer nodes: where their pod subnets are reached on the underlay.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::endpoints::Mac;
use super::nexthop::PeerId;

/// How packets to a peer are encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// VXLAN (RFC 7348): the Ethernet frame behind an 8-byte header in UDP.
    Vxlan,
    /// flannel's UDP format: the bare IP packet as the UDP payload.
    Udp,
}

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

/// An inclusive range of UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    #[inline]
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// How many ports the range holds.
    pub fn len(self) -> usize {
        usize::from(self.last.saturating_sub(self.first)) + 1
    }

    /// Never: a range holds at least one port.
    pub fn is_empty(self) -> bool {
        false
    }

    /// The ports in order.
    pub fn ports(self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    /// `FIRST-LAST` or a single `PORT`; port 0 and a reversed range are refused.
    fn from_str(s: &str) -> Result<Self, String> {
        let (first, last) = s.split_once('-').unwrap_or((s, s));
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("{p:?} is not a port: {e}"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first == 0 {
            return Err("port 0 cannot be bound as a source port".into());
        }
        if last < first {
            return Err(format!("{first}-{last} ends before it starts"));
        }
        Ok(PortRange { first, last })
    }
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

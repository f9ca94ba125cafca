//! Values the dataplane's API carries and its tables hold as they are: a
//! route's next hop as listed, a rule set's verdict, a MAC, port and peer
//! indices, a peer's encapsulation and a range of UDP ports. The dataplane's
//! `table` modules re-export the last four, so one definition serves the wire
//! and the packet path. Pure; `proto` re-exports them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A route's next hop as listed: `port NS/POD`, `peer NAME`, `host`, `node` or `blackhole`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// A local pod, by port name.
    Port(String),
    /// A peer node, by name.
    Peer(String),
    /// The node itself.
    Host,
    /// The node's own address on the overlay.
    Node,
    /// Dropped.
    Blackhole,
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Port(name) => write!(f, "port {name}"),
            RouteTarget::Peer(name) => write!(f, "peer {name}"),
            RouteTarget::Host => f.write_str("host"),
            RouteTarget::Node => f.write_str("node"),
            RouteTarget::Blackhole => f.write_str("blackhole"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(RouteTarget::Host),
            "node" => Ok(RouteTarget::Node),
            "blackhole" => Ok(RouteTarget::Blackhole),
            _ => match s.split_once(' ') {
                Some(("port", name)) => Ok(RouteTarget::Port(name.to_owned())),
                Some(("peer", name)) => Ok(RouteTarget::Peer(name.to_owned())),
                _ => Err(format!(
                    "{s:?} is not a next hop (`port NAME`, `peer NAME`, `host`, `node` or `blackhole`)"
                )),
            },
        }
    }
}

impl Serialize for RouteTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RouteTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The final decision of a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSpec {
    /// Let the packet through.
    Allow,
    /// Drop it.
    Deny,
}

/// A 48-bit Ethernet address.
pub type Mac = [u8; 6];

/// Index of a pod port (a tap) in the endpoint table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PortId(pub u32);

/// Index of a peer node in the peer table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PeerId(pub u32);

/// How packets to a peer are encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// VXLAN (RFC 7348): the Ethernet frame behind an 8-byte header in UDP.
    Vxlan,
    /// flannel's UDP format: the bare IP packet as the UDP payload.
    Udp,
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

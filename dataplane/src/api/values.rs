//! Values that both the request and reply types ([`super::proto`]) and a
//! trace ([`super::trace`]) carry: a route's next hop as listed and a rule
//! set's verdict. Pure; `proto` re-exports them.

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

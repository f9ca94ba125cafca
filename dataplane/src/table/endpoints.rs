//! Local pods: the port each is attached to, its MAC, addresses, identity and
//! compiled policy.
//!
//! Indexed by [`PortId`] (dense, so the pipeline reaches an endpoint with one
//! array access) and by IP address (for the API and trace).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub use tweed_api::dataplane::values::Mac;

use super::acl::{Classifier, RuleId};
use super::nexthop::PortId;

/// A pod attached to this node.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The tap the pod is attached to.
    pub port: PortId,
    /// A human name, `NAMESPACE/POD` when known.
    pub name: String,
    /// The MAC of the pod's interface: the only source MAC it may send from.
    pub mac: Mac,
    /// The pod's IPv4 address, if any: the only IPv4 source it may send from.
    pub ipv4: Option<Ipv4Addr>,
    /// The pod's IPv6 address, if any.
    pub ipv6: Option<Ipv6Addr>,
    /// A numeric identity for policy and flow logs.
    pub identity: u32,
    /// Policy for traffic arriving at the pod (remote = the source).
    pub ingress: Arc<Classifier>,
    /// Policy for traffic leaving the pod (remote = the destination).
    pub egress: Arc<Classifier>,
    /// The names of its rules that have one, for flow logs.
    pub rule_names: Arc<RuleNames>,
}

/// Rule names by (ingress?, rule id): where each rule came from.
pub type RuleNames = HashMap<(bool, RuleId), Arc<str>>;

impl Endpoint {
    /// Whether `ip` is one of the pod's addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.ipv4 == Some(v4),
            IpAddr::V6(v6) => self.ipv6 == Some(v6),
        }
    }
}

/// The endpoint table of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    by_port: Vec<Option<Arc<Endpoint>>>,
    by_ip: HashMap<IpAddr, PortId>,
}

impl Endpoints {
    /// The endpoint on `port`, if any.
    #[inline]
    pub fn get(&self, port: PortId) -> Option<&Endpoint> {
        self.by_port.get(port.0 as usize)?.as_deref()
    }

    /// The endpoint that owns `ip`, if any.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&Endpoint> {
        self.get(*self.by_ip.get(&ip)?)
    }

    /// Every endpoint, by port.
    pub fn iter(&self) -> impl Iterator<Item = &Endpoint> {
        self.by_port.iter().filter_map(|e| e.as_deref())
    }

    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.by_port.iter().filter(|e| e.is_some()).count()
    }

    /// Whether there are no endpoints.
    pub fn is_empty(&self) -> bool {
        self.by_port.iter().all(Option::is_none)
    }

    /// Adds or replaces the endpoint on its port, returning the one it replaced.
    pub fn insert(&mut self, endpoint: Endpoint) -> Option<Arc<Endpoint>> {
        let index = endpoint.port.0 as usize;
        if self.by_port.len() <= index {
            self.by_port.resize(index + 1, None);
        }
        let old = self.by_port[index].take();
        if let Some(old) = &old {
            self.forget_addresses(old);
        }
        for ip in addresses(&endpoint) {
            self.by_ip.insert(ip, endpoint.port);
        }
        self.by_port[index] = Some(Arc::new(endpoint));
        old
    }

    /// Removes the endpoint on `port`.
    pub fn remove(&mut self, port: PortId) -> Option<Arc<Endpoint>> {
        let old = self.by_port.get_mut(port.0 as usize)?.take();
        if let Some(old) = &old {
            self.forget_addresses(old);
        }
        while matches!(self.by_port.last(), Some(None)) {
            self.by_port.pop();
        }
        old
    }

    /// The lowest port index not in use.
    pub fn free_port(&self) -> PortId {
        let index = self
            .by_port
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.by_port.len());
        PortId(index as u32)
    }

    fn forget_addresses(&mut self, endpoint: &Endpoint) {
        for ip in addresses(endpoint) {
            if self.by_ip.get(&ip) == Some(&endpoint.port) {
                self.by_ip.remove(&ip);
            }
        }
    }
}

fn addresses(endpoint: &Endpoint) -> impl Iterator<Item = IpAddr> {
    endpoint
        .ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(endpoint.ipv6.map(IpAddr::V6))
}

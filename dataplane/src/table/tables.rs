//! The snapshot workers forward with, and the single writer that builds it.
//!
//! A [`Tables`] value is immutable: workers load the current one through an
//! atomic pointer (an `ArcSwap` in the process) once per batch and never block.
//! [`TablesWriter`] owns the mutable state (routes, endpoints, peers), applies
//! changes, and [`TablesWriter::publish`] returns the next snapshot. Route
//! tables are shared copy-on-write between snapshots, so publishing costs what
//! changed, not the size of the tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;

use super::endpoints::{Endpoint, Endpoints, Mac};
use super::lpm::{Lpm, LpmError, LpmWriter};
use super::nexthop::{NextHop, PeerId, PortId};
use super::peers::{Backend, Peer, Peers};
use super::service::ServiceTable;

/// The gateway address every pod routes through (answered by proxy ARP).
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The source a pod's connection to itself through a native Service
/// arrives from (a hairpin: its own address would be a martian to it, as
/// kube-proxy masquerades such connections). Link-local, next to the
/// gateway, so the pod's reply goes through the gateway like any other.
pub const HAIRPIN_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 2);
/// The IPv6 hairpin source (see [`HAIRPIN_V4`]).
pub const HAIRPIN_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
/// The IPv6 gateway every pod routes through (answered by neighbour discovery).
pub const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Node-wide settings the pipeline needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The MAC the dataplane answers with on every pod port (the gateway's).
    pub gateway_mac: Mac,
    /// The MAC of this node's VTEP: the inner source MAC of VXLAN frames we
    /// send and the inner destination MAC we accept.
    pub vtep_mac: Mac,
    /// The MAC of the kernel's side of the host port (tweed0): the destination
    /// MAC of frames to the host.
    pub host_mac: Mac,
    /// The VXLAN network identifier.
    pub vni: u32,
    /// The UDP port VXLAN is sent to.
    pub vxlan_port: u16,
    /// The UDP port flannel's UDP encapsulation is sent to.
    pub udp_port: u16,
    /// The largest IP packet a pod may send across the overlay (path MTU).
    pub overlay_mtu: u16,
    /// This node's underlay address, when it is bound to one: pods may not
    /// send to its tunnel ports any more than to a peer's.
    pub underlay_ip: Option<IpAddr>,
    /// The cluster's Service address ranges (kube-proxy's
    /// `--service-cluster-ip-range`): a pod's packet to one is handed to the
    /// host without its egress policy, which applies when the node's
    /// kernel hands the translated packet back (see `pipeline::flow_tag`).
    pub service_cidrs: Vec<IpNet>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            gateway_mac: [0xee, 0xee, 0xee, 0xee, 0xee, 0xee],
            vtep_mac: [0xee, 0xee, 0xee, 0xee, 0xee, 0xee],
            host_mac: [0; 6],
            vni: 1,
            vxlan_port: crate::wire::vxlan::DEFAULT_PORT,
            udp_port: 8285,
            overlay_mtu: 1450,
            underlay_ip: None,
            service_cidrs: Vec::new(),
        }
    }
}

/// One immutable generation of every table the pipeline reads.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Increases with every publish.
    pub generation: u64,
    /// Node-wide settings.
    pub node: NodeConfig,
    /// IPv4 routes.
    pub fib4: Lpm<u32>,
    /// IPv6 routes.
    pub fib6: Lpm<u128>,
    /// Local pods.
    pub endpoints: Endpoints,
    /// Peer nodes.
    pub peers: Peers,
    /// Native Services (empty when kube-proxy translates them).
    pub services: Arc<ServiceTable>,
    /// This node's own overlay addresses (host routes to [`NextHop::Node`]).
    pub node_addrs: NodeAddrs,
}

/// This node's own overlay addresses, one per family at most: the source a
/// connection from outside the cluster is given when a native Service sends
/// it to any node's backend (so the reply comes back here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The IPv4 one.
    pub v4: Option<Ipv4Addr>,
    /// The IPv6 one.
    pub v6: Option<Ipv6Addr>,
}

impl NodeAddrs {
    /// The address of `like`'s family, if the node has one.
    pub fn of_family(&self, like: IpAddr) -> Option<IpAddr> {
        match like {
            IpAddr::V4(_) => self.v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.v6.map(IpAddr::V6),
        }
    }

    /// Notes a route change: a host route to the node sets the address of
    /// its family; removing that route clears it.
    fn note(&mut self, prefix: IpNet, hop: Option<NextHop>) {
        let host = prefix.prefix_len() == prefix.max_prefix_len();
        let is_node = host && hop == Some(NextHop::Node);
        match prefix.addr() {
            IpAddr::V4(a) if is_node => self.v4 = Some(a),
            IpAddr::V6(a) if is_node => self.v6 = Some(a),
            IpAddr::V4(a) if self.v4 == Some(a) => self.v4 = None,
            IpAddr::V6(a) if self.v6 == Some(a) => self.v6 = None,
            _ => {}
        }
    }
}

impl Tables {
    /// The next hop for `ip`, if any route covers it.
    #[inline]
    pub fn route(&self, ip: IpAddr) -> Option<NextHop> {
        match ip {
            IpAddr::V4(v4) => self.route_v4(u32::from(v4)),
            IpAddr::V6(v6) => self.route_v6(u128::from(v6)),
        }
    }

    /// The next hop for an IPv4 destination.
    #[inline]
    pub fn route_v4(&self, ip: u32) -> Option<NextHop> {
        NextHop::decode(self.fib4.lookup(ip)?)
    }

    /// The next hop for an IPv6 destination.
    #[inline]
    pub fn route_v6(&self, ip: u128) -> Option<NextHop> {
        NextHop::decode(self.fib6.lookup(ip)?)
    }

    /// Whether `ip` is a node's underlay address: a peer's, or this node's own.
    #[inline]
    pub fn is_node_underlay(&self, ip: IpAddr) -> bool {
        self.node.underlay_ip == Some(ip) || self.peers.by_underlay(ip).is_some()
    }

    /// The route that covers `ip` and its next hop, for trace and dumps.
    pub fn route_with_prefix(&self, ip: IpAddr) -> Option<(IpNet, NextHop)> {
        let (value, len) = match ip {
            IpAddr::V4(v4) => self.fib4.lookup_with_len(u32::from(v4))?,
            IpAddr::V6(v6) => self.fib6.lookup_with_len(u128::from(v6))?,
        };
        let net = IpNet::new(ip, len).ok()?.trunc();
        Some((net, NextHop::decode(value)?))
    }
}

/// Why a table change was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The route table refused the prefix or value.
    #[error("route {prefix}: {source}")]
    Route {
        prefix: IpNet,
        #[source]
        source: LpmError,
    },
    /// A port or peer index does not fit in a route.
    #[error("index {0} is too large for a route")]
    IndexTooLarge(u32),
    /// Another endpoint already owns this address.
    #[error("address {ip} already belongs to port {owner}")]
    AddressInUse { ip: IpAddr, owner: u32 },
    /// No endpoint on this port.
    #[error("no endpoint on port {0}")]
    NoSuchPort(u32),
    /// No peer with this name.
    #[error("no peer named {0:?}")]
    NoSuchPeer(String),
    /// A peer's subnet is already routed elsewhere.
    #[error("subnet {subnet} is already routed to {existing:?}")]
    SubnetInUse { subnet: IpNet, existing: NextHop },
}

/// The single writer of the tables.
#[derive(Debug, Default)]
pub struct TablesWriter {
    generation: u64,
    node: NodeConfig,
    fib4: LpmWriter<u32>,
    fib6: LpmWriter<u128>,
    endpoints: Endpoints,
    peers: Peers,
    services: Arc<ServiceTable>,
    node_addrs: NodeAddrs,
}

impl TablesWriter {
    /// Empty tables with these node settings.
    pub fn new(node: NodeConfig) -> Self {
        Self {
            node,
            ..Self::default()
        }
    }

    /// The node settings.
    pub fn node(&self) -> &NodeConfig {
        &self.node
    }

    /// Replaces the node settings.
    pub fn set_node(&mut self, node: NodeConfig) {
        self.node = node;
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The current peers.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The next hop routed for exactly `prefix`, if any.
    pub fn route(&self, prefix: IpNet) -> Option<NextHop> {
        let value = match prefix {
            IpNet::V4(n) => self.fib4.get(u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => self.fib6.get(u128::from(n.network()), n.prefix_len()),
        }?;
        NextHop::decode(value)
    }

    /// Every route as (prefix, next hop).
    pub fn routes(&self) -> Vec<(IpNet, NextHop)> {
        let v4 = self.fib4.iter().filter_map(|(p, len, v)| {
            let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(p)), len).ok()?;
            Some((net, NextHop::decode(v)?))
        });
        let v6 = self.fib6.iter().filter_map(|(p, len, v)| {
            let net = IpNet::new(IpAddr::V6(Ipv6Addr::from(p)), len).ok()?;
            Some((net, NextHop::decode(v)?))
        });
        let mut all: Vec<_> = v4.chain(v6).collect();
        all.sort_by_key(|(net, _)| *net);
        all
    }

    /// Routes `prefix` to `hop`, replacing any route for exactly that prefix.
    pub fn set_route(
        &mut self,
        prefix: IpNet,
        hop: NextHop,
    ) -> Result<Option<NextHop>, TableError> {
        let value = hop
            .encode()
            .ok_or(TableError::IndexTooLarge(index_of(hop)))?;
        let old = match prefix {
            IpNet::V4(n) => self
                .fib4
                .insert(u32::from(n.network()), n.prefix_len(), value),
            IpNet::V6(n) => self
                .fib6
                .insert(u128::from(n.network()), n.prefix_len(), value),
        }
        .map_err(|source| TableError::Route { prefix, source })?;
        self.node_addrs.note(prefix, Some(hop));
        Ok(old.and_then(NextHop::decode))
    }

    /// Removes the route for exactly `prefix`.
    pub fn remove_route(&mut self, prefix: IpNet) -> Option<NextHop> {
        let old = match prefix {
            IpNet::V4(n) => self.fib4.remove(u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => self.fib6.remove(u128::from(n.network()), n.prefix_len()),
        }?;
        self.node_addrs.note(prefix, None);
        NextHop::decode(old)
    }

    /// Adds or replaces a local pod and its host routes (/32, /128).
    pub fn upsert_endpoint(&mut self, endpoint: Endpoint) -> Result<(), TableError> {
        let port = endpoint.port;
        if port.0 > super::nexthop::MAX_INDEX {
            return Err(TableError::IndexTooLarge(port.0));
        }
        for ip in endpoint
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(endpoint.ipv6.map(IpAddr::V6))
        {
            if let Some(owner) = self.endpoints.by_ip(ip)
                && owner.port != port
            {
                return Err(TableError::AddressInUse {
                    ip,
                    owner: owner.port.0,
                });
            }
        }
        if let Some(old) = self.endpoints.get(port).cloned() {
            self.remove_host_routes(&old);
        }
        for ip in endpoint
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(endpoint.ipv6.map(IpAddr::V6))
        {
            self.set_route(IpNet::from(ip), NextHop::Local(port))?;
        }
        self.endpoints.insert(endpoint);
        Ok(())
    }

    /// Removes a local pod and its host routes.
    pub fn remove_endpoint(&mut self, port: PortId) -> Result<Arc<Endpoint>, TableError> {
        let old = self
            .endpoints
            .remove(port)
            .ok_or(TableError::NoSuchPort(port.0))?;
        self.remove_host_routes(&old);
        Ok(old)
    }

    fn remove_host_routes(&mut self, endpoint: &Endpoint) {
        for ip in endpoint
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(endpoint.ipv6.map(IpAddr::V6))
        {
            let prefix = IpNet::from(ip);
            if self.route(prefix) == Some(NextHop::Local(endpoint.port)) {
                self.remove_route(prefix);
            }
        }
    }

    /// Adds or replaces a peer (by name) and routes its subnets to it.
    pub fn upsert_peer(&mut self, peer: Peer) -> Result<PeerId, TableError> {
        let existing = self.peers.id_of(&peer.name);
        for subnet in &peer.subnets {
            let subnet = subnet.trunc();
            match self.route(subnet) {
                Some(NextHop::Remote(id)) if Some(id) == existing => {}
                Some(other) => {
                    return Err(TableError::SubnetInUse {
                        subnet,
                        existing: other,
                    });
                }
                None => {}
            }
        }
        if let Some(id) = existing
            && let Some(old) = self.peers.get(id).cloned()
        {
            self.remove_peer_routes(id, &old);
        }
        let subnets = peer.subnets.clone();
        let id = self.peers.upsert(peer);
        if id.0 > super::nexthop::MAX_INDEX {
            return Err(TableError::IndexTooLarge(id.0));
        }
        for subnet in subnets {
            self.set_route(subnet.trunc(), NextHop::Remote(id))?;
        }
        Ok(id)
    }

    /// Removes the peer called `name` and its routes.
    pub fn remove_peer(&mut self, name: &str) -> Result<Peer, TableError> {
        let (id, peer) = self
            .peers
            .remove(name)
            .ok_or_else(|| TableError::NoSuchPeer(name.to_string()))?;
        self.remove_peer_routes(id, &peer);
        Ok(peer)
    }

    fn remove_peer_routes(&mut self, id: PeerId, peer: &Peer) {
        for subnet in &peer.subnets {
            let subnet = subnet.trunc();
            if self.route(subnet) == Some(NextHop::Remote(id)) {
                self.remove_route(subnet);
            }
        }
    }

    /// The backend of the peer with this id.
    pub fn peer_backend(&self, id: PeerId) -> Option<Backend> {
        self.peers.get(id).map(|p| p.backend)
    }

    /// Publishes everything as the next immutable snapshot.
    pub fn publish(&mut self) -> Arc<Tables> {
        self.generation += 1;
        Arc::new(Tables {
            generation: self.generation,
            node: self.node.clone(),
            fib4: self.fib4.publish(),
            fib6: self.fib6.publish(),
            endpoints: self.endpoints.clone(),
            peers: self.peers.clone(),
            services: Arc::clone(&self.services),
            node_addrs: self.node_addrs,
        })
    }

    /// The current native Services.
    pub fn services(&self) -> &Arc<ServiceTable> {
        &self.services
    }

    /// Replaces the native Services (built whole by the caller).
    pub fn set_services(&mut self, services: ServiceTable) {
        self.services = Arc::new(services);
    }
}

fn index_of(hop: NextHop) -> u32 {
    match hop {
        NextHop::Local(PortId(i)) | NextHop::Remote(PeerId(i)) => i,
        NextHop::Host | NextHop::Node | NextHop::Blackhole => 0,
    }
}

#[cfg(test)]
mod node_addrs_tests {
    use super::*;

    #[test]
    fn the_node_address_follows_its_host_route_and_nothing_else() {
        let mut w = TablesWriter::default();
        let v4: IpNet = "10.244.1.1/32".parse().unwrap();
        let v6: IpNet = "fd00:10:244:1::1/128".parse().unwrap();
        w.set_route("10.244.1.0/24".parse().unwrap(), NextHop::Node)
            .unwrap();
        w.set_route("10.244.1.7/32".parse().unwrap(), NextHop::Host)
            .unwrap();
        assert_eq!(w.publish().node_addrs, NodeAddrs::default());
        w.set_route(v4, NextHop::Node).unwrap();
        w.set_route(v6, NextHop::Node).unwrap();
        let t = w.publish();
        assert_eq!(
            t.node_addrs.of_family("1.2.3.4".parse().unwrap()),
            Some("10.244.1.1".parse().unwrap())
        );
        assert_eq!(
            t.node_addrs.of_family("::1".parse().unwrap()),
            Some("fd00:10:244:1::1".parse().unwrap())
        );
        w.remove_route(v4);
        w.set_route(v6, NextHop::Host).unwrap();
        assert_eq!(w.publish().node_addrs, NodeAddrs::default());
    }
}

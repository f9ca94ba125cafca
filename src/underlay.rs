//! An underlay network of N nodes on one switch, for multi-node tests.
//!
//! The switch is a namespace `tw-<prefix>-sw-<pid>` holding a Linux bridge
//! `br0` with address `BASE.254/24`; node `i` is a namespace
//! `tw-<prefix>-n<i>-<pid>` joined to the bridge by a veth (`eth0` in the
//! node, `n<i>` on the bridge), with address `BASE.<i+1>/24` and a default
//! route via `BASE.254`, so a daemon looking for "the interface of the default
//! route" finds `eth0`. The caller picks BASE (e.g. `10.98.1`): tests run in
//! parallel, and although their namespaces are apart, a distinct subnet per
//! test keeps logs and failures unambiguous.
//!
//! Services every node shares (etcd) run in the switch namespace on
//! `BASE.254`. Drop deletes the node namespaces (their veths go with them) and
//! then the switch; each namespace guard kills what still runs inside first.

use std::net::{IpAddr, Ipv4Addr};

use crate::netns::{self, End, Netns};

/// The bridge's name in the switch namespace.
pub const BRIDGE: &str = "br0";
/// The underlay interface's name in every node namespace.
pub const IFNAME: &str = "eth0";
/// The last octet of the switch's address (the nodes' default gateway).
const SWITCH_HOST: u8 = 254;
/// The most nodes one /24 can hold next to the switch (`.1` to `.253`).
pub const MAX_NODES: usize = 253;

/// A switch namespace with a bridge and the node namespaces attached to it.
#[derive(Debug)]
pub struct Underlay {
    // Dropped before `switch`: their veths leave the bridge with them.
    nodes: Vec<Option<Netns>>,
    switch: Netns,
    base: [u8; 3],
}

impl Underlay {
    /// Builds the switch and `n_nodes` nodes on subnet `base` (the first
    /// three octets, e.g. `"10.98.1"`). Panics on a malformed base or more
    /// than [`MAX_NODES`] nodes.
    pub fn new(prefix: &str, base: &str, n_nodes: usize) -> Self {
        let octets = parse_base(base)
            .unwrap_or_else(|| panic!("underlay base {base:?} is not three octets like 10.98.1"));
        assert!(
            n_nodes <= MAX_NODES,
            "{n_nodes} nodes do not fit a /24 (at most {MAX_NODES})"
        );
        let switch = Netns::new(prefix, "sw");
        switch.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        let switch_addr = format!("{}/24", host(octets, SWITCH_HOST));
        switch.ip(&["addr", "add", &switch_addr, "dev", BRIDGE]);
        switch.ip(&["link", "set", BRIDGE, "up"]);
        let mut underlay = Self {
            nodes: Vec::with_capacity(n_nodes),
            switch,
            base: octets,
        };
        for i in 0..n_nodes {
            let node = underlay.attach(prefix, i);
            underlay.nodes.push(Some(node));
        }
        underlay
    }

    /// Creates node `i` and plugs it into the bridge.
    fn attach(&self, prefix: &str, i: usize) -> Netns {
        let node = Netns::new(prefix, &format!("n{i}"));
        let port = format!("n{i}");
        let addr = format!("{}/24", self.node_ip(i));
        netns::veth(
            End {
                ns: &node,
                ifname: IFNAME,
                addr: Some(&addr),
            },
            End {
                ns: &self.switch,
                ifname: &port,
                addr: None,
            },
        );
        self.switch.ip(&["link", "set", &port, "master", BRIDGE]);
        let gateway = self.switch_ip().to_string();
        node.ip(&["route", "add", "default", "via", &gateway, "dev", IFNAME]);
        // A real NIC finishes offloaded checksums; the kernel's veth does not
        // (see `Netns::disable_tx_checksum`).
        node.disable_tx_checksum(IFNAME);
        node
    }

    /// How many nodes it was built with (taken ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// It has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s underlay address, `BASE.<i+1>`.
    pub fn node_ip(&self, i: usize) -> IpAddr {
        let last = u8::try_from(i + 1).expect("node index fits a /24");
        IpAddr::V4(host(self.base, last))
    }

    /// The switch's address, `BASE.254`: the nodes' gateway, and where
    /// shared services (etcd) listen.
    pub fn switch_ip(&self) -> IpAddr {
        IpAddr::V4(host(self.base, SWITCH_HOST))
    }

    /// The switch namespace.
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Node `i`'s namespace; panics if it was taken out.
    pub fn node(&self, i: usize) -> &Netns {
        self.nodes
            .get(i)
            .and_then(Option::as_ref)
            .unwrap_or_else(|| panic!("underlay node {i} does not exist or was taken"))
    }

    /// Takes node `i`'s namespace out (e.g. to hand it to a guard that owns
    /// it); the underlay no longer deletes it. Panics if already taken.
    pub fn take_node(&mut self, i: usize) -> Netns {
        self.nodes
            .get_mut(i)
            .and_then(Option::take)
            .unwrap_or_else(|| panic!("underlay node {i} does not exist or was taken"))
    }
}

/// `BASE.last`.
fn host(base: [u8; 3], last: u8) -> Ipv4Addr {
    Ipv4Addr::new(base[0], base[1], base[2], last)
}

/// The three octets of `"a.b.c"`; `None` unless it is exactly that.
fn parse_base(base: &str) -> Option<[u8; 3]> {
    let mut octets = [0u8; 3];
    let mut parts = base.split('.');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

#[cfg(test)]
mod tests {
    use super::{host, parse_base};

    #[test]
    fn parse_base_takes_exactly_three_octets() {
        assert_eq!(parse_base("10.98.1"), Some([10, 98, 1]));
        assert_eq!(parse_base("10.98"), None);
        assert_eq!(parse_base("10.98.1.0"), None);
        assert_eq!(parse_base("10.300.1"), None);
        assert_eq!(parse_base("10..1"), None);
    }

    #[test]
    fn host_appends_the_last_octet() {
        assert_eq!(host([10, 98, 1], 254).to_string(), "10.98.1.254");
    }
}

//! A pod: a network namespace attached to a node with the API's `port_add`
//! (name `<prefix>/<role>`, netns `/run/netns/NAME`, ifname `eth0`).
//!
//! The dataplane configures the interface; [`Pod::attach`] returns once its
//! addresses are usable (IPv6 out of duplicate address detection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tweed_api::dataplane::proto::{PortAdd, PortInfo};

use crate::netns::Netns;
use crate::node::Node;
use crate::poll;

/// The interface name pods get.
pub const IFNAME: &str = "eth0";

/// A pod namespace with a dataplane port.
#[derive(Debug)]
pub struct Pod {
    /// The port's name, `<prefix>/<role>`.
    pub name: String,
    /// The port as `port_add` returned it.
    pub port: PortInfo,
    /// The pod's namespace.
    pub netns: Netns,
}

impl Pod {
    /// Creates a pod netns and attaches it to `node` with the given
    /// addresses; panics (with the API error) if `port_add` fails.
    pub fn attach(
        node: &Node,
        prefix: &str,
        role: &str,
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    ) -> Self {
        let netns = Netns::new(prefix, role);
        let name = format!("{prefix}/{role}");
        let port = node
            .api
            .port_add(PortAdd {
                name: name.clone(),
                netns: netns.path(),
                ifname: IFNAME.into(),
                ipv4,
                ipv6,
                mac: None,
                mtu: None,
            })
            .unwrap_or_else(|e| panic!("port_add {name}: {:?}: {}", e.kind, e.message));
        let pod = Self { name, port, netns };
        pod.wait_addresses();
        pod
    }

    /// The pod's IPv4 address (panics if it has none).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.port.ipv4.expect("the pod has an IPv4 address")
    }

    /// The pod's IPv6 address (panics if it has none).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.port.ipv6.expect("the pod has an IPv6 address")
    }

    /// Waits until every address the port was given is on `eth0` and none is
    /// still tentative (IPv6 DAD takes a second or two).
    pub fn wait_addresses(&self) {
        let wanted: Vec<String> = [
            self.port.ipv4.map(|a| format!("{}/32", IpAddr::V4(a))),
            self.port.ipv6.map(|a| format!("{}/128", IpAddr::V6(a))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut last = Vec::new();
        let ready = poll::wait(Duration::from_secs(10), || {
            last = self.netns.addresses(IFNAME);
            wanted.iter().all(|w| {
                last.iter()
                    .any(|(addr, flags)| addr == w && flags.is_empty())
            })
        });
        assert!(
            ready,
            "pod {}: {IFNAME} should carry {wanted:?}, usable; it has {last:?}",
            self.name
        );
    }
}

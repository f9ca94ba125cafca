//! What the node's host port must carry, as plain data (pure).
//!
//! The kernel reaches pods through the dataplane's host port (`tweed0`): the node holds
//! the first address of its node subnet there (a `/32`, a `/128`), so pods see the node
//! with an address of their own cluster and the kernel has a source address for them,
//! and every cluster CIDR is routed to the dataplane's gateway on that port (`169.254.1.1`
//! on-link, `fe80::1`), which the dataplane answers ARP/NDP for. With native Services
//! the Service CIDRs are routed there too, so the node's own processes (and
//! `hostNetwork` pods) reach ClusterIPs through the dataplane, which balances them.
//! [`HostPlan::desired`] turns the daemon's view (device, node addresses, CIDRs) into
//! exactly those addresses and routes, and rejects plans the kernel would refuse or
//! half-apply.

use std::net::IpAddr;

use ipnet::IpNet;
use tweed_dataplane::table::tables::{GATEWAY_V4, GATEWAY_V6};

use super::HostError;

/// The longest interface name Linux accepts (`IFNAMSIZ - 1`).
const IFNAME_MAX: usize = 15;

/// The node's host-side networking, as the daemon knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The host port's name (`tweed0`).
    pub device: String,
    /// The first address of each node subnet, at most one per family.
    pub node_addrs: Vec<IpAddr>,
    /// The cluster CIDRs to route to the dataplane; each needs a node address of its
    /// family (the routes' source).
    pub cluster_cidrs: Vec<IpNet>,
    /// The Service CIDRs to route to the dataplane (native Services only; empty
    /// otherwise), under the same condition.
    pub service_cidrs: Vec<IpNet>,
}

/// One route to the dataplane: `prefix via gateway dev <device> [onlink] src source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRoute {
    /// The destination (host bits cleared).
    pub prefix: IpNet,
    /// The dataplane's gateway address of the prefix's family.
    pub gateway: IpAddr,
    /// IPv4 only: the gateway is on no subnet of the port, so the route says "on-link".
    pub onlink: bool,
    /// The preferred source: the node address of the prefix's family.
    pub source: IpAddr,
}

/// The addresses and routes a plan implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Host addresses on the device: `/32` for IPv4, `/128` for IPv6.
    pub addresses: Vec<IpNet>,
    /// One route per distinct cluster CIDR, in the plan's order.
    pub routes: Vec<HostRoute>,
}

impl HostPlan {
    /// The addresses and routes this plan implies; an error if the plan is inconsistent
    /// (bad device name, two node addresses of one family, a cluster or Service CIDR
    /// without a node address of its family).
    pub fn desired(&self) -> Result<Desired, HostError> {
        check_device(&self.device)?;
        let mut v4 = None;
        let mut v6 = None;
        for &addr in &self.node_addrs {
            if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
                return invalid(format!("node address {addr} is not a unicast address"));
            }
            let slot = if addr.is_ipv4() { &mut v4 } else { &mut v6 };
            if let Some(other) = slot.replace(addr) {
                return invalid(format!(
                    "two node addresses of one family ({other} and {addr}): give one per family"
                ));
            }
        }
        let addresses = [v4, v6].into_iter().flatten().map(IpNet::from).collect();
        let mut routes: Vec<HostRoute> = Vec::new();
        let cidrs = (self.cluster_cidrs.iter().map(|c| ("cluster", c)))
            .chain(self.service_cidrs.iter().map(|c| ("Service", c)));
        for (kind, cidr) in cidrs {
            let prefix = cidr.trunc();
            if routes.iter().any(|r| r.prefix == prefix) {
                continue;
            }
            let (source, gateway, onlink) = match prefix {
                IpNet::V4(_) => (v4, IpAddr::V4(GATEWAY_V4), true),
                IpNet::V6(_) => (v6, IpAddr::V6(GATEWAY_V6), false),
            };
            let Some(source) = source else {
                return invalid(format!(
                    "{kind} CIDR {prefix} has no node address of its family to route it from"
                ));
            };
            routes.push(HostRoute {
                prefix,
                gateway,
                onlink,
                source,
            });
        }
        Ok(Desired { addresses, routes })
    }
}

/// Rejects names the kernel would refuse (or that are clearly not one link).
fn check_device(name: &str) -> Result<(), HostError> {
    let bad = name.is_empty()
        || name.len() > IFNAME_MAX
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
    if bad {
        return invalid(format!(
            "device name {name:?} is not a valid interface name (1-{IFNAME_MAX} bytes, no '/', ':' or spaces)"
        ));
    }
    Ok(())
}

fn invalid<T>(reason: String) -> Result<T, HostError> {
    Err(HostError::InvalidPlan { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(addrs: &[&str], cidrs: &[&str]) -> HostPlan {
        HostPlan {
            device: "tweed0".into(),
            node_addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            cluster_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            service_cidrs: vec![],
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dual_stack_plan_gives_host_addresses_and_one_route_per_cidr() {
        let d = plan(
            &["fd00:10:244:1::1", "10.244.1.1"],
            &["10.244.0.0/16", "fd00:10:244::/48"],
        )
        .desired()
        .unwrap();
        assert_eq!(
            d.addresses,
            vec![net("10.244.1.1/32"), net("fd00:10:244:1::1/128")]
        );
        assert_eq!(
            d.routes,
            vec![
                HostRoute {
                    prefix: net("10.244.0.0/16"),
                    gateway: ip("169.254.1.1"),
                    onlink: true,
                    source: ip("10.244.1.1"),
                },
                HostRoute {
                    prefix: net("fd00:10:244::/48"),
                    gateway: ip("fe80::1"),
                    onlink: false,
                    source: ip("fd00:10:244:1::1"),
                },
            ]
        );
    }

    #[test]
    fn host_bits_are_cleared_and_duplicates_dropped() {
        let d = plan(
            &["10.244.1.1"],
            &["10.244.7.9/16", "10.244.0.0/16", "10.96.0.0/12"],
        )
        .desired()
        .unwrap();
        let prefixes: Vec<IpNet> = d.routes.iter().map(|r| r.prefix).collect();
        assert_eq!(prefixes, vec![net("10.244.0.0/16"), net("10.96.0.0/12")]);
    }

    #[test]
    fn service_cidrs_are_routed_after_the_cluster_cidrs_and_need_a_node_address_too() {
        let mut p = plan(&["10.244.1.1"], &["10.244.0.0/16"]);
        p.service_cidrs = vec![net("10.96.0.0/12")];
        let d = p.desired().unwrap();
        assert_eq!(
            d.routes[1],
            HostRoute {
                prefix: net("10.96.0.0/12"),
                gateway: ip("169.254.1.1"),
                onlink: true,
                source: ip("10.244.1.1"),
            }
        );
        p.service_cidrs.push(net("fd00:96::/108"));
        let e = p.desired().unwrap_err();
        assert!(e.to_string().contains("Service CIDR fd00:96::/108"), "{e}");
    }

    #[test]
    fn a_plan_without_cidrs_still_gives_the_addresses() {
        let d = plan(&["10.244.1.1"], &[]).desired().unwrap();
        assert_eq!(d.addresses, vec![net("10.244.1.1/32")]);
        assert!(d.routes.is_empty());
    }

    #[test]
    fn a_cidr_without_a_node_address_of_its_family_is_refused() {
        let e = plan(&["10.244.1.1"], &["fd00::/48"]).desired().unwrap_err();
        assert!(matches!(e, HostError::InvalidPlan { .. }), "{e}");
        assert!(e.to_string().contains("fd00::/48"), "{e}");
    }

    #[test]
    fn two_node_addresses_of_one_family_are_refused() {
        let e = plan(&["10.244.1.1", "10.244.2.1"], &[])
            .desired()
            .unwrap_err();
        assert!(e.to_string().contains("one per family"), "{e}");
    }

    #[test]
    fn non_unicast_node_addresses_are_refused() {
        for a in ["0.0.0.0", "127.0.0.1", "224.0.0.1", "::", "::1", "ff02::1"] {
            assert!(plan(&[a], &[]).desired().is_err(), "{a}");
        }
    }

    #[test]
    fn bad_device_names_are_refused() {
        for dev in ["", "a-name-longer-than-15", "tw/0", "tw 0", "tw:0"] {
            let mut p = plan(&["10.244.1.1"], &[]);
            p.device = dev.into();
            assert!(p.desired().is_err(), "{dev:?}");
        }
        let mut p = plan(&["10.244.1.1"], &[]);
        p.device = "tweed-host-port".into();
        assert!(p.desired().is_ok());
    }
}

//! Resolving a policy rule: its peers to address groups, its ports to ranges.
//! Done once per rule and cached by the [`Compiler`].

use std::net::IpAddr;

use ipnet::IpNet;
use tweed_api::dataplane::proto::PortRangeSpec;

use super::{Compiler, Namespace};
use crate::policy::model::{Peer, Policy, Port, PortValue, RuleRef, Scope};

/// A set of remote addresses: `remote` minus `except`. An empty `remote`
/// (every address) is only made for a rule without peers: a peer set that
/// selects no address makes no group at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) remote: Vec<IpNet>,
    pub(super) except: Vec<IpNet>,
}

/// What a policy rule matches, resolved once.
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) groups: Vec<Group>,
    /// (protocol, ports); empty when every entry was a named port.
    pub(super) ports: Vec<(Option<u8>, Option<PortRangeSpec>)>,
}

impl Compiler<'_> {
    /// Resolves one rule's peers to address groups and its ports to ranges.
    pub(super) fn resolve(&self, policy: usize, rule: &RuleRef<'_>) -> Resolved {
        let home = match &self.world.policies[policy] {
            Policy::Kubernetes(p) => Some(p.namespace.as_str()),
            Policy::Ordered(p) => match &p.scope {
                Scope::Namespace(ns) => Some(ns.as_str()),
                Scope::Global => None,
            },
        };
        Resolved {
            groups: self.groups(rule.peers, home),
            ports: port_ranges(rule.ports),
        }
    }

    fn groups(&self, peers: &[Peer], home: Option<&str>) -> Vec<Group> {
        if peers.is_empty() {
            return vec![Group {
                remote: Vec::new(),
                except: Vec::new(),
            }];
        }
        let mut pods = Vec::new();
        let mut groups = Vec::new();
        for peer in peers {
            if let Some(block) = &peer.ip_block {
                groups.push(Group {
                    remote: vec![block.cidr.network()],
                    except: block.except.iter().map(|c| c.network()).collect(),
                });
            } else if peer.pod_selector.is_some() || peer.namespace_selector.is_some() {
                self.select_pods(peer, home, &mut pods);
            }
        }
        pods.sort_unstable();
        pods.dedup();
        if !pods.is_empty() {
            groups.insert(
                0,
                Group {
                    remote: pods,
                    except: Vec::new(),
                },
            );
        }
        groups
    }

    /// Appends the addresses of the pods `peer` selects; `home` = the
    /// namespace of a podSelector-only peer (`None`: every namespace).
    fn select_pods(&self, peer: &Peer, home: Option<&str>, out: &mut Vec<IpNet>) {
        let take = |ns: &Namespace| {
            for &i in &ns.pods {
                let pod = &self.world.pods[i];
                if peer
                    .pod_selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&pod.labels))
                {
                    out.extend(pod.ipv4.map(|ip| IpNet::from(IpAddr::V4(ip))));
                    out.extend(pod.ipv6.map(|ip| IpNet::from(IpAddr::V6(ip))));
                }
            }
        };
        match (&peer.namespace_selector, home) {
            (Some(selector), _) => self
                .namespaces
                .values()
                .filter(|ns| selector.matches(&ns.labels))
                .for_each(take),
            (None, Some(home)) => self.namespaces.get(home).into_iter().for_each(take),
            (None, None) => self.namespaces.values().for_each(take),
        }
    }
}

/// The (protocol, port range) pairs of a rule's `ports`; named ports are
/// left out, so a rule of named ports only matches nothing.
fn port_ranges(ports: &[Port]) -> Vec<(Option<u8>, Option<PortRangeSpec>)> {
    if ports.is_empty() {
        return vec![(None, None)];
    }
    ports
        .iter()
        .filter_map(|port| {
            let protocol = Some(port.protocol().number());
            match &port.port {
                None => Some((protocol, None)),
                Some(PortValue::Name(_)) => None,
                Some(PortValue::Number(first)) => {
                    let first = u16::try_from(*first).ok().filter(|&p| p > 0)?;
                    let last = match port.end_port {
                        None => first,
                        Some(end) => u16::try_from(end).ok().filter(|&p| p >= first)?,
                    };
                    Some((protocol, Some(PortRangeSpec { first, last })))
                }
            }
        })
        .collect()
}

//! Seeded random worlds: explain (compile + the dataplane's classifier) must
//! agree with a direct evaluation of the policy semantics written here from
//! the Kubernetes documentation and the ordered-policy contract, without the
//! compiler or the selector module.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};

use super::explain::Target;
use super::model::*;
use super::selector::{LabelSelector, Operator, Requirement};
use super::{Compiler, validate};

const NAMESPACES: [&str; 3] = ["a", "b", "c"];
const LABELS: [(&str, &[&str]); 3] = [
    ("app", &["web", "db", "api"]),
    ("tier", &["fe", "be"]),
    ("role", &["x"]),
];
const PORTS: [u16; 6] = [80, 443, 8000, 8050, 8100, 9999];

fn random_labels(rng: &mut StdRng) -> Labels {
    pairs(rng, &LABELS, 0.6)
}

/// Each key with probability `p`, with a random one of its values.
fn pairs(rng: &mut StdRng, keys: &[(&str, &[&str])], p: f64) -> Labels {
    let mut labels = Labels::new();
    for (k, values) in keys {
        if rng.random_bool(p)
            && let Some(v) = values.choose(rng)
        {
            labels.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    labels
}

fn random_selector(rng: &mut StdRng, keys: &[(&str, &[&str])]) -> LabelSelector {
    let mut s = LabelSelector::all();
    if rng.random_bool(0.5)
        && let Some((k, values)) = keys.choose(rng)
        && let Some(v) = values.choose(rng)
    {
        s.match_labels.insert((*k).to_owned(), (*v).to_owned());
    }
    if rng.random_bool(0.4)
        && let Some((k, values)) = keys.choose(rng)
    {
        let operator = *[
            Operator::In,
            Operator::NotIn,
            Operator::Exists,
            Operator::DoesNotExist,
        ]
        .choose(rng)
        .unwrap_or(&Operator::Exists);
        let values = match operator {
            Operator::In | Operator::NotIn => values
                .iter()
                .filter(|_| rng.random_bool(0.5))
                .chain(values.first())
                .map(|v| (*v).to_owned())
                .collect(),
            _ => Vec::new(),
        };
        s.match_expressions.push(Requirement {
            key: (*k).to_owned(),
            operator,
            values,
        });
    }
    s
}

const NS_KEYS: [(&str, &[&str]); 3] = [
    ("team", &["x", "y"]),
    ("env", &["p", "d"]),
    (NAMESPACE_NAME_LABEL, &NAMESPACES),
];

fn cidr(s: &str) -> Cidr {
    Cidr(s.parse().expect("test CIDR"))
}

fn random_peer(rng: &mut StdRng) -> Peer {
    match rng.random_range(0..10) {
        0..4 => Peer {
            pod_selector: Some(random_selector(rng, &LABELS)),
            ..Peer::default()
        },
        4..6 => Peer {
            namespace_selector: Some(random_selector(rng, &NS_KEYS)),
            ..Peer::default()
        },
        6..8 => Peer {
            pod_selector: Some(random_selector(rng, &LABELS)),
            namespace_selector: Some(random_selector(rng, &NS_KEYS)),
            ..Peer::default()
        },
        _ => {
            let blocks: [(&str, &[&str]); 5] = [
                ("10.1.0.0/16", &["10.1.1.0/24", "10.1.2.8/29"]),
                ("10.1.1.0/24", &[]),
                ("192.168.0.0/16", &["192.168.7.0/24"]),
                ("fd00::/16", &["fd00::/120"]),
                ("0.0.0.0/0", &["10.0.0.0/8"]),
            ];
            let (net, excepts) = blocks.choose(rng).copied().unwrap_or(blocks[0]);
            Peer {
                ip_block: Some(IpBlock {
                    cidr: cidr(net),
                    except: excepts
                        .iter()
                        .filter(|_| rng.random_bool(0.6))
                        .map(|e| cidr(e))
                        .collect(),
                }),
                ..Peer::default()
            }
        }
    }
}

fn random_ports(rng: &mut StdRng) -> Vec<Port> {
    (0..rng.random_range(0..3))
        .map(|_| {
            let protocol = *[None, Some(Protocol::Tcp), Some(Protocol::Udp)]
                .choose(rng)
                .unwrap_or(&None);
            let (port, end_port) = match rng.random_range(0..5) {
                0 => (None, None),
                1 => (Some(PortValue::Name("http".into())), None),
                2 => (Some(PortValue::Number(8000)), Some(8100)),
                _ => (
                    PORTS.choose(rng).map(|&p| PortValue::Number(i64::from(p))),
                    None,
                ),
            };
            Port {
                protocol,
                port,
                end_port,
            }
        })
        .collect()
}

fn random_peers(rng: &mut StdRng) -> Vec<Peer> {
    (0..rng.random_range(0..3))
        .map(|_| random_peer(rng))
        .collect()
}

fn random_world(seed: u64) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut namespaces = std::collections::BTreeMap::new();
    for ns in NAMESPACES {
        if rng.random_bool(0.8) {
            namespaces.insert(ns.to_owned(), pairs(&mut rng, &NS_KEYS[..2], 0.7));
        }
    }
    let pods = (0..rng.random_range(2..14u8))
        .map(|i| {
            let family = rng.random_range(0..10);
            PodIdentity {
                namespace: NAMESPACES
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("a")
                    .to_owned(),
                name: format!("p{i}"),
                labels: random_labels(&mut rng),
                ipv4: (family < 9).then(|| Ipv4Addr::new(10, 1, rng.random_range(1..3), i + 1)),
                ipv6: (family >= 6)
                    .then(|| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(i) + 1)),
            }
        })
        .collect();
    let mut policies = Vec::new();
    for i in 0..rng.random_range(0..5) {
        let policy_types = match rng.random_range(0..4) {
            0 => vec![PolicyType::Ingress],
            1 => vec![PolicyType::Egress],
            2 => vec![PolicyType::Ingress, PolicyType::Egress],
            _ => Vec::new(),
        };
        let spec = NetworkPolicySpec {
            pod_selector: random_selector(&mut rng, &LABELS),
            policy_types,
            ingress: (0..rng.random_range(0..3))
                .map(|_| IngressRule {
                    from: random_peers(&mut rng),
                    ports: random_ports(&mut rng),
                })
                .collect(),
            egress: (0..rng.random_range(0..3))
                .map(|_| EgressRule {
                    to: random_peers(&mut rng),
                    ports: random_ports(&mut rng),
                })
                .collect(),
        };
        policies.push(Policy::Kubernetes(NetworkPolicy {
            namespace: NAMESPACES
                .choose(&mut rng)
                .copied()
                .unwrap_or("a")
                .to_owned(),
            name: format!("k{i}"),
            spec,
        }));
    }
    for i in 0..rng.random_range(0..4) {
        let action = |rng: &mut StdRng| {
            *[
                OrderedAction::Allow,
                OrderedAction::Deny,
                OrderedAction::Log,
                OrderedAction::Pass,
            ]
            .choose(rng)
            .unwrap_or(&OrderedAction::Log)
        };
        let global = rng.random_bool(0.5);
        let spec = OrderedSpec {
            order: [None, Some(1.0), Some(2.0), Some(2.0)]
                .choose(&mut rng)
                .copied()
                .flatten(),
            namespace_selector: (global && rng.random_bool(0.5))
                .then(|| random_selector(&mut rng, &NS_KEYS)),
            pod_selector: random_selector(&mut rng, &LABELS),
            ingress: (0..rng.random_range(0..3))
                .map(|_| OrderedIngressRule {
                    action: action(&mut rng),
                    from: random_peers(&mut rng),
                    ports: random_ports(&mut rng),
                })
                .collect(),
            egress: (0..rng.random_range(0..3))
                .map(|_| OrderedEgressRule {
                    action: action(&mut rng),
                    to: random_peers(&mut rng),
                    ports: random_ports(&mut rng),
                })
                .collect(),
        };
        let scope = if global {
            Scope::Global
        } else {
            Scope::Namespace(
                NAMESPACES
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("a")
                    .to_owned(),
            )
        };
        policies.push(Policy::Ordered(OrderedPolicy {
            scope,
            name: format!("o{i}"),
            spec,
        }));
    }
    let node_addrs = if rng.random_bool(0.5) {
        vec![IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))]
    } else {
        Vec::new()
    };
    World {
        pods,
        namespaces,
        policies,
        node_addrs,
    }
}

// ---- The oracle: the documented semantics, evaluated directly. ----

fn labels_match(s: &LabelSelector, labels: &Labels) -> bool {
    s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && s.match_expressions.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => !value.is_some_and(|v| r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
}

fn namespace_labels(world: &World, ns: &str) -> Labels {
    let mut labels = world.namespaces.get(ns).cloned().unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned());
    labels
}

/// Whether `peer` (of a policy whose podSelector-only peers mean namespace
/// `home`, or every namespace for `None`) covers the remote.
fn peer_matches(
    world: &World,
    peer: &Peer,
    home: Option<&str>,
    ip: IpAddr,
    pod: Option<&PodIdentity>,
) -> bool {
    if let Some(block) = &peer.ip_block {
        let inside = |c: &Cidr| c.0.trunc().contains(&ip);
        return inside(&block.cidr) && !block.except.iter().any(inside);
    }
    let Some(pod) = pod else {
        return false;
    };
    let namespace_ok = match (&peer.namespace_selector, home) {
        (Some(s), _) => labels_match(s, &namespace_labels(world, &pod.namespace)),
        (None, Some(home)) => pod.namespace == home,
        (None, None) => true,
    };
    namespace_ok
        && peer
            .pod_selector
            .as_ref()
            .is_none_or(|s| labels_match(s, &pod.labels))
}

fn port_matches(ports: &[Port], protocol: u8, port: u16) -> bool {
    let numbered = matches!(protocol, 6 | 17 | 132);
    ports.is_empty()
        || ports.iter().any(|p| {
            let proto = match p.protocol.unwrap_or(Protocol::Tcp) {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
                Protocol::Sctp => 132,
            };
            proto == protocol
                && match (&p.port, p.end_port) {
                    (None, _) => true,
                    (Some(PortValue::Name(_)), _) => false,
                    (Some(PortValue::Number(first)), end) => {
                        numbered
                            && i64::from(port) >= *first
                            && i64::from(port) <= end.unwrap_or(*first)
                    }
                }
        })
}

fn rule_matches(
    world: &World,
    peers: &[Peer],
    ports: &[Port],
    home: Option<&str>,
    remote: (IpAddr, Option<&PodIdentity>),
    protocol: u8,
    port: u16,
) -> bool {
    (peers.is_empty()
        || peers
            .iter()
            .any(|p| peer_matches(world, p, home, remote.0, remote.1)))
        && port_matches(ports, protocol, port)
}

fn allows(
    world: &World,
    me: &PodIdentity,
    ingress: bool,
    remote: (IpAddr, Option<&PodIdentity>),
    protocol: u8,
    port: u16,
) -> bool {
    if world.node_addrs.contains(&remote.0) {
        return true;
    }
    let mut ordered: Vec<&OrderedPolicy> = world
        .policies
        .iter()
        .filter_map(|p| match p {
            Policy::Ordered(o) => Some(o),
            Policy::Kubernetes(_) => None,
        })
        .filter(|o| {
            let in_scope = match &o.scope {
                Scope::Namespace(ns) => *ns == me.namespace,
                Scope::Global => o
                    .spec
                    .namespace_selector
                    .as_ref()
                    .is_none_or(|s| labels_match(s, &namespace_labels(world, &me.namespace))),
            };
            in_scope && labels_match(&o.spec.pod_selector, &me.labels)
        })
        .collect();
    ordered.sort_by(|a, b| {
        let key = |o: &OrderedPolicy| Policy::Ordered(o.clone()).key();
        a.spec
            .order
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.spec.order.unwrap_or(f64::INFINITY))
            .then_with(|| key(a).cmp(&key(b)))
    });
    'ordered: for o in ordered {
        let home = match &o.scope {
            Scope::Namespace(ns) => Some(ns.as_str()),
            Scope::Global => None,
        };
        let rules: Vec<(OrderedAction, &[Peer], &[Port])> = if ingress {
            o.spec
                .ingress
                .iter()
                .map(|r| (r.action, &r.from[..], &r.ports[..]))
                .collect()
        } else {
            o.spec
                .egress
                .iter()
                .map(|r| (r.action, &r.to[..], &r.ports[..]))
                .collect()
        };
        for (action, peers, ports) in rules {
            if rule_matches(world, peers, ports, home, remote, protocol, port) {
                match action {
                    OrderedAction::Allow => return true,
                    OrderedAction::Deny => return false,
                    OrderedAction::Log => {}
                    OrderedAction::Pass => break 'ordered,
                }
            }
        }
    }
    let selecting: Vec<&NetworkPolicy> = world
        .policies
        .iter()
        .filter_map(|p| match p {
            Policy::Kubernetes(k) => Some(k),
            Policy::Ordered(_) => None,
        })
        .filter(|k| k.namespace == me.namespace && labels_match(&k.spec.pod_selector, &me.labels))
        .filter(|k| {
            let types = &k.spec.policy_types;
            match (ingress, types.is_empty()) {
                (true, true) => true,
                (false, true) => !k.spec.egress.is_empty(),
                (true, false) => types.contains(&PolicyType::Ingress),
                (false, false) => types.contains(&PolicyType::Egress),
            }
        })
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|k| {
        let home = Some(k.namespace.as_str());
        if ingress {
            k.spec
                .ingress
                .iter()
                .any(|r| rule_matches(world, &r.from, &r.ports, home, remote, protocol, port))
        } else {
            k.spec
                .egress
                .iter()
                .any(|r| rule_matches(world, &r.to, &r.ports, home, remote, protocol, port))
        }
    })
}

/// The oracle's verdict on a packet from pod `from` to `to`.
fn oracle(world: &World, from: usize, to: Target, protocol: u8, port: u16) -> bool {
    let port = if matches!(protocol, 6 | 17 | 132) {
        port
    } else {
        0
    };
    let src = &world.pods[from];
    let (dst, dst_ip) = match to {
        Target::Ip(ip) => (None, ip),
        Target::Pod(j) => {
            let d = &world.pods[j];
            let ip = match (src.ipv4.and(d.ipv4), src.ipv6.and(d.ipv6)) {
                (Some(v4), _) => IpAddr::V4(v4),
                (None, Some(v6)) => IpAddr::V6(v6),
                (None, None) => return false,
            };
            (Some(d), ip)
        }
    };
    let Some(src_ip) = (match dst_ip {
        IpAddr::V4(_) => src.ipv4.map(IpAddr::V4),
        IpAddr::V6(_) => src.ipv6.map(IpAddr::V6),
    }) else {
        return false;
    };
    allows(world, src, false, (dst_ip, dst), protocol, port)
        && dst.is_none_or(|d| allows(world, d, true, (src_ip, Some(src)), protocol, port))
}

#[test]
fn explain_agrees_with_a_direct_evaluation_on_random_worlds() {
    let mut checked = 0;
    let mut allowed = 0;
    for seed in 0..400 {
        let world = random_world(seed);
        for p in &world.policies {
            validate::policy(p).expect("the generator makes valid policies");
        }
        let compiler = Compiler::new(&world);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let externals: [IpAddr; 4] = [
            "192.168.3.4".parse().unwrap(),
            "192.168.7.9".parse().unwrap(),
            "8.8.8.8".parse().unwrap(),
            "fd00::1:5".parse().unwrap(),
        ];
        for _ in 0..40 {
            let from = rng.random_range(0..world.pods.len());
            let to = match rng.random_range(0..10) {
                0..7 => Target::Pod(rng.random_range(0..world.pods.len())),
                7 => Target::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1))),
                _ => Target::Ip(*externals.choose(&mut rng).unwrap()),
            };
            let protocol = *[6u8, 6, 17, 1, 132].choose(&mut rng).unwrap();
            let port = *PORTS.choose(&mut rng).unwrap();
            let explained = compiler.explain(from, to, protocol, port);
            let expected = oracle(&world, from, to, protocol, port);
            assert_eq!(
                explained.allowed, expected,
                "seed {seed}: {from} -> {to:?} proto {protocol} port {port}\n{explained}\nworld: {world:#?}"
            );
            checked += 1;
            allowed += usize::from(expected);
        }
    }
    // Both verdicts are well represented, so the comparison means something.
    assert!(
        allowed > checked / 5 && allowed < checked * 4 / 5,
        "{allowed} of {checked} allowed"
    );
}

//! Seeded randomized agreement: compiled classifier vs [`classify_linear`].
//!
//! Rule sets draw prefixes from a small universe so they nest, overlap and
//! repeat; packets are drawn mostly from inside those prefixes and at the
//! edges of the port ranges, so every branch of the semantics is exercised.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};

use super::compile::{MapStrategy, compile_with};
use super::*;

const PROTOCOLS: [u8; 7] = [
    PROTO_TCP,
    PROTO_UDP,
    PROTO_SCTP,
    PROTO_ICMP,
    PROTO_ICMPV6,
    47,
    0,
];

fn random_net(rng: &mut StdRng) -> IpNet {
    if rng.random_bool(0.7) {
        // 10.<0..4>.<0..4>.x with lengths that nest.
        let addr =
            0x0a00_0000 | (rng.random_range(0..4u32) << 16) | (rng.random_range(0..4u32) << 8);
        let addr = addr | rng.random_range(0..8u32);
        let len = *[0u8, 8, 14, 16, 22, 24, 29, 30, 32]
            .choose(rng)
            .unwrap_or(&32);
        IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(addr), len)
                .unwrap_or_default()
                .trunc(),
        )
    } else {
        let addr = (0x2001_0db8u128 << 96)
            | (rng.random_range(0..4u128) << 64)
            | rng.random_range(0..4u128);
        let len = *[0u8, 32, 48, 64, 126, 128].choose(rng).unwrap_or(&128);
        IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(addr), len)
                .unwrap_or_default()
                .trunc(),
        )
    }
}

fn random_rule(rng: &mut StdRng, id: u32) -> Rule {
    let action = *[
        RuleAction::Allow,
        RuleAction::Allow,
        RuleAction::Deny,
        RuleAction::Log,
        RuleAction::Pass,
    ]
    .choose(rng)
    .unwrap_or(&RuleAction::Allow);
    let mut rule = Rule::any(id, rng.random_range(0..3), action);
    if rng.random_bool(0.8) {
        rule.remote = (0..rng.random_range(1..4))
            .map(|_| random_net(rng))
            .collect();
    }
    if rng.random_bool(0.3) {
        rule.remote_except = (0..rng.random_range(1..3))
            .map(|_| random_net(rng))
            .collect();
    }
    if rng.random_bool(0.85) {
        let protocol = *PROTOCOLS.choose(rng).unwrap_or(&PROTO_TCP);
        rule.protocol = Some(protocol);
        if has_ports(protocol) && rng.random_bool(0.7) {
            let first = *[0u16, 1, 53, 80, 443, 8080, 65535]
                .choose(rng)
                .unwrap_or(&80);
            let last = first.saturating_add(*[0u16, 0, 1, 100, 65535].choose(rng).unwrap_or(&0));
            rule.ports = Some(PortRange { first, last });
        }
    }
    rule
}

fn random_packet(rng: &mut StdRng, set: &RuleSet) -> (IpAddr, u8, u16) {
    let nets: Vec<&IpNet> = set
        .rules
        .iter()
        .flat_map(|r| r.remote.iter().chain(&r.remote_except))
        .collect();
    let remote = match nets.choose(rng) {
        Some(net) if rng.random_bool(0.85) => match net {
            IpNet::V4(n) => {
                let host = rng.random::<u32>() & !u32::from(n.netmask());
                IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
            }
            IpNet::V6(n) => {
                let host = rng.random::<u128>() & !u128::from(n.netmask());
                IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
            }
        },
        _ if rng.random_bool(0.5) => IpAddr::V4(Ipv4Addr::from(rng.random::<u32>())),
        _ => IpAddr::V6(Ipv6Addr::from(rng.random::<u128>())),
    };
    let protocol = if rng.random_bool(0.9) {
        *PROTOCOLS.choose(rng).unwrap_or(&PROTO_TCP)
    } else {
        rng.random()
    };
    let edges: Vec<u16> = set
        .rules
        .iter()
        .filter_map(|r| r.ports)
        .flat_map(|p| {
            [
                p.first,
                p.last,
                p.first.wrapping_sub(1),
                p.last.wrapping_add(1),
            ]
        })
        .collect();
    let port = match edges.choose(rng) {
        Some(&p) if rng.random_bool(0.7) => p,
        _ => rng.random(),
    };
    (remote, protocol, port)
}

#[test]
fn compiled_agrees_with_linear_on_random_sets() {
    let mut rng = StdRng::seed_from_u64(0x07ee_dac1);
    let mut packets = 0;
    for round in 0..300 {
        let n = rng.random_range(0..40);
        let set = RuleSet {
            rules: (0..n).map(|id| random_rule(&mut rng, id)).collect(),
            default: if rng.random_bool(0.5) {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
        };
        let compiled = [
            MapStrategy::Cheaper,
            MapStrategy::Dense,
            MapStrategy::Sparse,
        ]
        .map(|how| {
            let compiled = compile_with(&set, how).expect("random sets are valid");
            (how, Classifier::from_compiled(compiled))
        });
        for _ in 0..100 {
            let (remote, protocol, port) = random_packet(&mut rng, &set);
            let expected = classify_linear(&set, remote, protocol, port);
            for (how, compiled) in &compiled {
                assert_eq!(
                    compiled.classify(remote, protocol, port),
                    &expected,
                    "round {round} ({how:?}): {remote} proto {protocol} port {port}\n{set:#?}"
                );
            }
            packets += 1;
        }
        // Both ways lay out the same canonical maps.
        let [(_, cheaper), (_, dense), (_, sparse)] = &compiled;
        assert_eq!(dense.map_count(), sparse.map_count(), "round {round}");
        assert_eq!(
            dense.segment_count(),
            sparse.segment_count(),
            "round {round}"
        );
        assert_eq!(
            cheaper.segment_count(),
            dense.segment_count(),
            "round {round}"
        );
    }
    assert_eq!(packets, 30_000);
}

/// Rule `i` of 10,000: its own /32 in 10.0.0.0/8 and its own TCP port.
fn own_prefix_own_port(i: u32, action: RuleAction) -> Rule {
    Rule {
        remote: vec![IpNet::V4(
            Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap_or_default(),
        )],
        protocol: Some(PROTO_TCP),
        ports: Some(PortRange::single(1000 + i as u16 * 3)),
        ..Rule::any(i, 0, action)
    }
}

#[test]
fn ten_thousand_rules_each_with_its_own_prefix_and_port_compile() {
    // Dense walks would be (address classes) x (port classes) x (rules / 64):
    // 1.6e10 word operations, beyond the bound. Each class matches one rule,
    // so its sweep is a handful of segments.
    let set = RuleSet {
        rules: (0..10_000u32)
            .map(|i| own_prefix_own_port(i, RuleAction::Allow))
            .collect(),
        default: Verdict::Deny,
    };
    let err = compile_with(&set, MapStrategy::Dense)
        .err()
        .expect("refused");
    assert!(matches!(err, CompileError::TooComplex { .. }), "{err}");
    let compiled = Classifier::compile(&set).expect("the sweep keeps it within the bound");
    let mut rng = StdRng::seed_from_u64(10_000);
    for _ in 0..2000 {
        let i = rng.random_range(0..10_000u32);
        let remote = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let port = 1000 + i as u16 * 3 + rng.random_range(0..2u16);
        assert_eq!(
            compiled.classify(remote, PROTO_TCP, port),
            &classify_linear(&set, remote, PROTO_TCP, port),
            "{remote} port {port}"
        );
    }
}

#[test]
fn pathological_sets_are_refused_not_compiled_forever() {
    // Every rule its own /32 and its own port, and as many Log rules for
    // every address with ports of their own: each class matches 6,000 rules,
    // 5,000 of them Log, and its walks may visit all of them.
    let rules = (0..6000u32)
        .map(|i| own_prefix_own_port(i, RuleAction::Allow))
        .chain((6000..11_000u32).map(|i| Rule {
            protocol: Some(PROTO_UDP),
            ports: Some(PortRange::single(i as u16)),
            ..Rule::any(i, 0, RuleAction::Log)
        }))
        .collect();
    let err = Classifier::compile(&RuleSet {
        rules,
        default: Verdict::Deny,
    })
    .unwrap_err();
    assert!(matches!(err, CompileError::TooComplex { .. }), "{err}");
}

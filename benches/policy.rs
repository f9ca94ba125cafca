//! Policy compilation: `Compiler::new` plus `endpoint` for every pod of a
//! cluster, as the daemon does after a change (on one node it compiles only its
//! own pods; this is the worst case, every pod).
//!
//! Seeded, realistic mix: about 25 pods per namespace and five namespaces per
//! team (namespace labels `team`, `env`), about five replicas per app, `tier`
//! labels, a fifth of the pods dual-stack. Policies: a few `GlobalPolicy`s (5
//! plus one per 200 policies; an `env` namespaceSelector, peers of a tier
//! across the cluster or ipBlocks), then 70% NetworkPolicy (per-app ingress
//! from apps of the namespace, from a team's frontends, from ipBlocks or
//! anyone; common ports and a few ranges; 30% with egress to an ipBlock with
//! except and to an app of a named namespace; 8% namespace-wide default
//! denies) and 30% ordered `Policy` (Allow/Deny/Log/Pass). The same
//! `(pods, policies, seed)` always yields the same world.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use tweed_api::dataplane::proto::RuleSetSpec;
use tweed_control::enforce::plan::{self, PortRules};
use tweed_control::policy::{
    Cidr, Compiler, EgressRule, IngressRule, IpBlock, LabelSelector, Labels, NetworkPolicy,
    NetworkPolicySpec, Operator, OrderedAction, OrderedEgressRule, OrderedIngressRule,
    OrderedPolicy, OrderedSpec, Peer, PodIdentity, Policy, PolicyType, Port, PortValue, Protocol,
    Requirement, Scope, World, parse_documents,
};
use tweed_dataplane::api::validate::rule_set;
use tweed_dataplane::table::acl::Classifier;
use tweed_dataplane::table::endpoints::Endpoint;
use tweed_dataplane::table::nexthop::PortId;
use tweed_dataplane::table::tables::{NodeConfig, TablesWriter};

const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const TIERS: [&str; 3] = ["fe", "be", "db"];
const PORTS: [u16; 10] = [80, 443, 8080, 8443, 5432, 6379, 3306, 9090, 53, 27017];
const RANGES: [(u16, u16); 3] = [(30000, 32767), (8000, 8999), (6000, 6100)];

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn app_selector(app: &str) -> LabelSelector {
    LabelSelector::labels([("app", app)])
}

fn ports(rng: &mut StdRng) -> Vec<Port> {
    (0..rng.random_range(1..=2))
        .map(|_| {
            let protocol = if rng.random_bool(0.15) {
                Some(Protocol::Udp)
            } else {
                None
            };
            if rng.random_bool(0.1) {
                let &(first, last) = RANGES.choose(rng).unwrap_or(&RANGES[0]);
                Port {
                    protocol,
                    port: Some(PortValue::Number(i64::from(first))),
                    end_port: Some(i64::from(last)),
                }
            } else {
                Port {
                    protocol,
                    port: PORTS.choose(rng).map(|&p| PortValue::Number(i64::from(p))),
                    end_port: None,
                }
            }
        })
        .collect()
}

fn ip_block(rng: &mut StdRng) -> Peer {
    let (cidr, except) = match rng.random_range(0..3) {
        0 => ("0.0.0.0/0".to_owned(), vec!["10.0.0.0/8".to_owned()]),
        1 => {
            let third = rng.random_range(0..256);
            (format!("192.168.{third}.0/24"), Vec::new())
        }
        _ => {
            let second = rng.random_range(16..32);
            (
                format!("172.{second}.0.0/16"),
                vec![format!("172.{second}.1.0/24")],
            )
        }
    };
    let parse = |s: &str| Cidr(s.parse::<IpNet>().expect("generated CIDR"));
    Peer {
        ip_block: Some(IpBlock {
            cidr: parse(&cidr),
            except: except.iter().map(|s| parse(s)).collect(),
        }),
        ..Peer::default()
    }
}

/// A cluster of `pods` pods and `policies` policies.
fn world(pods: usize, policies: usize, seed: u64) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    // About 25 pods per namespace, five namespaces per team.
    let namespace_count = (pods / 25).max(4);
    let teams = (namespace_count / 5).max(4);
    let namespaces: Vec<(String, Labels)> = (0..namespace_count)
        .map(|i| {
            let env = ENVS[i % ENVS.len()];
            (
                format!("ns-{i}"),
                labels(&[
                    ("team", format!("team{}", i % teams)),
                    ("env", env.to_owned()),
                ]),
            )
        })
        .collect();
    // Apps per namespace, about five replicas each.
    let apps_per_ns = (pods / namespace_count / 5).max(1);
    let pod_list: Vec<PodIdentity> = (0..pods)
        .map(|i| {
            let (ns, _) = &namespaces[i % namespace_count];
            let app = format!("app{}", rng.random_range(0..apps_per_ns));
            let tier = TIERS.choose(&mut rng).copied().unwrap_or("fe");
            let n = u32::try_from(i).unwrap_or(0);
            PodIdentity {
                namespace: ns.clone(),
                name: format!("{app}-{i}"),
                labels: labels(&[
                    ("app", app),
                    ("tier", tier.to_owned()),
                    ("version", format!("v{}", rng.random_range(1..4))),
                ]),
                ipv4: Some(Ipv4Addr::from(0x0af4_0000 | (n / 250) << 8 | (n % 250 + 2))),
                ipv6: rng
                    .random_bool(0.2)
                    .then(|| Ipv6Addr::from(0xfd00_0010_0244_u128 << 80 | u128::from(n + 2))),
            }
        })
        .collect();
    let app = |rng: &mut StdRng| format!("app{}", rng.random_range(0..apps_per_ns));
    let tier = |rng: &mut StdRng| *TIERS.choose(rng).unwrap_or(&"fe");
    let action = |rng: &mut StdRng| {
        *[
            OrderedAction::Allow,
            OrderedAction::Deny,
            OrderedAction::Log,
            OrderedAction::Pass,
        ]
        .choose(rng)
        .unwrap_or(&OrderedAction::Pass)
    };
    let tier_in = |tier: &str| LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![Requirement {
            key: "tier".to_owned(),
            operator: Operator::In,
            values: vec![tier.to_owned()],
        }],
    };
    let peer = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            ip_block(rng)
        } else {
            Peer {
                pod_selector: Some(tier_in(tier(rng))),
                ..Peer::default()
            }
        }
    };
    // An ordered policy's rules: `count` ingress rules, at most one egress.
    let ordered_ingress = |rng: &mut StdRng, count: std::ops::RangeInclusive<i32>| {
        (0..rng.random_range(count))
            .map(|_| OrderedIngressRule {
                action: action(rng),
                from: vec![peer(rng)],
                ports: ports(rng),
            })
            .collect()
    };
    let ordered_egress = |rng: &mut StdRng| {
        (0..rng.random_range(0..=1))
            .map(|_| OrderedEgressRule {
                action: action(rng),
                to: vec![ip_block(rng)],
                ports: ports(rng),
            })
            .collect()
    };
    // A few cluster-wide policies, growing slowly with the cluster.
    let globals = 5 + policies / 200;
    let mut list = Vec::with_capacity(policies);
    for i in 0..policies {
        let (ns, _) = namespaces.choose(&mut rng).cloned().unwrap_or_default();
        let policy = if i < globals {
            Policy::Ordered(OrderedPolicy {
                scope: Scope::Global,
                name: format!("global-{i}"),
                spec: OrderedSpec {
                    order: Some(f64::from(rng.random_range(1..100u8))),
                    namespace_selector: rng.random_bool(0.7).then(|| {
                        LabelSelector::labels([("env", *ENVS.choose(&mut rng).unwrap_or(&"prod"))])
                    }),
                    pod_selector: if rng.random_bool(0.5) {
                        LabelSelector::all()
                    } else {
                        LabelSelector::labels([("tier", "db")])
                    },
                    ingress: ordered_ingress(&mut rng, 1..=2),
                    egress: ordered_egress(&mut rng),
                },
            })
        } else if rng.random_bool(0.7) {
            let spec = if rng.random_bool(0.08) {
                // A namespace-wide default deny.
                NetworkPolicySpec {
                    pod_selector: LabelSelector::all(),
                    policy_types: vec![PolicyType::Ingress, PolicyType::Egress],
                    ..NetworkPolicySpec::default()
                }
            } else {
                let ingress = (0..rng.random_range(1..=3))
                    .map(|_| {
                        let from = match rng.random_range(0..10) {
                            0..5 => vec![Peer {
                                pod_selector: Some(app_selector(&app(&mut rng))),
                                ..Peer::default()
                            }],
                            5..8 => vec![Peer {
                                namespace_selector: Some(LabelSelector::labels([(
                                    "team",
                                    format!("team{}", rng.random_range(0..teams)).as_str(),
                                )])),
                                pod_selector: Some(LabelSelector::labels([("tier", "fe")])),
                                ..Peer::default()
                            }],
                            8 => vec![ip_block(&mut rng)],
                            _ => Vec::new(),
                        };
                        IngressRule {
                            from,
                            ports: ports(&mut rng),
                        }
                    })
                    .collect();
                let egress = if rng.random_bool(0.3) {
                    let (target, _) = namespaces.choose(&mut rng).cloned().unwrap_or_default();
                    vec![
                        EgressRule {
                            to: vec![ip_block(&mut rng)],
                            ports: ports(&mut rng),
                        },
                        EgressRule {
                            to: vec![Peer {
                                namespace_selector: Some(LabelSelector::labels([(
                                    "kubernetes.io/metadata.name",
                                    target.as_str(),
                                )])),
                                pod_selector: Some(app_selector(&app(&mut rng))),
                                ..Peer::default()
                            }],
                            ports: Vec::new(),
                        },
                    ]
                } else {
                    Vec::new()
                };
                NetworkPolicySpec {
                    pod_selector: app_selector(&app(&mut rng)),
                    policy_types: Vec::new(),
                    ingress,
                    egress,
                }
            };
            Policy::Kubernetes(NetworkPolicy {
                namespace: ns,
                name: format!("np-{i}"),
                spec,
            })
        } else {
            Policy::Ordered(OrderedPolicy {
                scope: Scope::Namespace(ns),
                name: format!("op-{i}"),
                spec: OrderedSpec {
                    order: Some(f64::from(rng.random_range(1..100u8))),
                    namespace_selector: None,
                    pod_selector: app_selector(&app(&mut rng)),
                    ingress: ordered_ingress(&mut rng, 0..=2),
                    egress: ordered_egress(&mut rng),
                },
            })
        };
        list.push(policy);
    }
    World {
        pods: pod_list,
        namespaces: namespaces.into_iter().collect::<BTreeMap<_, _>>(),
        policies: list,
        node_addrs: vec!["10.244.0.1".parse().expect("address")],
    }
}

/// Compiles every endpoint; returns the rules and remote prefixes in all of them.
fn output_size(world: &World) -> (usize, usize) {
    let compiler = Compiler::new(world);
    (0..world.pods.len())
        .map(|i| {
            let c = compiler.endpoint(i);
            let sets = [&c.ingress, &c.egress];
            let rules = sets.iter().map(|s| s.rules.len()).sum::<usize>();
            let prefixes = sets
                .iter()
                .flat_map(|s| &s.rules)
                .map(|r| r.remote.len() + r.remote_except.len())
                .sum::<usize>();
            (rules, prefixes)
        })
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// Compiles every endpoint; returns the total number of rules.
fn compile_all(world: &World) -> usize {
    let compiler = Compiler::new(world);
    (0..world.pods.len())
        .map(|i| {
            let c = compiler.endpoint(i);
            c.ingress.rules.len() + c.egress.rules.len()
        })
        .sum()
}

/// Every pod's rule sets by port name, as the enforcer keeps what it pushed.
fn compiled(world: &World) -> BTreeMap<String, PortRules> {
    let compiler = Compiler::new(world);
    (0..world.pods.len())
        .map(|i| {
            let c = compiler.endpoint(i);
            (world.pods[i].full_name(), (c.ingress, c.egress))
        })
        .collect()
}

/// What a policy change costs until the dataplane enforces it, every pod on
/// one node: the daemon compiles every pod and diffs against what it pushed
/// (`pushed`), then the dataplane does with the `policy_set_many` of the
/// changed ports what it does (its checks, a classifier per rule set, the
/// endpoint table, one publish). Left out: the JSON on the socket and the
/// state-file write. Returns the number of ports pushed.
fn enforce(
    world: &World,
    pushed: &BTreeMap<String, PortRules>,
    writer: &mut TablesWriter,
) -> usize {
    fn classifier(spec: &RuleSetSpec) -> Arc<Classifier> {
        let set = rule_set("bench", spec).expect("compiled rule sets pass the dataplane's checks");
        Arc::new(Classifier::compile(&set).expect("the dataplane compiles the rule set"))
    }
    let wanted = compiled(world);
    let changes = plan::changes(&wanted, pushed);
    for set in &changes {
        let i = world
            .pods
            .iter()
            .position(|p| p.full_name() == set.name)
            .expect("a changed port is a pod");
        let pod = &world.pods[i];
        let port = u32::try_from(i).expect("pods fit a port id");
        let [a, b, c2, d] = port.to_be_bytes();
        writer
            .upsert_endpoint(Endpoint {
                port: PortId(port),
                name: pod.full_name(),
                mac: [0x0a, 0x58, a, b, c2, d],
                ipv4: pod.ipv4,
                ipv6: pod.ipv6,
                identity: port,
                ingress: classifier(&set.ingress),
                egress: classifier(&set.egress),
                rule_names: Default::default(),
            })
            .expect("the endpoint fits the table");
    }
    black_box(writer.publish());
    changes.len()
}

/// The world with one more NetworkPolicy: ingress to the first pod's app
/// from its namespace's pods, on TCP 8080.
fn plus_one_policy(world: &World) -> World {
    let pod = &world.pods[0];
    let app = pod.labels.get("app").expect("bench pods have an app label");
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {{name: bench-extra, namespace: {}}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: {app}}}}}\n  \
         ingress: [{{from: [{{podSelector: {{}}}}], ports: [{{port: 8080}}]}}]\n",
        pod.namespace
    );
    let mut next = world.clone();
    next.policies
        .extend(parse_documents(&yaml).expect("the extra policy parses"));
    next
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn bench_policy(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    let mut medians = Vec::new();
    for n in [100, 1_000, 2_000] {
        let world = world(n, n, 1);
        let (rules, prefixes) = output_size(&world);
        let samples: Vec<Duration> = (0..11)
            .map(|_| {
                let started = Instant::now();
                black_box(compile_all(black_box(&world)));
                started.elapsed()
            })
            .collect();
        let m = median(samples);
        eprintln!(
            "policy/{n}: {n} pods, {n} policies, {} namespaces: {rules} rules, {prefixes} \
             remote prefixes in all endpoints ({:.1} rules per endpoint); median of 11 compiles {m:?}",
            world.namespaces.len(),
            rules as f64 / n as f64,
        );
        medians.push((n, m));
        group.bench_function(format!("compile_all/{n}"), |b| {
            b.iter(|| compile_all(black_box(&world)))
        });
    }
    for pair in medians.windows(2) {
        let [(a, ta), (b, tb)] = pair else { continue };
        eprintln!(
            "policy: {a} -> {b}: x{:.1} the work (pods x policies: x{:.0})",
            tb.as_secs_f64() / ta.as_secs_f64(),
            (b * b) as f64 / (a * a) as f64
        );
    }
    for n in [100, 1_000, 2_000] {
        let world = world(n, n, 1);
        let after = plus_one_policy(&world);
        let pushed = compiled(&world);
        let nothing = BTreeMap::new();
        let mut writer = TablesWriter::new(NodeConfig::default());
        let mut time = |world: &World, pushed: &BTreeMap<String, PortRules>| {
            let mut ports = 0;
            let samples: Vec<Duration> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    ports = black_box(enforce(black_box(world), pushed, &mut writer));
                    started.elapsed()
                })
                .collect();
            (median(samples), ports)
        };
        let (one, one_ports) = time(&after, &pushed);
        let (all, all_ports) = time(&world, &nothing);
        eprintln!(
            "policy/{n}: apply one policy -> enforced (compile all, {one_ports} ports pushed): \
             median of 5 {one:?}; every port pushed (a new dataplane, {all_ports} ports): {all:?}"
        );
        group.bench_function(format!("apply_one/{n}"), |b| {
            b.iter(|| enforce(black_box(&after), &pushed, &mut writer))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_policy);
criterion_main!(benches);

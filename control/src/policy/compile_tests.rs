//! The shape of compiled rule sets: tiers, ids, expansion into (group, port)
//! rules, and the cases that must make no rule at all.

use std::collections::BTreeSet;

use tweed_api::dataplane::proto::{PortRangeSpec, RuleActionSpec, RuleSpec, VerdictSpec};

use super::*;
use crate::policy::fixtures::{cast, index, pod, world};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn compile(w: &World, pod: &str) -> CompiledEndpoint {
    Compiler::new(w).endpoint(index(w, pod))
}

#[test]
fn an_unselected_pod_allows_by_default_with_no_rules() {
    let w = world(cast(), "");
    let c = compile(&w, "prod/web");
    assert_eq!(c.ingress.default, VerdictSpec::Allow);
    assert_eq!(c.egress.default, VerdictSpec::Allow);
    assert!(c.ingress.rules.is_empty() && c.egress.rules.is_empty());
    assert!(c.origins.is_empty());

    // The node's rule alone decides nothing under a default allow: still
    // the plain allow-all, which the dataplane shares instead of compiling.
    let mut w = w;
    w.node_addrs = vec!["10.0.0.1".parse().unwrap()];
    let c = compile(&w, "prod/web");
    assert_eq!(
        (&c.ingress, &c.egress),
        (&RuleSetSpec::default(), &RuleSetSpec::default())
    );
    assert!(c.origins.is_empty());
}

#[test]
fn tiers_ids_and_origins() {
    let mut w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: o, namespace: prod}
spec:
  ingress: [{action: Log}, {action: Deny, from: [{ipBlock: {cidr: 192.168.0.0/16}}]}]
",
    );
    w.node_addrs = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let c = compile(&w, "prod/db");
    let shape: Vec<(u32, u8, RuleActionSpec)> = c
        .ingress
        .rules
        .iter()
        .map(|r| (r.id, r.tier, r.action))
        .collect();
    assert_eq!(
        shape,
        [
            (1, 0, RuleActionSpec::Allow),
            (2, 1, RuleActionSpec::Log),
            (3, 1, RuleActionSpec::Deny),
            (4, 2, RuleActionSpec::Allow),
        ]
    );
    assert_eq!(
        c.ingress.rules[0].remote,
        [net("10.0.0.1/32"), net("fd00::1/128")]
    );
    assert_eq!(c.ingress.default, VerdictSpec::Deny);
    assert_eq!(c.ingress.rules[3].remote, [net("10.0.1.1/32")]);
    let origin = |id| c.origins[&(Direction::Ingress, id)].to_string();
    assert_eq!(
        origin(1),
        "the node rule (the pod's own node is always allowed)"
    );
    assert_eq!(origin(2), "policy prod/o ingress[0]");
    assert_eq!(origin(3), "policy prod/o ingress[1]");
    assert_eq!(origin(4), "networkpolicy prod/k ingress[0]");
    // Egress: the node rule only, which decides nothing under a default
    // allow: the set is folded to the plain allow-all (and its origin goes).
    assert_eq!(c.egress, RuleSetSpec::default());
    assert_eq!(c.origins.len(), 4);
}

#[test]
fn a_rule_expands_to_one_rule_per_group_and_port() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    - namespaceSelector: {matchLabels: {team: b}}
      podSelector: {matchLabels: {tier: be}}
    - podSelector: {matchLabels: {app: web}}
    - ipBlock: {cidr: 172.16.0.5/12, except: [172.16.1.0/24]}
    ports:
    - {port: 5432}
    - {protocol: UDP}
    - {protocol: SCTP, port: 100, endPort: 200}
",
    );
    let c = compile(&w, "prod/db");
    let pods = vec![net("10.0.1.1/32"), net("10.0.2.3/32")];
    let block = (vec![net("172.16.0.0/12")], vec![net("172.16.1.0/24")]);
    let ports = [
        (
            Some(6),
            Some(PortRangeSpec {
                first: 5432,
                last: 5432,
            }),
        ),
        (Some(17), None),
        (
            Some(132),
            Some(PortRangeSpec {
                first: 100,
                last: 200,
            }),
        ),
    ];
    let mut expected = Vec::new();
    for (remote, except) in [(pods, vec![]), block] {
        for (protocol, range) in ports {
            expected.push(RuleSpec {
                id: expected.len() as u32 + 1,
                tier: 2,
                action: RuleActionSpec::Allow,
                remote: remote.clone(),
                remote_except: except.clone(),
                protocol,
                ports: range,
                name: None,
            });
        }
    }
    assert_eq!(c.ingress.rules, expected);
    assert!(tweed_dataplane::api::validate::rule_set("ingress", &c.ingress).is_ok());
}

#[test]
fn no_rule_for_a_peer_set_without_addresses_or_only_named_ports() {
    let w = world(
        vec![
            pod("prod", "db", &[("app", "db")], "10.0.1.2"),
            pod("prod", "ghost", &[("app", "ghost")], ""),
        ],
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: ghost}}}]
  - from: [{namespaceSelector: {matchLabels: {nothing: here}}}]
  - ports: [{port: http}, {port: metrics}]
  - ports: [{port: http}, {port: 8080}]
",
    );
    let c = compile(&w, "prod/db");
    assert_eq!(c.ingress.default, VerdictSpec::Deny);
    assert_eq!(c.ingress.rules.len(), 1, "{:?}", c.ingress.rules);
    let rule = &c.ingress.rules[0];
    assert!(rule.remote.is_empty(), "rule 3 has no peers: any source");
    assert_eq!(
        rule.ports,
        Some(PortRangeSpec {
            first: 8080,
            last: 8080
        })
    );
    assert_eq!(c.origins[&(Direction::Ingress, rule.id)].rule, Some(3));
}

#[test]
fn pods_contribute_the_addresses_they_have() {
    let w = world(
        vec![
            pod("prod", "db", &[("app", "db")], "10.0.1.2"),
            pod("prod", "a", &[("app", "web")], "10.0.1.1,fd00::1"),
            pod("prod", "b", &[("app", "web")], "fd00::2"),
            pod("prod", "c", &[("app", "web")], ""),
        ],
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
",
    );
    let c = compile(&w, "prod/db");
    assert_eq!(
        c.ingress.rules[0].remote,
        [net("10.0.1.1/32"), net("fd00::1/128"), net("fd00::2/128")]
    );
}

#[test]
fn namespaces_without_an_entry_have_their_name_label() {
    let mut w = world(
        vec![
            pod("prod", "db", &[("app", "db")], "10.0.1.2"),
            pod("other", "x", &[], "10.0.3.1"),
        ],
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: other}}}]}]
",
    );
    w.namespaces.clear();
    let c = compile(&w, "prod/db");
    assert_eq!(c.ingress.rules[0].remote, [net("10.0.3.1/32")]);
}

#[test]
fn compiling_twice_or_in_any_order_gives_the_same_sets() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: k, namespace: prod}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}]}]
  egress: [{to: [{podSelector: {}}]}]
---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: g}
spec:
  ingress: [{action: Deny, from: [{podSelector: {matchLabels: {app: tool}}}]}]
",
    );
    let compiler = Compiler::new(&w);
    let forward: Vec<_> = (0..w.pods.len()).map(|i| compiler.endpoint(i)).collect();
    let fresh = Compiler::new(&w);
    let backward: Vec<_> = (0..w.pods.len()).rev().map(|i| fresh.endpoint(i)).collect();
    for (i, c) in forward.iter().enumerate() {
        assert_eq!(*c, backward[w.pods.len() - 1 - i]);
        assert_eq!(*c, compiler.endpoint(i));
    }
    // Every rule id is unique within its set and has an origin.
    for c in &forward {
        for dir in [Direction::Ingress, Direction::Egress] {
            let ids: BTreeSet<u32> = c.rule_set(dir).rules.iter().map(|r| r.id).collect();
            assert_eq!(ids.len(), c.rule_set(dir).rules.len());
            assert!(ids.iter().all(|id| c.origins.contains_key(&(dir, *id))));
        }
    }
}

#[test]
fn a_compiler_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Compiler<'_>>();
    let w = world(cast(), "");
    let compiler = Compiler::new(&w);
    let sets: Vec<CompiledEndpoint> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                s.spawn({
                    let compiler = &compiler;
                    move || compiler.endpoint(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sets.len(), 2);
}

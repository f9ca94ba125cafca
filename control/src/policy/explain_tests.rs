//! The Kubernetes NetworkPolicy semantics, case by case, asked of explain
//! (which classifies the compiled rule sets with the dataplane's definition).

use super::*;
use crate::policy::fixtures::{
    DENY_INGRESS_PROD, allowed, cast, decided_by, index, np, pod, why, why_proto, world,
};

#[test]
fn a_pod_no_policy_selects_is_open() {
    let w = world(cast(), "");
    let e = why(&w, "prod/web", "prod/db", 80);
    assert!(e.allowed);
    assert_eq!(e.steps.len(), 2);
    assert_eq!(e.steps[0].decision, Decision::NotIsolated);
    assert_eq!(e.steps[1].decision, Decision::NotIsolated);
    assert!(allowed(&w, "dev/tool", "prod/db", 5432));
}

#[test]
fn default_deny_ingress_isolates_every_pod_of_the_namespace_for_ingress_only() {
    let w = world(cast(), DENY_INGRESS_PROD);
    let e = why(&w, "dev/web", "prod/db", 80);
    assert!(!e.allowed);
    assert!(e.steps[0].allowed, "dev/web's egress is open");
    assert_eq!(
        e.steps[1].decision,
        Decision::Isolated {
            by: vec![np("prod", "deny-ingress")]
        }
    );
    assert!(
        !allowed(&w, "prod/web", "prod/db", 80),
        "same namespace too"
    );
    assert!(
        allowed(&w, "prod/db", "dev/web", 80),
        "egress is not isolated"
    );
    assert!(
        allowed(&w, "dev/web", "dev/db", 80),
        "other namespaces untouched"
    );
}

#[test]
fn default_deny_egress_isolates_for_egress_only() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Egress]
",
    );
    let e = why(&w, "prod/web", "dev/web", 80);
    assert!(!e.allowed);
    assert!(!e.steps[0].allowed);
    assert!(e.steps[1].allowed);
    assert!(!allowed(&w, "prod/web", "8.8.8.8", 53));
    assert!(allowed(&w, "dev/web", "prod/web", 80), "ingress stays open");
}

#[test]
fn allow_from_a_namespace() {
    let yaml = format!(
        "{DENY_INGRESS_PROD}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: from-team-b, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{app: db}}}}
  ingress:
  - from: [{{namespaceSelector: {{matchLabels: {{team: b}}}}}}]
"
    );
    let w = world(cast(), &yaml);
    let e = why(&w, "dev/tool", "prod/db", 5432);
    assert!(e.allowed);
    assert_eq!(
        decided_by(&e, 1),
        "networkpolicy prod/from-team-b ingress[0]"
    );
    assert!(allowed(&w, "dev/web", "prod/db", 1));
    assert!(!allowed(&w, "prod/web", "prod/db", 5432), "prod is team a");
    assert!(!allowed(&w, "dev/web", "prod/web", 80), "web is not app=db");
}

#[test]
fn namespace_selector_by_the_metadata_name_label() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-dev, namespace: prod}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]
",
    );
    assert!(allowed(&w, "dev/web", "prod/db", 80));
    assert!(!allowed(&w, "prod/web", "prod/db", 80));
}

#[test]
fn allow_from_a_pod_selector_means_the_policys_namespace() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
",
    );
    assert!(allowed(&w, "prod/web", "prod/db", 5432));
    assert!(!allowed(&w, "prod/cache", "prod/db", 5432));
    assert!(
        !allowed(&w, "dev/web", "prod/db", 5432),
        "app=web of another namespace"
    );
    assert!(
        allowed(&w, "prod/cache", "prod/web", 80),
        "web is not selected"
    );
}

#[test]
fn both_selectors_in_one_peer_are_anded_two_peers_are_ored() {
    let and = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: b}}
      podSelector: {matchLabels: {app: web}}
",
    );
    assert!(allowed(&and, "dev/web", "prod/db", 80));
    assert!(!allowed(&and, "dev/tool", "prod/db", 80));
    assert!(!allowed(&and, "prod/web", "prod/db", 80));

    let or = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: b}}
    - podSelector: {matchLabels: {app: web}}
",
    );
    assert!(allowed(&or, "dev/web", "prod/db", 80));
    assert!(allowed(&or, "dev/tool", "prod/db", 80));
    assert!(allowed(&or, "prod/web", "prod/db", 80));
    assert!(!allowed(&or, "prod/cache", "prod/db", 80));
}

#[test]
fn ip_block_with_except() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: block, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{ipBlock: {cidr: 10.0.2.0/24, except: [10.0.2.2/32]}}]
",
    );
    assert!(allowed(&w, "dev/web", "prod/db", 80));
    assert!(allowed(&w, "dev/tool", "prod/db", 80));
    assert!(!allowed(&w, "dev/db", "prod/db", 80), "excepted");
    assert!(!allowed(&w, "prod/web", "prod/db", 80), "outside the cidr");
}

#[test]
fn port_range_with_end_port() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - ports: [{protocol: TCP, port: 8000, endPort: 8100}]
",
    );
    for (port, ok) in [
        (7999, false),
        (8000, true),
        (8050, true),
        (8100, true),
        (8101, false),
    ] {
        assert_eq!(allowed(&w, "dev/web", "prod/db", port), ok, "port {port}");
    }
    assert!(
        !why_proto(&w, "dev/web", "prod/db", 17, 8050).allowed,
        "UDP"
    );
}

#[test]
fn a_port_without_protocol_is_tcp() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 53}]}]
",
    );
    assert!(why_proto(&w, "dev/web", "prod/db", 6, 53).allowed);
    assert!(!why_proto(&w, "dev/web", "prod/db", 17, 53).allowed);
}

#[test]
fn protocol_only_port_means_every_port_of_it() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: udp, namespace: prod}
spec:
  podSelector: {}
  ingress: [{ports: [{protocol: UDP}]}]
",
    );
    assert!(why_proto(&w, "dev/web", "prod/db", 17, 1).allowed);
    assert!(why_proto(&w, "dev/web", "prod/db", 17, 65535).allowed);
    assert!(!why_proto(&w, "dev/web", "prod/db", 6, 53).allowed);
    assert!(!why_proto(&w, "dev/web", "prod/db", 1, 0).allowed, "ICMP");
}

#[test]
fn egress_to_a_cidr() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 192.168.0.0/16}}]
    ports: [{port: 443}]
",
    );
    let e = why(&w, "prod/web", "192.168.5.5", 443);
    assert!(e.allowed);
    assert_eq!(
        e.steps.len(),
        1,
        "an address outside the cluster has no ingress step"
    );
    assert_eq!(decided_by(&e, 0), "networkpolicy prod/out egress[0]");
    assert!(!allowed(&w, "prod/web", "192.168.5.5", 80));
    assert!(!allowed(&w, "prod/web", "192.169.0.1", 443));
    assert!(
        !allowed(&w, "prod/web", "prod/db", 443),
        "pods are outside the cidr"
    );
    assert!(
        allowed(&w, "prod/db", "192.169.0.1", 80),
        "db is not selected"
    );
}

#[test]
fn two_policies_allow_their_union() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 80}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: cache}}}], ports: [{port: 6379}]}]
",
    );
    assert!(allowed(&w, "prod/web", "prod/db", 80));
    assert!(allowed(&w, "prod/cache", "prod/db", 6379));
    assert!(!allowed(&w, "prod/web", "prod/db", 6379));
    assert!(!allowed(&w, "prod/cache", "prod/db", 80));
    let e = why(&w, "prod/web", "prod/db", 1);
    assert_eq!(
        e.steps[1].decision,
        Decision::Isolated {
            by: vec![np("prod", "a"), np("prod", "b")]
        }
    );
}

#[test]
fn policy_types_default_to_ingress_and_to_egress_only_with_egress_rules() {
    // Ingress rules only: ingress isolated, egress open.
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: in, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
",
    );
    assert!(!allowed(&w, "prod/cache", "prod/db", 80));
    assert!(allowed(&w, "prod/db", "dev/tool", 80));

    // Egress rules and no policyTypes: egress isolated, and ingress too (Ingress always).
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  egress: [{to: [{podSelector: {matchLabels: {app: cache}}}]}]
",
    );
    assert!(allowed(&w, "prod/db", "prod/cache", 6379));
    assert!(!allowed(&w, "prod/db", "prod/web", 80), "egress isolated");
    assert!(
        !allowed(&w, "prod/web", "prod/db", 5432),
        "ingress isolated, no rules"
    );

    // An empty spec: ingress deny for every pod of the namespace.
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty, namespace: prod}
",
    );
    assert!(!allowed(&w, "dev/web", "prod/web", 80));
    assert!(allowed(&w, "prod/web", "dev/web", 80));
}

fn with_expression(expression: &str) -> World {
    world(
        vec![
            pod(
                "prod",
                "db",
                &[("app", "db"), ("role", "target")],
                "10.0.1.2",
            ),
            pod("prod", "web", &[("app", "web")], "10.0.1.1"),
            pod(
                "prod",
                "cache",
                &[("app", "cache"), ("tier", "be")],
                "10.0.1.3",
            ),
            pod("prod", "bare", &[], "10.0.1.4"),
        ],
        &format!(
            "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: expr, namespace: prod}}
spec:
  podSelector: {{matchLabels: {{role: target}}}}
  ingress:
  - from:
    - podSelector:
        matchExpressions: [{expression}]
"
        ),
    )
}

#[test]
fn match_expressions_operators() {
    let sources = ["prod/web", "prod/cache", "prod/bare"];
    let cases = [
        (
            "{key: app, operator: In, values: [web, cache]}",
            [true, true, false],
        ),
        (
            "{key: app, operator: NotIn, values: [web]}",
            [false, true, true],
        ),
        ("{key: tier, operator: Exists}", [false, true, false]),
        ("{key: tier, operator: DoesNotExist}", [true, false, true]),
    ];
    for (expression, expected) in cases {
        let w = with_expression(expression);
        for (source, ok) in sources.iter().zip(expected) {
            assert_eq!(
                allowed(&w, source, "prod/db", 80),
                ok,
                "{expression} from {source}"
            );
        }
    }
}

#[test]
fn match_labels_and_expressions_are_anded() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: both, namespace: dev}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector:
        matchLabels: {tier: be}
        matchExpressions: [{key: app, operator: In, values: [web, tool]}]
",
    );
    assert!(allowed(&w, "dev/tool", "dev/db", 80));
    assert!(!allowed(&w, "dev/web", "dev/db", 80), "no tier=be");
}

#[test]
fn a_named_port_fails_closed_with_a_warning() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{ports: [{port: postgres}]}]
",
    );
    for port in [80, 5432] {
        assert!(!allowed(&w, "prod/web", "prod/db", port), "port {port}");
    }
    let warnings = crate::policy::validate::warnings(&w.policies[0]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("spec.ingress[0].ports[0].port: named port \"postgres\""),
        "{}",
        warnings[0]
    );
}

#[test]
fn the_node_is_always_allowed() {
    let mut w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: deny-everything}
spec:
  ingress: [{action: Deny}]
  egress: [{action: Deny}]
",
    );
    w.node_addrs = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let e = why(&w, "prod/web", "10.0.0.1", 10250);
    assert!(e.allowed);
    let Decision::Rule(origin) = &e.steps[0].decision else {
        panic!("{e}");
    };
    assert_eq!(origin.policy, None);
    assert!(!allowed(&w, "prod/web", "10.0.0.2", 80));

    // Ingress from the node, on the compiled set as the dataplane sees it.
    let compiled = Compiler::new(&w).endpoint(index(&w, "prod/db"));
    let set = tweed_dataplane::api::validate::rule_set("ingress", &compiled.ingress).unwrap();
    let node =
        tweed_dataplane::table::acl::classify_linear(&set, "10.0.0.1".parse().unwrap(), 6, 22);
    assert_eq!(node.verdict, tweed_dataplane::table::acl::Verdict::Allow);
    assert_eq!(node.rule.map(|id| id.0), Some(1), "the node rule is id 1");
    let other =
        tweed_dataplane::table::acl::classify_linear(&set, "10.0.0.9".parse().unwrap(), 6, 22);
    assert_eq!(other.verdict, tweed_dataplane::table::acl::Verdict::Deny);
}

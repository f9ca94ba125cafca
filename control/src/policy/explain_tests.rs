//! The Kubernetes and ordered semantics, case by case, asked of explain
//! (which classifies the compiled rule sets with the dataplane's definition).

use super::*;
use crate::policy::fixtures::{allowed, cast, index, pod, why, why_proto, world};
use crate::policy::model::{OrderedAction, PolicyKind};

const DENY_INGRESS_PROD: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
";

fn key(kind: PolicyKind, ns: Option<&str>, name: &str) -> PolicyKey {
    PolicyKey {
        kind,
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    }
}

fn np(ns: &str, name: &str) -> PolicyKey {
    key(PolicyKind::NetworkPolicy, Some(ns), name)
}

/// The origin of the step that decided, as `KEY DIR[i]`.
fn decided_by(e: &Explanation, step: usize) -> String {
    match &e.steps[step].decision {
        Decision::Rule(origin) => origin.to_string(),
        other => format!("{other:?}"),
    }
}

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
    let warnings = w.policies[0].warnings();
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

const ALLOW_WEB_TO_DB: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-to-db, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
";

#[test]
fn an_ordered_deny_beats_a_kubernetes_allow() {
    let yaml = format!(
        "{ALLOW_WEB_TO_DB}---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {{name: no-web, namespace: prod}}
spec:
  order: 10
  podSelector: {{matchLabels: {{app: db}}}}
  ingress:
  - action: Deny
    from: [{{podSelector: {{matchLabels: {{app: web}}}}}}]
    ports: [{{port: 5432}}]
"
    );
    let w = world(cast(), &yaml);
    let e = why(&w, "prod/web", "prod/db", 5432);
    assert!(!e.allowed);
    let Decision::Rule(origin) = &e.steps[1].decision else {
        panic!("{e}");
    };
    assert_eq!(origin.to_string(), "policy prod/no-web ingress[0]");
    assert_eq!(origin.action, OrderedAction::Deny);
    assert!(
        allowed(&w, "prod/web", "prod/db", 80),
        "another port falls through"
    );
}

#[test]
fn pass_hands_the_decision_to_kubernetes() {
    let yaml = format!(
        "{DENY_INGRESS_PROD}---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {{name: pass-then-allow}}
spec:
  order: 1
  ingress:
  - action: Pass
    from: [{{namespaceSelector: {{matchLabels: {{team: b}}}}}}]
  - action: Allow
"
    );
    let w = world(cast(), &yaml);
    // Passed: the later ordered Allow is skipped, and Kubernetes' default deny decides.
    let e = why(&w, "dev/web", "prod/db", 80);
    assert!(!e.allowed, "{e}");
    assert_eq!(
        e.steps[1].decision,
        Decision::Isolated {
            by: vec![np("prod", "deny-ingress")]
        }
    );
    // Not passed: the ordered Allow decides.
    assert!(allowed(&w, "prod/web", "prod/db", 80));
    // Passed, but nothing isolates dev: open.
    let e = why(&w, "dev/web", "dev/db", 80);
    assert!(e.allowed);
    assert_eq!(e.steps[1].decision, Decision::NotIsolated);
}

#[test]
fn pass_to_a_kubernetes_allow() {
    let yaml = format!(
        "{ALLOW_WEB_TO_DB}---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {{name: pass, namespace: prod}}
spec:
  ingress: [{{action: Pass}}, {{action: Deny}}]
"
    );
    let w = world(cast(), &yaml);
    let e = why(&w, "prod/web", "prod/db", 80);
    assert!(e.allowed);
    assert_eq!(decided_by(&e, 1), "networkpolicy prod/web-to-db ingress[0]");
    assert!(!allowed(&w, "prod/cache", "prod/db", 80));
}

#[test]
fn an_ordered_allow_beats_a_kubernetes_default_deny() {
    let yaml = format!(
        "{DENY_INGRESS_PROD}---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {{name: monitoring, namespace: prod}}
spec:
  ingress:
  - action: Allow
    from: [{{namespaceSelector: {{matchLabels: {{team: b}}}}, podSelector: {{matchLabels: {{tier: be}}}}}}]
    ports: [{{port: 9100}}]
"
    );
    let w = world(cast(), &yaml);
    let e = why(&w, "dev/tool", "prod/web", 9100);
    assert!(e.allowed);
    assert_eq!(decided_by(&e, 1), "policy prod/monitoring ingress[0]");
    assert!(!allowed(&w, "dev/tool", "prod/web", 9101));
    assert!(!allowed(&w, "dev/web", "prod/web", 9100));
}

#[test]
fn log_records_the_rule_and_the_next_rule_decides() {
    let w = world(
        cast(),
        "
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: audit, namespace: prod}
spec:
  egress:
  - action: Log
    to: [{ipBlock: {cidr: 0.0.0.0/0}}]
  - action: Deny
    to: [{ipBlock: {cidr: 8.8.8.0/24}}]
",
    );
    let e = why(&w, "prod/web", "8.8.8.8", 53);
    assert!(!e.allowed);
    assert_eq!(decided_by(&e, 0), "policy prod/audit egress[1]");
    assert_eq!(e.steps[0].logged.len(), 1);
    assert_eq!(
        e.steps[0].logged[0].to_string(),
        "policy prod/audit egress[0]"
    );
    let e = why(&w, "prod/web", "1.1.1.1", 53);
    assert!(e.allowed, "logged, then nothing decides: open");
    assert_eq!(e.steps[0].decision, Decision::NotIsolated);
    assert_eq!(e.steps[0].logged.len(), 1);

    // The dataplane's outcome carries the Log rule's id.
    let compiled = Compiler::new(&w).endpoint(index(&w, "prod/web"));
    let set = tweed_dataplane::api::validate::rule_set("egress", &compiled.egress).unwrap();
    let outcome =
        tweed_dataplane::table::acl::classify_linear(&set, "8.8.8.8".parse().unwrap(), 17, 53);
    let log_id = compiled
        .egress
        .rules
        .iter()
        .find(|r| r.action == tweed_dataplane::api::proto::RuleActionSpec::Log)
        .map(|r| r.id)
        .unwrap();
    assert_eq!(
        outcome.logged.iter().map(|id| id.0).collect::<Vec<_>>(),
        [log_id]
    );
}

#[test]
fn global_policy_with_a_namespace_selector() {
    let w = world(
        cast(),
        "
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: no-tools-in-team-a}
spec:
  namespaceSelector: {matchLabels: {team: a}}
  ingress:
  - action: Deny
    from: [{podSelector: {matchLabels: {app: tool}}}]
",
    );
    let e = why(&w, "dev/tool", "prod/db", 80);
    assert!(
        !e.allowed,
        "a podSelector-only peer of a GlobalPolicy spans namespaces"
    );
    assert_eq!(
        decided_by(&e, 1),
        "globalpolicy no-tools-in-team-a ingress[0]"
    );
    assert!(allowed(&w, "dev/tool", "dev/db", 80), "dev is not team a");
    assert!(allowed(&w, "dev/web", "prod/db", 80));
}

#[test]
fn ordered_policies_go_by_order_then_key() {
    let w = world(
        cast(),
        "
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: a-deny}
spec:
  order: 20
  ingress: [{action: Deny}]
---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: z-allow, namespace: prod}
spec:
  order: 10
  ingress: [{action: Allow}]
---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: b-allow}
spec:
  order: 20
  ingress: [{action: Allow}]
",
    );
    assert_eq!(
        decided_by(&why(&w, "dev/web", "prod/db", 80), 1),
        "policy prod/z-allow ingress[0]"
    );
    // Tie at 20: globalpolicy a-deny < globalpolicy b-allow.
    assert_eq!(
        decided_by(&why(&w, "prod/db", "dev/web", 80), 1),
        "globalpolicy a-deny ingress[0]"
    );
}

#[test]
fn a_peer_that_selects_no_pod_allows_nothing() {
    let w = world(
        cast(),
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: nobody, namespace: prod}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {matchLabels: {app: nonexistent}}}]
  - from: [{namespaceSelector: {matchLabels: {team: nobody}}}]
---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: nobody-ordered, namespace: prod}
spec:
  ingress:
  - action: Allow
    from: [{podSelector: {matchLabels: {app: nonexistent}}}]
",
    );
    for source in ["prod/web", "dev/web", "dev/tool"] {
        assert!(!allowed(&w, source, "prod/db", 80), "from {source}");
    }
    let compiled = Compiler::new(&w).endpoint(index(&w, "prod/db"));
    assert!(
        compiled.ingress.rules.is_empty(),
        "no rule at all, in particular none with an empty (any) remote: {:?}",
        compiled.ingress.rules
    );
}

#[test]
fn an_address_of_a_pod_is_that_pod() {
    let w = world(cast(), DENY_INGRESS_PROD);
    let e = why(&w, "dev/web", "10.0.1.2", 80);
    assert_eq!(e.steps.len(), 2);
    assert_eq!(e.steps[1].endpoint, "prod/db");
    assert!(!e.allowed);
}

#[test]
fn dual_stack_pods_use_ipv4_and_ipv6_only_pods_use_ipv6() {
    let pods = vec![
        pod("prod", "a", &[("app", "a")], "10.0.1.1,fd00::1"),
        pod("prod", "b", &[("app", "b")], "10.0.1.2,fd00::2"),
        pod("prod", "c", &[("app", "c")], "fd00::3"),
        pod("prod", "d", &[("app", "d")], "10.0.1.4"),
    ];
    let w = world(
        pods,
        "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: prod}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{podSelector: {matchLabels: {app: c}}}]}]
",
    );
    let e = why(&w, "prod/a", "prod/b", 80);
    assert_eq!(e.steps[0].remote, Some("10.0.1.2".parse().unwrap()));
    assert_eq!(e.steps[1].remote, Some("10.0.1.1".parse().unwrap()));
    assert!(!e.allowed);
    let e = why(&w, "prod/c", "prod/b", 80);
    assert_eq!(e.steps[1].remote, Some("fd00::3".parse().unwrap()));
    assert!(e.allowed, "{e}");
    let e = why(&w, "prod/c", "prod/d", 80);
    assert!(!e.allowed);
    assert_eq!(e.steps[0].decision, Decision::NoAddress);
}

#[test]
fn display_names_each_step_and_the_verdict() {
    let yaml = format!(
        "{DENY_INGRESS_PROD}---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {{name: audit, namespace: dev}}
spec:
  egress: [{{action: Log}}]
"
    );
    let w = world(cast(), &yaml);
    let text = why(&w, "dev/web", "prod/db", 80).to_string();
    assert_eq!(
        text,
        "dev/web egress to 10.0.1.2: allowed: no NetworkPolicy selects it for egress, so it is open; \
         logged by policy dev/audit egress[0]\n\
         prod/db ingress from 10.0.2.1: denied: selected by networkpolicy prod/deny-ingress and \
         no rule allows it (default deny)\n\
         verdict: denied"
    );
    let w = world(cast(), ALLOW_WEB_TO_DB);
    let text = why(&w, "prod/web", "prod/db", 80).to_string();
    assert!(
        text.contains(
            "prod/db ingress from 10.0.1.1: allowed by networkpolicy prod/web-to-db ingress[0]\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("verdict: allowed"), "{text}");
}

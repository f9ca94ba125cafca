//! The ordered-policy semantics and the edges of explain (empty peers,
//! addresses, families, display), case by case.

use super::*;
use crate::policy::fixtures::{
    DENY_INGRESS_PROD, allowed, cast, decided_by, index, np, pod, why, world,
};
use crate::policy::model::OrderedAction;

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
        .find(|r| r.action == tweed_api::dataplane::proto::RuleActionSpec::Log)
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

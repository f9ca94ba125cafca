use super::*;
use crate::policy::model::{PolicyKey, PolicyKind, PortValue, Protocol};

/// A NetworkPolicy in `prod` with `spec` (YAML, indented two spaces).
fn np(spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: prod\nspec:\n{spec}"
    )
}

/// The field and message of the error parsing `text` must give.
fn error(text: &str) -> (String, String) {
    match parse_documents(text) {
        Ok(p) => panic!("parsed, expected an error: {p:?}"),
        Err(e) => (e.field().unwrap_or("").to_owned(), e.to_string()),
    }
}

fn assert_field(text: &str, field: &str, says: &str) {
    let (got, message) = error(text);
    assert_eq!(got, field, "{message}");
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

#[test]
fn reads_a_network_policy() {
    let policies = parse_documents(&np("  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - {protocol: UDP, port: 53}
    - {port: 8000, endPort: 9000}
    - port: http
"))
    .unwrap();
    let [Policy::Kubernetes(p)] = &policies[..] else {
        panic!("{policies:?}");
    };
    assert_eq!((p.namespace.as_str(), p.name.as_str()), ("prod", "p"));
    let rule = &p.spec.ingress[0];
    assert_eq!(rule.ports[0].protocol, Some(Protocol::Udp));
    assert_eq!(rule.ports[1].port, Some(PortValue::Number(8000)));
    assert_eq!(rule.ports[1].end_port, Some(9000));
    assert_eq!(rule.ports[2].port, Some(PortValue::Name("http".into())));
    assert_eq!(
        policies[0].key(),
        PolicyKey {
            kind: PolicyKind::NetworkPolicy,
            namespace: Some("prod".into()),
            name: "p".into()
        }
    );
    assert_eq!(policies[0].key().to_string(), "networkpolicy prod/p");
}

#[test]
fn missing_namespace_is_default_and_metadata_extras_and_status_are_ignored() {
    let text = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  uid: 1234
  resourceVersion: '7'
  labels: {a: b}
  annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}'}
  managedFields: [{manager: kubectl}]
spec: {podSelector: {}}
status: {conditions: []}
";
    let policies = parse_documents(text).unwrap();
    assert_eq!(policies[0].key().to_string(), "networkpolicy default/p");
}

#[test]
fn ordered_kinds() {
    let policies = parse_documents(
        "
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: a}
spec:
  order: 10.5
  ingress: [{action: Log}, {action: Pass, from: [{podSelector: {}}]}]
---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: g}
spec:
  namespaceSelector: {matchLabels: {team: a}}
  egress: [{action: Deny, to: [{ipBlock: {cidr: 'fd00::/8'}}], ports: [{protocol: SCTP}]}]
",
    )
    .unwrap();
    assert_eq!(policies[0].key().to_string(), "policy default/a");
    assert_eq!(policies[1].key().to_string(), "globalpolicy g");
}

#[test]
fn many_documents_json_and_lists() {
    let yaml = format!(
        "---\n{}\n---\n{}\n---\n",
        np("  podSelector: {}\n"),
        np("  podSelector: {}\n").replace("name: p", "name: q")
    );
    assert_eq!(parse_documents(&yaml).unwrap().len(), 2);

    let json = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"j","namespace":"dev"},
        "spec":{"podSelector":{},"ingress":[{"ports":[{"port":80}]}]}}
        {"apiVersion":"tweed.dev/v1","kind":"GlobalPolicy","metadata":{"name":"g"},"spec":{"order":1}}"#;
    let policies = parse_documents(json).unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0].key().to_string(), "networkpolicy dev/j");

    let array = r#"[{"apiVersion":"tweed.dev/v1","kind":"GlobalPolicy","metadata":{"name":"g"}}]"#;
    assert_eq!(parse_documents(array).unwrap().len(), 1);

    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n",
        r#"{"apiVersion":"tweed.dev/v1","kind":"GlobalPolicy","metadata":{"name":"a"}}"#,
        r#"{"apiVersion":"tweed.dev/v1","kind":"GlobalPolicy","metadata":{"name":"b"}}"#,
    );
    let policies = parse_documents(&list).unwrap();
    assert_eq!(policies[1].key().to_string(), "globalpolicy b");

    assert_eq!(parse_documents("").unwrap(), []);
    assert_eq!(parse_documents("---\n").unwrap(), []);
}

#[test]
fn errors_name_the_document_and_object() {
    let text = format!(
        "{}\n---\n{}",
        np("  podSelector: {}\n"),
        np("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n")
            .replace("name: p", "name: second")
    );
    let e = parse_documents(&text).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "document 2 (NetworkPolicy prod/second): spec.ingress[0].ports[0].port: 0 is outside 1..=65535"
        ),
        "{e}"
    );
    let PolicyError::Invalid { document, .. } = e else {
        panic!("{e:?}");
    };
    assert_eq!(document, 2);

    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: tweed.dev/v1, kind: Policy, metadata: {name: x}, spec: {order: x}}\n";
    assert_field(list, "items[0].spec.order", "invalid type");
}

#[test]
fn syntax_errors_name_the_document() {
    let e = parse_documents("a: b\n---\n[unclosed\n").unwrap_err();
    assert!(
        matches!(e, PolicyError::Syntax { document: 2, .. }),
        "{e:?}"
    );
    let e = parse_documents("{\"a\": }").unwrap_err();
    assert!(
        matches!(e, PolicyError::Syntax { document: 1, .. }),
        "{e:?}"
    );
}

#[test]
fn kind_and_api_version() {
    assert_field(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
        "kind",
        "not a policy kind",
    );
    assert_field("apiVersion: v1\nmetadata: {name: s}\n", "kind", "missing");
    assert_field(
        "apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: s}\n",
        "apiVersion",
        "networking.k8s.io/v1",
    );
    assert_field(
        "apiVersion: networking.k8s.io/v1\nkind: Policy\nmetadata: {name: s}\n",
        "apiVersion",
        "tweed.dev/v1",
    );
    assert_field("- 1\n", "[0]", "expected a mapping");
}

#[test]
fn names() {
    assert_field(
        &np("  podSelector: {}\n").replace("name: p", "name: Web_1"),
        "metadata.name",
        "lowercase",
    );
    assert_field(
        &np("  podSelector: {}\n").replace("name: p", "name: -a"),
        "metadata.name",
        "starts or ends",
    );
    assert_field(
        &np("  podSelector: {}\n").replace("namespace: prod", "namespace: a.b"),
        "metadata.namespace",
        "namespace",
    );
    assert_field(
        &np("  podSelector: {}\n").replace("  name: p\n", ""),
        "metadata.name",
        "missing",
    );
    assert!(
        parse_documents(&np("  podSelector: {}\n").replace("name: p", "name: a.b-c.d")).is_ok()
    );
}

#[test]
fn unknown_spec_fields_are_errors() {
    assert_field(
        &np("  podSelectr: {}\n"),
        "spec.podSelectr",
        "unknown field `podSelectr`",
    );
    assert_field(
        &np("  ingress: [{form: []}]\n"),
        "spec.ingress[0].form",
        "unknown field `form`",
    );
    assert_field(
        &np("  ingress: [{ports: [{prot: TCP}]}]\n"),
        "spec.ingress[0].ports[0].prot",
        "unknown field",
    );
    assert_field(
        &np("  podSelector: {}\n").replace("spec:", "sepc:"),
        "sepc",
        "unknown field `sepc`",
    );
}

#[test]
fn label_syntax() {
    assert_field(
        &np("  podSelector: {matchLabels: {'bad key!': x}}\n"),
        "spec.podSelector.matchLabels",
        "label key",
    );
    assert_field(
        &np("  podSelector: {matchLabels: {'Bad_Prefix/app': x}}\n"),
        "spec.podSelector.matchLabels",
        "prefix",
    );
    assert_field(
        &np("  podSelector: {matchLabels: {app: '-x'}}\n"),
        "spec.podSelector.matchLabels.app",
        "label value",
    );
    assert!(
        parse_documents(&np(
            "  podSelector: {matchLabels: {app.kubernetes.io/name: x_y.z, e: ''}}\n"
        ))
        .is_ok()
    );
}

#[test]
fn selector_operators() {
    let at = "spec.ingress[0].from[0].podSelector.matchExpressions[0]";
    let with = |expr: &str| {
        np(&format!(
            "  ingress: [{{from: [{{podSelector: {{matchExpressions: [{expr}]}}}}]}}]\n"
        ))
    };
    assert_field(
        &with("{key: a, operator: In}"),
        &format!("{at}.values"),
        "at least one value",
    );
    assert_field(
        &with("{key: a, operator: NotIn, values: []}"),
        &format!("{at}.values"),
        "at least one value",
    );
    assert_field(
        &with("{key: a, operator: Exists, values: [x]}"),
        &format!("{at}.values"),
        "takes no values",
    );
    assert_field(
        &with("{key: a, operator: DoesNotExist, values: [x]}"),
        &format!("{at}.values"),
        "takes no values",
    );
    assert_field(
        &with("{key: a, operator: Equals, values: [x]}"),
        &format!("{at}.operator"),
        "unknown variant `Equals`",
    );
    assert_field(
        &with("{key: 'a b', operator: Exists}"),
        &format!("{at}.key"),
        "label key",
    );
    assert_field(
        &with("{key: a, operator: In, values: ['a b']}"),
        &format!("{at}.values[0]"),
        "label value",
    );
}

#[test]
fn protocols_and_ports() {
    let at = "spec.ingress[0].ports[0]";
    let with = |port: &str| np(&format!("  ingress: [{{ports: [{port}]}}]\n"));
    assert_field(
        &with("{protocol: ICMP}"),
        &format!("{at}.protocol"),
        "unknown variant `ICMP`",
    );
    assert_field(
        &with("{protocol: tcp}"),
        &format!("{at}.protocol"),
        "expected one of `TCP`, `UDP`, `SCTP`",
    );
    assert_field(
        &with("{port: 0}"),
        &format!("{at}.port"),
        "0 is outside 1..=65535",
    );
    assert_field(
        &with("{port: 65536}"),
        &format!("{at}.port"),
        "outside 1..=65535",
    );
    assert_field(
        &with("{port: -1}"),
        &format!("{at}.port"),
        "outside 1..=65535",
    );
    assert_field(
        &with("{port: '80'}"),
        &format!("{at}.port"),
        "neither a port number nor a port name",
    );
    assert_field(
        &with("{port: 80.5}"),
        &format!("{at}.port"),
        "a port number",
    );
    assert_field(
        &with("{port: 90, endPort: 80}"),
        &format!("{at}.endPort"),
        "less than port 90",
    );
    assert_field(
        &with("{port: 90, endPort: 70000}"),
        &format!("{at}.endPort"),
        "outside",
    );
    assert_field(
        &with("{endPort: 80}"),
        &format!("{at}.endPort"),
        "needs port",
    );
    assert_field(
        &with("{port: http, endPort: 80}"),
        &format!("{at}.endPort"),
        "numeric port",
    );
    assert!(parse_documents(&with("{port: 80, endPort: 80}")).is_ok());
    assert!(parse_documents(&with("{port: my-port}")).is_ok());
}

#[test]
fn ip_blocks() {
    let at = "spec.egress[0].to[0].ipBlock";
    let with = |block: &str| np(&format!("  egress: [{{to: [{{ipBlock: {block}}}]}}]\n"));
    assert_field(
        &with("{cidr: 10.0.0.0}"),
        &format!("{at}.cidr"),
        "is not a CIDR",
    );
    assert_field(
        &with("{cidr: 10.0.0.0/33}"),
        &format!("{at}.cidr"),
        "is not a CIDR",
    );
    assert_field(&with("{except: [10.0.0.0/8]}"), at, "missing field `cidr`");
    assert_field(
        &with("{cidr: 10.0.0.0/16, except: [10.1.0.0/24]}"),
        &format!("{at}.except[0]"),
        "strict subset",
    );
    assert_field(
        &with("{cidr: 10.0.0.0/16, except: [10.0.0.0/16]}"),
        &format!("{at}.except[0]"),
        "strict subset",
    );
    assert_field(
        &with("{cidr: 10.0.0.0/16, except: [10.0.0.0/8]}"),
        &format!("{at}.except[0]"),
        "strict subset",
    );
    assert_field(
        &with("{cidr: 10.0.0.0/16, except: ['fd00::/64']}"),
        &format!("{at}.except[0]"),
        "of the cidr's family",
    );
    assert_field(
        &with("{cidr: 10.0.0.0/16, except: [nope]}"),
        &format!("{at}.except[0]"),
        "is not a CIDR",
    );
    assert!(
        parse_documents(&with(
            "{cidr: 10.0.0.0/16, except: [10.0.1.0/24, 10.0.2.7/32]}"
        ))
        .is_ok()
    );
    let host_bits = parse_documents(&with("{cidr: 10.0.0.1/16}")).unwrap();
    assert_eq!(
        super::validate::warnings(&host_bits[0]),
        [format!(
            "{at}.cidr: 10.0.0.1/16 has host bits set; it is read as 10.0.0.0/16"
        )]
    );
}

#[test]
fn peers_are_an_ip_block_or_selectors() {
    let at = "spec.ingress[0].from[0]";
    let with = |peer: &str| np(&format!("  ingress: [{{from: [{peer}]}}]\n"));
    assert_field(
        &with("{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}"),
        at,
        "cannot be combined",
    );
    assert_field(
        &with("{ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}"),
        at,
        "cannot be combined",
    );
    assert_field(&with("{}"), at, "an empty peer");
    assert!(parse_documents(&with("{podSelector: {}, namespaceSelector: {}}")).is_ok());
}

#[test]
fn policy_types() {
    assert_field(
        &np("  policyTypes: [Both]\n"),
        "spec.policyTypes[0]",
        "unknown variant `Both`",
    );
    assert_field(
        &np("  policyTypes: [ingress]\n"),
        "spec.policyTypes[0]",
        "expected `Ingress` or `Egress`",
    );
    let p = parse_documents(&np("  policyTypes: [Egress]\n  ingress: [{}]\n")).unwrap();
    assert_eq!(
        super::validate::warnings(&p[0]),
        ["spec.ingress: 1 rule(s) are ignored because spec.policyTypes does not list Ingress"]
    );
}

#[test]
fn ordered_policy_checks() {
    let policy = |spec: &str| {
        format!(
            "apiVersion: tweed.dev/v1\nkind: Policy\nmetadata: {{name: o, namespace: prod}}\nspec:\n{spec}"
        )
    };
    let global = |meta: &str, spec: &str| {
        format!("apiVersion: tweed.dev/v1\nkind: GlobalPolicy\nmetadata: {meta}\nspec:\n{spec}")
    };
    assert_field(
        &policy("  ingress: [{action: Drop}]\n"),
        "spec.ingress[0].action",
        "unknown variant `Drop`",
    );
    assert_field(
        &policy("  ingress: [{from: []}]\n"),
        "spec.ingress[0]",
        "missing field `action`",
    );
    assert_field(
        &policy("  egress: [{action: Allow, from: []}]\n"),
        "spec.egress[0].from",
        "unknown field `from`",
    );
    assert_field(
        &policy("  order: .nan\n"),
        "spec.order",
        "not a finite number",
    );
    assert_field(
        &policy("  namespaceSelector: {}\n"),
        "spec.namespaceSelector",
        "make it a GlobalPolicy",
    );
    assert_field(
        &global("{name: g, namespace: prod}", "  order: 1\n"),
        "metadata.namespace",
        "cluster-wide",
    );
    assert_field(
        &global(
            "{name: g}",
            "  namespaceSelector: {matchLabels: {'a b': c}}\n",
        ),
        "spec.namespaceSelector.matchLabels",
        "label key",
    );
    assert_field(
        &global(
            "{name: g}",
            "  egress: [{action: Allow, to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]\n",
        ),
        "spec.egress[0].to[0].ipBlock.except[0]",
        "strict subset",
    );
}

#[test]
fn nulls_are_absent_fields() {
    let text = np("  podSelector:\n  ingress:\n  - from:\n    ports:\n");
    let policies = parse_documents(&text).unwrap();
    let Policy::Kubernetes(p) = &policies[0] else {
        panic!()
    };
    assert!(p.spec.pod_selector.is_empty());
    assert!(p.spec.ingress[0].from.is_empty());
}

#[test]
fn policies_round_trip_through_json() {
    let text = format!(
        "{}\n---\n{}",
        np("  podSelector: {matchExpressions: [{key: a, operator: In, values: [b]}]}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {x: y}}}], ports: [{port: http}, {protocol: UDP}]}]
  egress: [{to: [{ipBlock: {cidr: 10.0.0.1/8, except: [10.1.0.0/16]}}], ports: [{port: 1, endPort: 2}]}]
"),
        "apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: g}
spec:
  order: 3
  namespaceSelector: {matchLabels: {team: a}}
  ingress: [{action: Log}]
  egress: [{action: Deny, to: [{podSelector: {}}], ports: [{port: 53, protocol: UDP}]}]
"
    );
    let policies = parse_documents(&text).unwrap();
    let json = serde_json::to_string(&policies).unwrap();
    let back: Vec<Policy> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, policies);
    assert_eq!(
        parse_documents(&json).unwrap(),
        policies,
        "the JSON form is a manifest list"
    );

    // Deserializing validates.
    let bad = json.replace("\"port\":53", "\"port\":0");
    let e = serde_json::from_str::<Vec<Policy>>(&bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("spec.egress[0].ports[0].port: 0 is outside"),
        "{e}"
    );
}

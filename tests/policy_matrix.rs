//! Network policy on real pods, end to end: policies applied to `tweed
//! daemon` (`policy_apply` on `control.sock`, as `tweed policy apply` does),
//! compiled by the daemon, enforced by its dataplane, and proven with the
//! truth-table harness (`tweed_suite::matrix`): one node (embedded store),
//! five labelled pods in three labelled namespaces, and two plain addresses
//! (the node's own, and a host outside the cluster behind the node's
//! masquerade); every (from, to, probe) probed for TCP 80, 443, 8080 and UDP
//! 53, 5353, and compared with the matrix a reader of the Kubernetes
//! documentation expects.
//!
//! Every probed cell is also asked of `policy_explain`: explain must agree
//! with what the packets did.
//!
//! Each test has its own prefix (`pma`..`pmg`) and underlay subnet
//! (10.97.41-47); every namespace, process and directory goes with its guard,
//! also on failure.

use std::net::IpAddr;
use std::time::Duration;

use tweed_control::api::Client;
use tweed_control::api::policy::{LabelNamespace, LabelPod, PolicyApply, PolicyExplain};
use tweed_control::api::proto::{Request, ResponseBody};
use tweed_suite::control::{ControlPod, SingleNode, node_address, status};
use tweed_suite::matrix::{Connection, DEFAULT_PROBES, Expected, Harness, Matrix, Member, Target};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;

/// The cluster CIDR, given explicitly: the policies below name it.
const CLUSTER: &str = "10.244.0.0/16";
/// How long a round trip on a held connection may take.
const HELD: Duration = Duration::from_secs(2);

/// A pod's labels.
type Labels = &'static [(&'static str, &'static str)];

/// The pods: `(namespace, name, labels)`.
const PODS: [(&str, &str, Labels); 5] = [
    ("prod", "web", &[("app", "web"), ("tier", "front")]),
    ("prod", "db", &[("app", "db"), ("tier", "back")]),
    ("dev", "web", &[("app", "web"), ("tier", "front")]),
    ("dev", "tool", &[("app", "tool")]),
    ("ops", "mon", &[("app", "mon")]),
];

/// The namespaces' labels.
const NAMESPACES: [(&str, Labels); 3] = [
    ("prod", &[("env", "prod"), ("team", "shop")]),
    ("dev", &[("env", "dev"), ("team", "shop")]),
    ("ops", &[("team", "ops")]),
];

/// A node with the pods attached. Pods drop first (their namespaces), then
/// the daemon and its dataplane, then the underlay.
struct World {
    pods: Vec<ControlPod>,
    node: SingleNode,
    /// The node's own address (the first of its subnet, on `tweed0`).
    node_addr: IpAddr,
}

impl World {
    fn start(prefix: &str, base: &str) -> Self {
        let node = SingleNode::start(prefix, base, &["--cluster-cidr", CLUSTER]);
        let mut client = node.client();
        let subnet = status(&mut client)
            .node
            .subnets
            .into_iter()
            .find(|s| matches!(s, ipnet::IpNet::V4(_)))
            .expect("the node leases an IPv4 subnet");
        for (ns, labels) in NAMESPACES {
            call(
                &mut client,
                Request::LabelNamespace(LabelNamespace {
                    namespace: ns.to_owned(),
                    labels: owned(labels),
                    remove: vec![],
                }),
            );
        }
        let pods = PODS
            .iter()
            .map(|(ns, name, labels)| ControlPod::attach_in(&mut client, prefix, ns, name, labels))
            .collect();
        Self {
            pods,
            node_addr: node_address(&subnet),
            node,
        }
    }

    /// The pod `namespace/name`.
    fn pod(&self, name: &str) -> &ControlPod {
        self.pods
            .iter()
            .find(|p| format!("{}/{}", p.info.namespace, p.info.name) == name)
            .unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// Probe servers in every pod, on the node's address (`node`) and on the
    /// switch (`ext`).
    fn harness(&self) -> Harness<'_> {
        Harness::start(
            self.pods.iter().map(Member::pod).collect(),
            vec![
                Target::served("node", self.node.node(), self.node_addr),
                Target::served("ext", self.node.switch(), self.node.switch_ip()),
            ],
            &DEFAULT_PROBES,
        )
    }

    /// `tweed policy apply` of `yaml`; this node enforces it when it answers.
    fn apply(&self, yaml: &str) {
        let mut client = self.node.client();
        call(
            &mut client,
            Request::PolicyApply(PolicyApply {
                text: yaml.to_owned(),
            }),
        );
    }

    /// `tweed policy delete KIND NAME -n NAMESPACE`.
    fn delete(&self, kind: &str, namespace: Option<&str>, name: &str) {
        let key = serde_json::from_value(serde_json::json!({
            "kind": kind, "namespace": namespace, "name": name
        }))
        .expect("a policy key");
        call(&mut self.node.client(), Request::PolicyDelete(key));
    }

    /// The matrix is as `expected`, and explain agrees with every cell.
    fn check(&self, harness: &Harness<'_>, expected: &Expected) -> Matrix {
        let actual = harness.check(expected);
        self.explain_agrees(&actual);
        actual
    }

    /// `policy_explain` of every cell answers what the probe saw.
    fn explain_agrees(&self, actual: &Matrix) {
        let mut client = self.node.client();
        let mut disagreements = Vec::new();
        for cell in actual.axes().cells() {
            let Some(seen) = actual
                .outcome(cell.from, cell.to, cell.probe)
                .and_then(|o| o.allowed())
            else {
                continue;
            };
            let to = match cell.to {
                "node" => self.node_addr.to_string(),
                "ext" => self.node.switch_ip().to_string(),
                pod => pod.to_owned(),
            };
            let body = call(
                &mut client,
                Request::PolicyExplain(PolicyExplain {
                    from: cell.from.to_owned(),
                    to,
                    protocol: cell.probe.protocol.number(),
                    port: cell.probe.port,
                }),
            );
            let ResponseBody::Explain(reply) = body else {
                panic!("policy_explain answered {body:?}");
            };
            if reply.allowed != seen {
                disagreements.push(format!(
                    "{} -> {} {}: packets {}, explain {} ({:?})",
                    cell.from,
                    cell.to,
                    cell.probe,
                    if seen { "passed" } else { "blocked" },
                    if reply.allowed { "allows" } else { "denies" },
                    reply.steps
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "explain disagrees with the dataplane on {} cells:\n{}",
            disagreements.len(),
            disagreements.join("\n")
        );
    }
}

fn owned(labels: Labels) -> std::collections::BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `tweed ARGS` against the node's daemon: its stdout, after a success.
fn cli_ok(daemon: &tweed_suite::daemon::Daemon, args: &[&str]) -> String {
    let out = daemon.cli(args);
    assert!(
        out.status.success(),
        "tweed {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the CLI prints UTF-8")
}

fn call(client: &mut Client, request: Request) -> ResponseBody {
    let op = request.op().name();
    client.call(request).unwrap_or_else(|e| panic!("{op}: {e}"))
}

const DEFAULT_DENY_PROD: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"#;

#[test]
fn without_policy_every_cell_is_allowed() {
    if !require_root() {
        return;
    }
    let world = World::start("pma", "10.97.41");
    let harness = world.harness();
    world.check(&harness, &harness.all_allowed());
}

/// Default deny, then allows from a namespace (to a port) and from a pod
/// selector (to a port range), as two policies whose allows add up; deleting
/// them gives every cell back.
#[test]
fn default_deny_ingress_then_allow_from_a_namespace_and_a_pod_selector() {
    if !require_root() {
        return;
    }
    let world = World::start("pmb", "10.97.42");
    let harness = world.harness();
    // Through the CLI, as a user would.
    let daemon = world.node.daemon();
    let file = daemon.dir().join("default-deny.yaml");
    std::fs::write(&file, DEFAULT_DENY_PROD).expect("write the policy file");
    let applied = cli_ok(
        daemon,
        &["policy", "apply", "-f", &file.display().to_string()],
    );
    assert_eq!(applied, "networkpolicy prod/default-deny applied\n");
    world.check(&harness, &harness.all_allowed().deny("*", "prod/*", "*"));
    let listed = cli_ok(daemon, &["policy", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("networkpolicy") && l.contains("default-deny")),
        "{listed}"
    );
    let explained = cli_ok(
        daemon,
        &[
            "policy", "explain", "--from", "dev/web", "--to", "prod/db", "--port", "80/tcp",
        ],
    );
    assert!(
        explained.contains("networkpolicy prod/default-deny")
            && explained.ends_with("verdict: deny\n"),
        "{explained}"
    );

    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-ops, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: ops}}}]
      ports: [{protocol: TCP, port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-front, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchExpressions: [{key: tier, operator: In, values: [front]}]}}]
      ports: [{protocol: TCP, port: 443, endPort: 8080}, {protocol: UDP}]
"#,
    );
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("*", "prod/*", "*")
            .allow("ops/mon", "prod/db", "tcp/80")
            // A podSelector alone picks pods of the policy's own namespace.
            .allow("prod/web", "prod/db", "tcp/443-8080")
            .allow("prod/web", "prod/db", "udp/*"),
    );

    for name in ["default-deny", "db-from-ops", "db-from-front"] {
        world.delete("networkpolicy", Some("prod"), name);
    }
    world.check(&harness, &harness.all_allowed());
}

/// Both selectors in one peer (pods of those namespaces) against the same
/// two selectors as two peers (either).
#[test]
fn selectors_in_one_peer_and_as_two_peers() {
    if !require_root() {
        return;
    }
    let world = World::start("pmc", "10.97.43");
    let harness = world.harness();
    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: shop}}
          podSelector: {matchLabels: {tier: front}}
"#,
    );
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("*", "prod/web", "*")
            .allow("dev/web", "prod/web", "*"),
    );
    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: ops}}
        - podSelector: {matchLabels: {tier: back}}
"#,
    );
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("*", "prod/web", "*")
            .allow("ops/mon", "prod/web", "*")
            .allow("prod/db", "prod/web", "*"),
    );
}

/// Egress: to a CIDR with an exception, and default deny; the node's own
/// address stays reachable (Kubernetes: traffic to and from the pod's node
/// is always allowed).
#[test]
fn egress_to_an_ip_block_with_except_and_default_deny_egress() {
    if !require_root() {
        return;
    }
    let world = World::start("pmd", "10.97.44");
    let harness = world.harness();
    let db = world.pod("prod/db").ipv4();
    world.apply(&format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: tool-out, namespace: dev}}
spec:
  podSelector: {{matchLabels: {{app: tool}}}}
  policyTypes: [Egress]
  egress:
    - to: [{{ipBlock: {{cidr: {CLUSTER}, except: [{db}/32]}}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny-egress, namespace: ops}}
spec:
  podSelector: {{}}
  policyTypes: [Egress]
"#
    ));
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("dev/tool", "prod/db", "*")
            .deny("dev/tool", "ext", "*")
            .deny("ops/mon", "*", "*")
            .allow("ops/mon", "node", "*"),
    );
}

/// Ordered policies come first: a Deny beats a Kubernetes allow, Pass hands
/// the decision to the Kubernetes policies (which deny here), an Allow
/// beats a Kubernetes default deny, and a Log rule writes a flow-log line
/// naming its policy and lets the next rule decide.
#[test]
fn ordered_policies_deny_pass_allow_and_log() {
    if !require_root() {
        return;
    }
    let world = World::start("pme", "10.97.45");
    let harness = world.harness();
    world.apply(DEFAULT_DENY_PROD);
    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-all, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{}]
---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: no-ops-to-web, namespace: prod}
spec:
  order: 10
  podSelector: {matchLabels: {app: web}}
  ingress:
    - action: Deny
      from: [{namespaceSelector: {matchLabels: {team: ops}}}]
---
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: dev-to-db-by-the-book}
spec:
  order: 5
  podSelector: {matchLabels: {app: db}}
  ingress:
    - action: Log
      ports: [{protocol: TCP, port: 8080}]
    - action: Pass
      from: [{namespaceSelector: {matchLabels: {env: dev}}}]
---
apiVersion: tweed.dev/v1
kind: Policy
metadata: {name: db-open, namespace: prod}
spec:
  order: 20
  podSelector: {matchLabels: {app: db}}
  ingress: [{action: Allow}]
"#,
    );
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("ops/mon", "prod/web", "*")
            .deny("dev/*", "prod/db", "*"),
    );
    // The Deny rule's drops are counted under its name (stats lag ~200 ms).
    let counted = poll::wait(Duration::from_secs(5), || {
        let stats = world.node.daemon().cli_json(&["stats"]);
        stats["policy_drops"].as_array().is_some_and(|rows| {
            rows.iter().any(|r| {
                r["port"] == "prod/web"
                    && r["direction"] == "ingress"
                    && r["name"] == "policy prod/no-ops-to-web ingress[0]"
                    && r["packets"].as_u64().is_some_and(|n| n > 0)
            })
        })
    });
    assert!(
        counted,
        "tweed stats counts the Deny rule's drops: {}",
        world.node.daemon().cli_json(&["stats"])["policy_drops"]
    );
    let logged = poll::wait(Duration::from_secs(5), || {
        let log = world.node.daemon().log();
        log.lines().any(|l| {
            l.contains("flow log")
                && l.contains("globalpolicy dev-to-db-by-the-book ingress[0]")
                && l.contains("dst_port=8080")
        })
    });
    assert!(
        logged,
        "a flow-log line names the Log rule's policy:\n{}",
        world.node.daemon().log()
    );
}

/// A policy that starts denying does not cut connections already open (their
/// tracked flows outlive the change) but stops new ones at once; replies of
/// a pod's own connections pass its ingress deny.
#[test]
fn open_connections_survive_a_new_deny_new_ones_obey_it() {
    if !require_root() {
        return;
    }
    let world = World::start("pmf", "10.97.46");
    let harness = world.harness();
    let db = world.pod("prod/db");
    let dev = world.pod("dev/web");
    let mut into_db = Connection::open(&dev.netns, db.ipv4(), 8080, HELD);
    let mut from_db = Connection::open(&db.netns, dev.ipv4(), 8080, HELD);
    for (what, conn) in [("into", &mut into_db), ("out of", &mut from_db)] {
        conn.round_trip()
            .unwrap_or_else(|e| panic!("{what} prod/db before the policy: {e}"));
    }
    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: isolate-db, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
"#,
    );
    world.check(
        &harness,
        &harness
            .all_allowed()
            .deny("*", "prod/db", "*")
            .deny("prod/db", "*", "*")
            .allow("prod/db", "node", "*"),
    );
    for (what, conn) in [("into", &mut into_db), ("out of", &mut from_db)] {
        conn.round_trip()
            .unwrap_or_else(|e| panic!("{what} prod/db after isolating it: {e}"));
    }
    world.delete("networkpolicy", Some("prod"), "isolate-db");
    world.check(&harness, &harness.all_allowed());
}

/// Policy follows labels: a pod or namespace labelled later is selected
/// at once, and unlabelled again, it is not.
#[test]
fn label_changes_re_evaluate_policy() {
    if !require_root() {
        return;
    }
    let world = World::start("pmg", "10.97.47");
    let harness = world.harness();
    world.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-clients, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector: {matchLabels: {role: client}}
        - namespaceSelector: {matchLabels: {trusted: "yes"}}
"#,
    );
    let base = || harness.all_allowed().deny("*", "prod/db", "*");
    world.check(&harness, &base());

    let mut client = world.node.client();
    let label_pod = |client: &mut Client, labels: &[(&str, &str)], remove: &[&str]| {
        call(
            client,
            Request::LabelPod(LabelPod {
                namespace: "dev".into(),
                name: "tool".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                remove: remove.iter().map(|k| (*k).to_owned()).collect(),
            }),
        )
    };
    label_pod(&mut client, &[("role", "client")], &[]);
    call(
        &mut client,
        Request::LabelNamespace(LabelNamespace {
            namespace: "ops".into(),
            labels: [("trusted".to_owned(), "yes".to_owned())].into(),
            remove: vec![],
        }),
    );
    world.check(
        &harness,
        &base()
            .allow("dev/tool", "prod/db", "*")
            .allow("ops/mon", "prod/db", "*"),
    );

    label_pod(&mut client, &[], &["role"]);
    world.check(&harness, &base().allow("ops/mon", "prod/db", "*"));
}

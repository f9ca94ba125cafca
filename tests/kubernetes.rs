//! The Kubernetes datasource end to end: `tweed daemon --datasource
//! kubernetes` against a stand-in API server (`tweed_suite::kubeapi`: real
//! list/watch semantics over HTTP, in the underlay's switch namespace, as a
//! control-plane host would be), pods attached through the real CNI plugin
//! with the `CNI_ARGS` kubelet passes (no labels), their addresses written to
//! the Pods' status as kubelet does.
//!
//! - `policy_comes_from_the_api_server`: one node; labels, namespace labels,
//!   NetworkPolicies and a GlobalPolicy created, changed and deleted through
//!   the API (also with the real kubectl), proven with the probe matrix.
//! - `two_nodes_from_pod_cidrs_and_annotations`: subnets from
//!   `spec.podCIDRs`, peers from the Node annotations the daemons publish,
//!   a policy on node b selecting a pod of node a by its labels, a Node
//!   deleted takes its routes with it.
//! - `watch_faults_keep_enforcing_and_converge`: watches dropped, 410 Gone
//!   after compaction, the API server down for 10 s.
//! - `a_pod_add_waits_for_the_watch_or_says_why`: an ADD before the Pod
//!   exists waits for it; one for a Pod that never comes fails clearly.
//! - `native_services_come_from_the_api_server`: with `--native-services`,
//!   a Service and its EndpointSlice created in the API server are balanced
//!   (a pod reaches the backend through the ClusterIP), and stop being once
//!   the Service is deleted.
//!
//! Each test has its own prefix (`kpa`..`kpe`) and underlay subnet
//! (10.97.61-65); everything goes with its guard, also on failure.

use std::time::{Duration, Instant};

use tweed_suite::cluster::{NodeSpec, routes_prefix, start_together, status};
use tweed_suite::cni::Plugin;
use tweed_suite::daemon::Daemon;
use tweed_suite::kubeapi::process::FakeApiServer;
use tweed_suite::kubelet::KubeletPod;
use tweed_suite::matrix::{DEFAULT_PROBES, Expected, Harness, Member, differences};
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{tcp_connect, wait_ping};
use tweed_suite::underlay::Underlay;

/// The cluster CIDR (kube-controller-manager's --cluster-cidr).
const CLUSTER: &str = "10.244.0.0/16";
/// The API server's port in the switch namespace.
const API_PORT: u16 = 6443;
/// How long a change made through the API may take to be enforced.
const CONVERGE: Duration = Duration::from_secs(30);

/// An underlay, the API server on its switch, and a kubeconfig for it.
struct ControlPlane {
    api: FakeApiServer,
    kubeconfig: std::path::PathBuf,
    underlay: Underlay,
}

impl ControlPlane {
    fn start(prefix: &str, base: &str, nodes: usize) -> Self {
        let underlay = Underlay::new(prefix, base, nodes);
        let api = FakeApiServer::start(underlay.switch(), underlay.switch_ip(), API_PORT, prefix);
        let kubeconfig = api.dir().join("kubeconfig");
        api.kubeconfig(&kubeconfig);
        ControlPlane {
            api,
            kubeconfig,
            underlay,
        }
    }

    /// The daemon's flags for this API server.
    fn args(&self) -> Vec<String> {
        [
            "--datasource",
            "kubernetes",
            "--kubeconfig",
            &self.kubeconfig.display().to_string(),
            "--cluster-cidr",
            CLUSTER,
        ]
        .map(String::from)
        .to_vec()
    }

    /// Registers Node `name` with `pod_cidr`, as kubelet and the node IPAM
    /// controller would before tweed starts there.
    fn node(&self, name: &str, pod_cidr: &str) {
        self.api.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {{podCIDR: \"{pod_cidr}\", podCIDRs: [\"{pod_cidr}\"]}}\n"
        ));
    }

    /// Creates Namespace `name` with `labels`.
    fn namespace(&self, name: &str, labels: &str) {
        self.api.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n"
        ));
    }

    /// Creates Pod `namespace/name` scheduled on `node`, with `labels`.
    fn pod(&self, namespace: &str, name: &str, node: &str, labels: &str) {
        self.api.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}\n\
             spec: {{nodeName: {node}, containers: [{{name: c, image: busybox}}]}}\n"
        ));
    }

    /// Attaches pod `namespace/name` through the plugin of `daemon` and
    /// writes its addresses to the Pod's status, as kubelet does.
    fn attach(&self, daemon: &Daemon, prefix: &str, namespace: &str, name: &str) -> KubeletPod {
        let pod = KubeletPod::add(
            &Plugin::new(&daemon.control_socket()),
            prefix,
            namespace,
            name,
        );
        self.api.set_pod_ips(namespace, name, &pod.ips);
        pod
    }
}

/// Probes until the matrix is `expected` (changes through the API are
/// enforced a moment after they are made), then checks it once more.
fn converge(harness: &Harness<'_>, expected: &Expected) {
    let deadline = Instant::now() + CONVERGE;
    while Instant::now() < deadline {
        if differences(&harness.probe(), expected).is_empty() {
            break;
        }
    }
    harness.check(expected);
}

/// `tweed ARGS` on `daemon`: stdout after a success.
fn cli_ok(daemon: &Daemon, args: &[&str]) -> String {
    let out = daemon.cli(args);
    assert!(
        out.status.success(),
        "tweed {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the CLI prints UTF-8")
}

/// The labels `tweed pods` shows for pod `namespace/name`.
fn labels_of(daemon: &Daemon, namespace: &str, name: &str) -> serde_json::Value {
    let pods = daemon.cli_json(&["pods"]);
    pods["pods"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|p| p["namespace"] == namespace && p["name"] == name)
        })
        .map(|p| p["labels"].clone())
        .unwrap_or_else(|| panic!("no pod {namespace}/{name} in {pods}"))
}

const DEFAULT_DENY_PROD: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"#;

const DB_FROM_FRONT: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-front, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: shop}}
          podSelector: {matchLabels: {tier: front}}
"#;

const QUARANTINE: &str = r#"
apiVersion: tweed.dev/v1
kind: GlobalPolicy
metadata: {name: quarantine}
spec:
  order: 10
  podSelector: {matchLabels: {quarantine: "true"}}
  egress:
    - action: Deny
"#;

#[test]
fn policy_comes_from_the_api_server() {
    if !require_root() {
        return;
    }
    let cp = ControlPlane::start("kpa", "10.97.61", 1);
    let node = "kpa-node";
    cp.node(node, "10.244.7.0/24");
    cp.namespace("prod", "team: shop");
    cp.namespace("dev", "team: shop");
    cp.namespace("ops", "team: ops");
    let pods = [
        ("prod", "web", "app: web, tier: front"),
        ("prod", "db", "app: db"),
        ("dev", "web", "app: web, tier: front"),
        ("ops", "mon", "app: mon"),
    ];
    for (ns, name, labels) in pods {
        cp.pod(ns, name, node, labels);
    }
    let daemon = Daemon::start(cp.underlay.node(0), node, &cp.args());
    let attached: Vec<KubeletPod> = pods
        .iter()
        .map(|(ns, name, _)| cp.attach(&daemon, "kpa", ns, name))
        .collect();
    // The subnet is the Node's podCIDR, not a lease.
    let reply = status(&daemon);
    assert_eq!(reply.node.subnets, vec!["10.244.7.0/24".parse().unwrap()]);
    let source = reply.datasource.expect("status shows the datasource");
    assert!(!source.stale, "{source:?}");
    // The labels came from the API server: the CNI passed none.
    assert_eq!(labels_of(&daemon, "prod", "web")["tier"], "front");

    let harness = Harness::start(
        attached
            .iter()
            .map(|p| Member::new(p.name.clone(), &p.netns, p.ipv4()))
            .collect(),
        vec![],
        &DEFAULT_PROBES,
    );
    converge(&harness, &harness.all_allowed());

    cp.api.apply(DEFAULT_DENY_PROD);
    converge(&harness, &harness.all_allowed().deny("*", "prod/*", "*"));

    // A second, real client: kubectl.
    let file = cp.api.dir().join("db-from-front.yaml");
    std::fs::write(&file, DB_FROM_FRONT).expect("write the manifest");
    let out = cp
        .api
        // The stand-in serves no OpenAPI documents to validate against.
        .kubectl(&[
            "apply",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ]);
    assert!(out.success(), "kubectl apply: {out}");
    let front = harness
        .all_allowed()
        .deny("*", "prod/*", "*")
        .allow("prod/web", "prod/db", "*")
        .allow("dev/web", "prod/db", "*");
    converge(&harness, &front);

    // Labels change through the API: dev/web is no longer front, ops joins
    // the shop.
    let out = cp
        .api
        .kubectl(&["label", "pod", "web", "-n", "dev", "tier-"]);
    assert!(out.success(), "kubectl label: {out}");
    converge(&harness, &front.clone().deny("dev/web", "prod/db", "*"));
    let out = cp
        .api
        .kubectl(&["label", "pod", "mon", "-n", "ops", "tier=front"]);
    assert!(out.success(), "kubectl label: {out}");
    let out = cp
        .api
        .kubectl(&["label", "namespace", "ops", "team=shop", "--overwrite"]);
    assert!(out.success(), "kubectl label: {out}");
    converge(
        &harness,
        &front
            .clone()
            .deny("dev/web", "prod/db", "*")
            .allow("ops/mon", "prod/db", "*"),
    );

    // An ordered policy, a custom resource: ops/mon quarantined.
    cp.api.apply(QUARANTINE);
    let out = cp
        .api
        .kubectl(&["label", "pod", "mon", "-n", "ops", "quarantine=true"]);
    assert!(out.success(), "kubectl label: {out}");
    converge(
        &harness,
        &front
            .clone()
            .deny("dev/web", "prod/db", "*")
            .deny("ops/mon", "*", "*"),
    );
    let listed = cli_ok(&daemon, &["policy", "list"]);
    assert!(listed.contains("quarantine"), "{listed}");

    // In this mode the API server owns policy: the CLI says where to go.
    let denied = daemon.cli(&["policy", "delete", "globalpolicy", "quarantine"]);
    assert!(!denied.status.success());
    let why = String::from_utf8_lossy(&denied.stderr);
    assert!(why.contains("kubectl"), "{why}");

    // A policy that does not validate is refused and named in the status.
    cp.api.apply(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: prod}\n\
         spec: {podSelector: {}, ingress: [{ports: [{protocol: TCP, port: 70000}]}]}\n",
    );
    let refused = poll::wait(CONVERGE, || {
        let text = cli_ok(&daemon, &["status"]);
        text.contains("refused") && text.contains("prod/bad")
    });
    assert!(refused, "{}", cli_ok(&daemon, &["status"]));

    for (kind, ns, name) in [
        ("globalpolicies", "", "quarantine"),
        ("networkpolicies", "prod", "default-deny"),
        ("networkpolicies", "prod", "db-from-front"),
        ("networkpolicies", "prod", "bad"),
    ] {
        assert!(cp.api.delete(kind, ns, name), "delete {kind} {name}");
    }
    converge(&harness, &harness.all_allowed());
}

#[test]
fn two_nodes_from_pod_cidrs_and_annotations() {
    if !require_root() {
        return;
    }
    let cp = ControlPlane::start("kpb", "10.97.62", 2);
    let names = ["kpb-a", "kpb-b"];
    cp.node(names[0], "10.244.1.0/24");
    cp.node(names[1], "10.244.2.0/24");
    cp.namespace("shop", "");
    cp.pod("shop", "web", names[0], "app: web");
    cp.pod("shop", "other", names[0], "app: other");
    cp.pod("shop", "db", names[1], "app: db");
    let args = cp.args();
    let daemons = start_together(&[
        NodeSpec {
            netns: cp.underlay.node(0),
            name: names[0],
            args: &args,
        },
        NodeSpec {
            netns: cp.underlay.node(1),
            name: names[1],
            args: &args,
        },
    ]);
    // Each daemon published its underlay address on its Node.
    for (i, name) in names.iter().enumerate() {
        let node = cp.api.get("nodes", "", name).expect("the Node exists");
        assert_eq!(
            node["metadata"]["annotations"]["tweed.dev/underlay-ip"],
            cp.underlay.node_ip(i).to_string(),
            "{node}"
        );
    }
    let web = cp.attach(&daemons[0], "kpb", "shop", "web");
    let other = cp.attach(&daemons[0], "kpb", "shop", "other");
    let db = cp.attach(&daemons[1], "kpb", "shop", "db");
    assert!(
        wait_ping(&web.netns, db.ipv4(), CONVERGE),
        "web -> db across nodes"
    );
    assert!(
        wait_ping(&db.netns, other.ipv4(), CONVERGE),
        "db -> other across nodes"
    );

    // Node b's policy selects node a's pods by the labels of their Pods.
    cp.api.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
"#,
    );
    let _server = tweed_suite::traffic::Listener::start(&db.netns, db.ipv4(), 5432);
    let enforced = poll::wait(CONVERGE, || {
        !tcp_connect(&other.netns, db.ipv4(), 5432, Duration::from_secs(1))
    });
    assert!(enforced, "other -> db is not blocked");
    assert!(tcp_connect(
        &web.netns,
        db.ipv4(),
        5432,
        Duration::from_secs(2)
    ));

    // A Node deleted from the API server: its peer and routes go.
    let b_subnet: ipnet::IpNet = "10.244.2.0/24".parse().unwrap();
    assert!(routes_prefix(&daemons[0], b_subnet));
    assert!(cp.api.delete("nodes", "", names[1]));
    assert!(
        poll::wait(CONVERGE, || !routes_prefix(&daemons[0], b_subnet)),
        "node a still routes node b's subnet"
    );
}

#[test]
fn watch_faults_keep_enforcing_and_converge() {
    if !require_root() {
        return;
    }
    let cp = ControlPlane::start("kpc", "10.97.63", 1);
    let node = "kpc-node";
    cp.node(node, "10.244.3.0/24");
    cp.namespace("prod", "");
    cp.pod("prod", "web", node, "app: web");
    cp.pod("prod", "db", node, "app: db");
    let daemon = Daemon::start(cp.underlay.node(0), node, &cp.args());
    let web = cp.attach(&daemon, "kpc", "prod", "web");
    let db = cp.attach(&daemon, "kpc", "prod", "db");
    let _server = tweed_suite::traffic::Listener::start(&db.netns, db.ipv4(), 5432);
    let open = || tcp_connect(&web.netns, db.ipv4(), 5432, Duration::from_secs(1));
    let converges_to = |want: bool| poll::wait(CONVERGE, || open() == want);
    assert!(converges_to(true));

    // Dropped watches: the watchers watch again from where they were.
    cp.api.drop_watches();
    cp.api.apply(DEFAULT_DENY_PROD);
    assert!(
        converges_to(false),
        "the deny did not arrive after a dropped watch"
    );

    // 410 Gone: history compacted, watches dropped, a change meanwhile.
    let lists_before = cp.api.stats().lists_of("networkpolicies");
    cp.api.compact();
    assert!(cp.api.delete("networkpolicies", "prod", "default-deny"));
    assert!(
        converges_to(true),
        "the delete did not arrive after 410 Gone"
    );
    let lists_after = cp.api.stats().lists_of("networkpolicies");
    assert!(
        lists_after > lists_before,
        "no relist after 410 ({lists_before} -> {lists_after})"
    );

    // The API server down for 10 s: the node enforces what it saw, says it
    // is stale, and converges once the server is back.
    cp.api.apply(DEFAULT_DENY_PROD);
    assert!(converges_to(false));
    let down_for = Duration::from_secs(10);
    let down_at = Instant::now();
    cp.api.down_for(down_for);
    // Changed while nobody can watch (through the server's own socket).
    assert!(cp.api.delete("networkpolicies", "prod", "default-deny"));
    assert!(
        poll::wait(down_for / 2, || status(&daemon)
            .datasource
            .is_some_and(|d| d.stale)),
        "status does not say the datasource is stale"
    );
    while down_at.elapsed() < down_for - Duration::from_secs(1) {
        assert!(!open(), "enforcement changed while the API server was down");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        converges_to(true),
        "no convergence after the API server came back"
    );
    assert!(poll::wait(CONVERGE, || status(&daemon)
        .datasource
        .is_some_and(|d| !d.stale)));
}

#[test]
fn a_pod_add_waits_for_the_watch_or_says_why() {
    if !require_root() {
        return;
    }
    let cp = ControlPlane::start("kpd", "10.97.64", 1);
    let node = "kpd-node";
    cp.node(node, "10.244.4.0/24");
    cp.namespace("prod", "");
    let daemon = Daemon::start(cp.underlay.node(0), node, &cp.args());
    let plugin = Plugin::new(&daemon.control_socket());

    // The ADD comes first; the Pod appears in the API 2 s later.
    let pod = std::thread::scope(|s| {
        let add = s.spawn(|| KubeletPod::add(&plugin, "kpd", "prod", "late"));
        std::thread::sleep(Duration::from_secs(2));
        cp.pod("prod", "late", node, "app: late");
        add.join().expect("the ADD thread")
    });
    assert_eq!(labels_of(&daemon, "prod", "late")["app"], "late");
    drop(pod);

    // No such Pod: a clear, retryable error, and nothing left behind.
    let started = Instant::now();
    let (outcome, _netns) = KubeletPod::try_add(&plugin, "kpd", "prod", "ghost")
        .expect_err("an ADD for a Pod that does not exist fails");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "it did not wait"
    );
    assert!(
        outcome.error_msg().contains("prod/ghost") && outcome.stdout.contains("was not seen"),
        "{}",
        outcome.stdout
    );
    let pods = cli_ok(&daemon, &["pods", "-o", "json"]);
    assert!(!pods.contains("ghost"), "{pods}");
}

/// A ClusterIP Service `web` on `vip` port 80 → 8080, and its EndpointSlice
/// with `backend` on `node`.
fn web_service(vip: &str, backend: std::net::IpAddr, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{namespace: prod, name: web}}\n\
         spec: {{clusterIP: {vip}, ports: [{{name: http, protocol: TCP, port: 80, targetPort: 8080}}]}}\n\
         ---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{namespace: prod, name: web-1, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{name: http, protocol: TCP, port: 8080}}]\n\
         endpoints: [{{addresses: [\"{backend}\"], nodeName: {node}}}]\n"
    )
}

#[test]
fn native_services_come_from_the_api_server() {
    if !require_root() {
        return;
    }
    let cp = ControlPlane::start("kpe", "10.97.65", 1);
    let node = "kpe-node";
    cp.node(node, "10.244.5.0/24");
    cp.namespace("prod", "");
    cp.pod("prod", "client", node, "app: client");
    cp.pod("prod", "web", node, "app: web");
    let mut args = cp.args();
    args.push("--native-services".into());
    let daemon = Daemon::start(cp.underlay.node(0), node, &args);
    let client = cp.attach(&daemon, "kpe", "prod", "client");
    let web = cp.attach(&daemon, "kpe", "prod", "web");
    let vip = "10.96.5.10";
    cp.api.apply(&web_service(vip, web.ipv4(), node));
    let listed = poll::wait(CONVERGE, || {
        cli_ok(&daemon, &["service", "list"]).contains(&format!("{vip}:80/tcp"))
    });
    assert!(listed, "the Service from the API server is balanced");
    let vip_addr: std::net::IpAddr = vip.parse().unwrap();
    let _listener = tweed_suite::traffic::Listener::start(&web.netns, web.ipv4(), 8080);
    assert!(
        tcp_connect(&client.netns, vip_addr, 80, CONVERGE),
        "client reaches web through its ClusterIP"
    );
    // The Service deleted in the API server: its ClusterIP stops answering.
    assert!(cp.api.delete("services", "prod", "web"));
    let gone = poll::wait(CONVERGE, || {
        !cli_ok(&daemon, &["service", "list"]).contains(&format!("{vip}:80/tcp"))
    });
    assert!(gone, "the deleted Service is no longer balanced");
    assert!(
        !tcp_connect(&client.netns, vip_addr, 80, Duration::from_secs(2)),
        "the ClusterIP no longer answers"
    );
}

//! What the demo builds, as plain data: the nodes and their underlay
//! addresses, the pods and their labels, the names of every namespace and
//! directory, the sample policy, and which probes it should block.
//!
//! Everything the demo creates is named after the demo's name (`tweed-demo`
//! by default): the network namespaces are `NAME-node-a`, `NAME-frontend-web-1`
//! and so on, the files live under `/run/NAME`. Two demos with different names
//! never touch each other's parts, and a teardown finds every part from the
//! name alone, even after the demo that made them was killed.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The demo's name unless `--name` says otherwise.
pub const DEFAULT_NAME: &str = "tweed-demo";
/// The TCP port every probe connects to, and the sample policy opens.
pub const PROBE_PORT: u16 = 80;
/// The interface name pods get.
pub const POD_IFNAME: &str = "eth0";
pub use crate::links::{UNDERLAY_IFNAME, UNDERLAY_PREFIX};
/// etcd's client port (on the first node's underlay address).
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// The sample policy: in `backend`, pods labelled `app=db` accept TCP 80 only
/// from pods labelled `app=api` of the same namespace.
pub const SAMPLE_POLICY: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-from-api-only
  namespace: backend
spec:
  podSelector:
    matchLabels:
      app: db
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: api
    ports:
    - protocol: TCP
      port: 80
";

/// One node: its name and underlay address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's name (`node-a`).
    pub name: &'static str,
    /// Its address on the underlay.
    pub underlay_ip: Ipv4Addr,
}

/// One pod: where it runs and the label policy selects it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    /// Its Kubernetes namespace.
    pub namespace: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its `app` label.
    pub app: &'static str,
    /// The index of its node in [`Topology::nodes`].
    pub node: usize,
}

impl PodPlan {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A probe's source or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// A pod, by index in [`Topology::pods`].
    Pod(usize),
    /// A node, by index in [`Topology::nodes`].
    Node(usize),
}

/// What a probe should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The connection is made.
    Open,
    /// The packets are dropped (the connect times out).
    Blocked,
}

/// The kind of path a probe takes, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    /// Pod to pod on one node.
    SameNode,
    /// Pod to pod across the overlay.
    AcrossNodes,
    /// A node to a pod (its own or another node's).
    NodeToPod,
    /// A pod to a node (its own or another).
    PodToNode,
}

impl PathKind {
    /// How the summary names it.
    pub fn label(self) -> &'static str {
        match self {
            PathKind::SameNode => "pod→pod same node",
            PathKind::AcrossNodes => "pod→pod across nodes",
            PathKind::NodeToPod => "node→pod",
            PathKind::PodToNode => "pod→node",
        }
    }
}

/// The whole demo cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The demo's name, the prefix of everything it creates.
    pub name: String,
    /// The nodes: two when etcd is there to share state, else one.
    pub nodes: Vec<NodePlan>,
    /// The four pods, in two namespaces.
    pub pods: Vec<PodPlan>,
}

impl Topology {
    /// The cluster of demo `name`: two nodes sharing etcd, or one node on
    /// the embedded store (`two_nodes` false), with the same four pods.
    pub fn new(name: &str, two_nodes: bool) -> Self {
        let mut nodes = vec![NodePlan {
            name: "node-a",
            underlay_ip: Ipv4Addr::new(10, 99, 0, 1),
        }];
        if two_nodes {
            nodes.push(NodePlan {
                name: "node-b",
                underlay_ip: Ipv4Addr::new(10, 99, 0, 2),
            });
        }
        let second = nodes.len() - 1;
        let pod = |namespace, name, app, node| PodPlan {
            namespace,
            name,
            app,
            node,
        };
        Topology {
            name: name.to_owned(),
            pods: vec![
                pod("frontend", "web-1", "web", 0),
                pod("frontend", "web-2", "web", second),
                pod("backend", "api-1", "api", 0),
                pod("backend", "db-1", "db", second),
            ],
            nodes,
        }
    }

    /// Whether the nodes share etcd (two nodes) rather than one embedded store.
    pub fn uses_etcd(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The network namespace of node `i`.
    pub fn node_netns(&self, i: usize) -> String {
        format!("{}-{}", self.name, self.nodes[i].name)
    }

    /// The network namespace of pod `i` (what a runtime calls the sandbox).
    pub fn pod_netns(&self, i: usize) -> String {
        let pod = &self.pods[i];
        format!("{}-{}-{}", self.name, pod.namespace, pod.name)
    }

    /// The container ID pod `i` is attached under.
    pub fn container_id(&self, i: usize) -> String {
        format!(
            "{}-{}-{}",
            self.name, self.pods[i].namespace, self.pods[i].name
        )
    }

    /// Every namespace's name, pods first (they go first on teardown).
    pub fn all_netns(&self) -> Vec<String> {
        let pods = (0..self.pods.len()).map(|i| self.pod_netns(i));
        let nodes = (0..self.nodes.len()).map(|i| self.node_netns(i));
        pods.chain(nodes).collect()
    }

    /// Where the demo keeps its files: run dirs, state, logs, etcd's data.
    pub fn dir(&self) -> PathBuf {
        PathBuf::from("/run").join(&self.name)
    }

    /// Node `i`'s run directory (its control.sock).
    pub fn run_dir(&self, i: usize) -> PathBuf {
        self.dir().join(self.nodes[i].name)
    }

    /// Node `i`'s state directory.
    pub fn state_dir(&self, i: usize) -> PathBuf {
        self.run_dir(i).join("state")
    }

    /// Node `i`'s daemon log.
    pub fn daemon_log(&self, i: usize) -> PathBuf {
        self.run_dir(i).join("daemon.log")
    }

    /// etcd's client URL, on the first node's underlay address.
    pub fn etcd_url(&self) -> String {
        format!("http://{}:{ETCD_CLIENT_PORT}", self.nodes[0].underlay_ip)
    }

    /// The peer URL etcd listens on.
    pub fn etcd_peer_url(&self) -> String {
        format!("http://{}:{ETCD_PEER_PORT}", self.nodes[0].underlay_ip)
    }

    /// Every endpoint, pods first, in the matrix's order.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let pods = (0..self.pods.len()).map(Endpoint::Pod);
        let nodes = (0..self.nodes.len()).map(Endpoint::Node);
        pods.chain(nodes).collect()
    }

    /// A short name for an endpoint (`web-1`, `node-a`).
    pub fn label(&self, e: Endpoint) -> &'static str {
        match e {
            Endpoint::Pod(i) => self.pods[i].name,
            Endpoint::Node(i) => self.nodes[i].name,
        }
    }

    /// The probes of one matrix: every pod and node to every pod and node,
    /// except an endpoint to itself and node to node (not the pod network).
    pub fn cells(&self) -> Vec<(Endpoint, Endpoint)> {
        let all = self.endpoints();
        let mut cells = Vec::new();
        for &src in &all {
            for &dst in &all {
                let node_to_node =
                    matches!(src, Endpoint::Node(_)) && matches!(dst, Endpoint::Node(_));
                if src != dst && !node_to_node {
                    cells.push((src, dst));
                }
            }
        }
        cells
    }

    /// The kind of path from `src` to `dst`.
    pub fn path_kind(&self, src: Endpoint, dst: Endpoint) -> PathKind {
        match (src, dst) {
            (Endpoint::Node(_), _) => PathKind::NodeToPod,
            (_, Endpoint::Node(_)) => PathKind::PodToNode,
            (Endpoint::Pod(a), Endpoint::Pod(b)) if self.pods[a].node == self.pods[b].node => {
                PathKind::SameNode
            }
            _ => PathKind::AcrossNodes,
        }
    }

    /// What a TCP connect from `src` to `dst` on [`PROBE_PORT`] should find,
    /// before and after the sample policy. The policy selects the `app=db`
    /// pods of `backend` and lets in only `backend`'s `app=api` pods, plus
    /// the pod's own node (Kubernetes keeps a pod reachable from its node,
    /// for health checks). Another node is not exempt: it is just an address.
    pub fn expect(&self, src: Endpoint, dst: Endpoint, policy_applied: bool) -> Expect {
        let Endpoint::Pod(d) = dst else {
            return Expect::Open;
        };
        let target = &self.pods[d];
        let selected = target.namespace == "backend" && target.app == "db";
        if !policy_applied || !selected {
            return Expect::Open;
        }
        let allowed = match src {
            Endpoint::Pod(s) => {
                let source = &self.pods[s];
                source.namespace == target.namespace && source.app == "api"
            }
            Endpoint::Node(n) => n == target.node,
        };
        if allowed {
            Expect::Open
        } else {
            Expect::Blocked
        }
    }

    /// What the sample policy changes, in one sentence for the user.
    pub fn policy_effect(&self) -> String {
        let own = self
            .pods
            .iter()
            .find(|p| p.app == "db")
            .map_or("its node", |p| self.nodes[p.node].name);
        let other = if self.nodes.len() > 1 {
            " Another node is just another address, so it is blocked too."
        } else {
            ""
        };
        format!(
            "db-1 now accepts TCP {PROBE_PORT} only from backend's app=api pods, and from its own \
             node ({own}): Kubernetes keeps a pod reachable from its node.{other}"
        )
    }

    /// The probe to show `tweed trace` on: a pod on the protected pod's node
    /// that the policy blocks (same node, so that node's dataplane decides).
    pub fn traced(&self) -> Option<(usize, usize)> {
        let db = self.pods.iter().position(|p| p.app == "db")?;
        let src = (0..self.pods.len()).find(|&s| {
            s != db
                && self.pods[s].node == self.pods[db].node
                && self.expect(Endpoint::Pod(s), Endpoint::Pod(db), true) == Expect::Blocked
        })?;
        Some((src, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_nodes_spread_each_namespace_over_both_nodes() {
        let t = Topology::new("tw", true);
        assert!(t.uses_etcd());
        for ns in ["frontend", "backend"] {
            let nodes: Vec<usize> = t
                .pods
                .iter()
                .filter(|p| p.namespace == ns)
                .map(|p| p.node)
                .collect();
            assert_eq!(nodes, vec![0, 1], "{ns}");
        }
        assert_eq!(t.node_netns(1), "tw-node-b");
        assert_eq!(t.pod_netns(3), "tw-backend-db-1");
        assert_eq!(t.etcd_url(), "http://10.99.0.1:2379");
        assert_eq!(t.all_netns().len(), 6);
        assert_eq!(t.run_dir(0), PathBuf::from("/run/tw/node-a"));
    }

    #[test]
    fn one_node_holds_every_pod() {
        let t = Topology::new("tw", false);
        assert!(!t.uses_etcd());
        assert!(t.pods.iter().all(|p| p.node == 0));
        assert!(
            t.cells()
                .iter()
                .all(|&(s, d)| t.path_kind(s, d) != PathKind::AcrossNodes)
        );
    }

    #[test]
    fn the_matrix_probes_every_pair_but_self_and_node_to_node() {
        let t = Topology::new("tw", true);
        // 6 endpoints: 6*5 ordered pairs, minus node-a<->node-b.
        assert_eq!(t.cells().len(), 28);
        let kinds: Vec<PathKind> = t.cells().iter().map(|&(s, d)| t.path_kind(s, d)).collect();
        let count = |k| kinds.iter().filter(|&&x| x == k).count();
        assert_eq!(count(PathKind::SameNode), 4);
        assert_eq!(count(PathKind::AcrossNodes), 8);
        assert_eq!(count(PathKind::NodeToPod), 8);
        assert_eq!(count(PathKind::PodToNode), 8);
    }

    #[test]
    fn before_the_policy_everything_is_open() {
        let t = Topology::new("tw", true);
        assert!(
            t.cells()
                .iter()
                .all(|&(s, d)| t.expect(s, d, false) == Expect::Open)
        );
    }

    #[test]
    fn the_policy_blocks_all_but_api_and_the_own_node_into_db() {
        let t = Topology::new("tw", true);
        let db = Endpoint::Pod(3);
        let blocked: Vec<&str> = t
            .cells()
            .into_iter()
            .filter(|&(s, d)| t.expect(s, d, true) == Expect::Blocked)
            .map(|(s, d)| {
                assert_eq!(d, db, "only db-1 is protected");
                t.label(s)
            })
            .collect();
        assert_eq!(blocked, vec!["web-1", "web-2", "node-a"]);
        assert_eq!(t.expect(Endpoint::Pod(2), db, true), Expect::Open);
        assert_eq!(t.expect(Endpoint::Node(1), db, true), Expect::Open);
        assert_eq!(t.expect(db, Endpoint::Pod(0), true), Expect::Open);
    }

    #[test]
    fn the_traced_packet_is_blocked_on_the_protected_pods_node() {
        for two in [true, false] {
            let t = Topology::new("tw", two);
            let (src, dst) = t.traced().expect("a blocked same-node pair");
            assert_eq!(t.pods[dst].name, "db-1");
            assert_eq!(t.pods[src].node, t.pods[dst].node);
            assert_eq!(
                t.expect(Endpoint::Pod(src), Endpoint::Pod(dst), true),
                Expect::Blocked
            );
        }
    }

    #[test]
    fn the_sample_policy_parses_and_names_what_the_expectations_assume() {
        let docs = tweed_control::policy::parse::parse_documents(SAMPLE_POLICY)
            .expect("the sample policy parses");
        assert_eq!(docs.len(), 1);
        assert!(SAMPLE_POLICY.contains("app: db") && SAMPLE_POLICY.contains("app: api"));
        assert!(SAMPLE_POLICY.contains(&format!("port: {PROBE_PORT}")));
    }
}

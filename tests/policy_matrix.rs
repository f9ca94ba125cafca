//! Network policy on real pods, proven with the truth-table harness
//! (`tweed_suite::matrix`): one node (`tweed daemon`, embedded store), five
//! labelled pods in three namespaces, and two plain addresses (the node's
//! own, and a host outside the cluster behind the node's masquerade), every
//! (from, to, probe) probed for TCP 80, 443, 8080 and UDP 53, 5353.
//!
//! The policy is set with the *dataplane's* `policy_set` on the daemon's
//! `dataplane.sock`: the daemon does not push policy yet, so nothing
//! overwrites it during a test. Once the daemon compiles policies
//! (`policy_apply` on `control.sock`), these tests move to its API; the
//! harness and the expectations stay as they are.
//!
//! Each test has its own prefix (`pma`..`pme`) and underlay subnet
//! (10.97.41-45); every namespace, process and directory goes with its guard,
//! also on failure.

use std::net::IpAddr;
use std::time::Duration;

use tweed_dataplane::api::proto::{
    PolicySet, PortRangeSpec, RuleActionSpec, RuleSetSpec, RuleSpec, VerdictSpec,
};
use tweed_suite::control::{ControlPod, SingleNode, node_address, status};
use tweed_suite::matrix::{Connection, DEFAULT_PROBES, Harness, Member, Protocol, Target};
use tweed_suite::privileged::require_root;

/// The cluster CIDR, given explicitly: the egress rules below name it.
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

/// A node with the pods attached. Pods drop first (their namespaces), then
/// the daemon and its dataplane, then the underlay.
struct World {
    pods: Vec<ControlPod>,
    node: SingleNode,
    /// The node's own address (the first of its subnet, on `tweed0`).
    node_addr: IpAddr,
    /// The underlay, outside the cluster: the switch's `/24`.
    outside: String,
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
        let pods = PODS
            .iter()
            .map(|(ns, name, labels)| ControlPod::attach_in(&mut client, prefix, ns, name, labels))
            .collect();
        Self {
            pods,
            node_addr: node_address(&subnet),
            outside: format!("{base}.0/24"),
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

    /// `policy_set` of pod `name` on the node's dataplane.
    fn set_policy(&self, name: &str, ingress: RuleSetSpec, egress: RuleSetSpec) {
        self.node
            .dataplane()
            .policy_set(PolicySet {
                name: name.to_owned(),
                ingress,
                egress,
            })
            .unwrap_or_else(|e| panic!("policy_set {name}: {e:?}"));
    }
}

/// A rule set deciding `default` when none of `rules` does.
fn rules(default: VerdictSpec, rules: Vec<RuleSpec>) -> RuleSetSpec {
    RuleSetSpec { default, rules }
}

/// Rule `id` doing `action` for `remote` (empty: any) minus `except`,
/// `protocol` (any when `None`) and the inclusive `ports`.
fn rule(
    id: u32,
    action: RuleActionSpec,
    remote: &[&str],
    except: &[&str],
    protocol: Option<Protocol>,
    ports: Option<(u16, u16)>,
) -> RuleSpec {
    let nets = |list: &[&str]| {
        list.iter()
            .map(|n| n.parse().unwrap_or_else(|e| panic!("{n}: {e}")))
            .collect()
    };
    RuleSpec {
        id,
        tier: 0,
        action,
        remote: nets(remote),
        remote_except: nets(except),
        protocol: protocol.map(Protocol::number),
        ports: ports.map(|(first, last)| PortRangeSpec { first, last }),
    }
}

fn host(ip: IpAddr) -> String {
    format!("{ip}/32")
}

#[test]
fn without_policy_every_cell_is_allowed() {
    if !require_root() {
        return;
    }
    let world = World::start("pma", "10.97.41");
    let harness = world.harness();
    harness.check(&harness.all_allowed());
}

#[test]
fn ingress_default_deny_admits_one_source_on_tcp_80_only() {
    if !require_root() {
        return;
    }
    let world = World::start("pmb", "10.97.42");
    let harness = world.harness();
    let web = world.pod("prod/web").ipv4();
    world.set_policy(
        "prod/db",
        rules(
            VerdictSpec::Deny,
            vec![rule(
                1,
                RuleActionSpec::Allow,
                &[&host(web)],
                &[],
                Some(Protocol::Tcp),
                Some((80, 80)),
            )],
        ),
        RuleSetSpec::default(),
    );
    harness.check(
        &harness
            .all_allowed()
            .deny("*", "prod/db", "*")
            .allow("prod/web", "prod/db", "tcp/80"),
    );

    // Back to no policy: nothing of it stays behind.
    world.set_policy("prod/db", RuleSetSpec::default(), RuleSetSpec::default());
    harness.check(&harness.all_allowed());
}

#[test]
fn egress_denies_a_cidr_and_allows_a_cidr_with_an_exception() {
    if !require_root() {
        return;
    }
    let world = World::start("pmc", "10.97.43");
    let harness = world.harness();
    // dev/tool may go anywhere but outside the cluster.
    world.set_policy(
        "dev/tool",
        RuleSetSpec::default(),
        rules(
            VerdictSpec::Allow,
            vec![rule(
                1,
                RuleActionSpec::Deny,
                &[&world.outside],
                &[],
                None,
                None,
            )],
        ),
    );
    // dev/web only inside the cluster (the node's address included), and
    // not to prod/db.
    let db = world.pod("prod/db").ipv4();
    world.set_policy(
        "dev/web",
        RuleSetSpec::default(),
        rules(
            VerdictSpec::Deny,
            vec![rule(
                1,
                RuleActionSpec::Allow,
                &[CLUSTER],
                &[&host(db)],
                None,
                None,
            )],
        ),
    );
    harness.check(
        &harness
            .all_allowed()
            .deny("dev/tool", "ext", "*")
            .deny("dev/web", "ext", "*")
            .deny("dev/web", "prod/db", "*"),
    );
}

#[test]
fn port_ranges_are_inclusive_at_both_ends() {
    if !require_root() {
        return;
    }
    let world = World::start("pmd", "10.97.44");
    let harness = world.harness();
    // Into prod/web: TCP 443..=8080 and UDP 54..=5353, so 443, 8080 and
    // 5353 (the ends) pass while 80 and 53 (just below) do not.
    world.set_policy(
        "prod/web",
        rules(
            VerdictSpec::Deny,
            vec![
                rule(
                    1,
                    RuleActionSpec::Allow,
                    &[],
                    &[],
                    Some(Protocol::Tcp),
                    Some((443, 8080)),
                ),
                rule(
                    2,
                    RuleActionSpec::Allow,
                    &[],
                    &[],
                    Some(Protocol::Udp),
                    Some((54, 5353)),
                ),
            ],
        ),
        RuleSetSpec::default(),
    );
    // Out of ops/mon: TCP 1..=442 and UDP 53..=53 only.
    world.set_policy(
        "ops/mon",
        RuleSetSpec::default(),
        rules(
            VerdictSpec::Deny,
            vec![
                rule(
                    1,
                    RuleActionSpec::Allow,
                    &[],
                    &[],
                    Some(Protocol::Tcp),
                    Some((1, 442)),
                ),
                rule(
                    2,
                    RuleActionSpec::Allow,
                    &[],
                    &[],
                    Some(Protocol::Udp),
                    Some((53, 53)),
                ),
            ],
        ),
    );
    harness.check(
        &harness
            .all_allowed()
            .deny("*", "prod/web", "tcp/80")
            .deny("*", "prod/web", "udp/53")
            .deny("ops/mon", "*", "tcp/443-8080")
            .deny("ops/mon", "*", "udp/5353"),
    );
}

/// The dataplane's policy is stateful: packets of a tracked flow skip policy
/// in both directions. So replies to a pod whose ingress denies everything
/// still reach it, while new connections to it are blocked; and a
/// connection opened before a policy change goes on working after it
/// (its flow outlives the change), while new connections obey the new policy.
#[test]
fn replies_and_open_connections_pass_new_connections_obey_the_policy() {
    if !require_root() {
        return;
    }
    let world = World::start("pme", "10.97.45");
    let harness = world.harness();
    let db = world.pod("prod/db");
    let dev = world.pod("dev/web");
    // Opened before any policy: one into prod/db, one out of it.
    let mut into_db = Connection::open(&dev.netns, db.ipv4(), 8080, HELD);
    let mut from_db = Connection::open(&db.netns, dev.ipv4(), 8080, HELD);
    for (what, conn) in [("into", &mut into_db), ("out of", &mut from_db)] {
        conn.round_trip()
            .unwrap_or_else(|e| panic!("{what} prod/db before the policy: {e}"));
    }

    // prod/db admits nothing new: its own probes pass (their replies ride
    // their flows through its ingress), probes to it do not.
    world.set_policy(
        "prod/db",
        rules(VerdictSpec::Deny, vec![]),
        RuleSetSpec::default(),
    );
    harness.check(&harness.all_allowed().deny("*", "prod/db", "*"));
    into_db.round_trip().unwrap_or_else(|e| {
        panic!("the connection into prod/db opened before its ingress deny: {e}")
    });
    from_db
        .round_trip()
        .unwrap_or_else(|e| panic!("the connection out of prod/db after its ingress deny: {e}"));
    let flows = world.node.dataplane().dump().flows;
    assert!(
        flows.iter().any(|f| f.dst_port == 8080
            && f.state == "established"
            && [f.src, f.dst] == [dev.ipv4(), db.ipv4()]),
        "the connection into prod/db is a tracked flow: {flows:?}"
    );

    // Isolated both ways: nothing new in or out; the two open connections
    // still work.
    world.set_policy(
        "prod/db",
        rules(VerdictSpec::Deny, vec![]),
        rules(VerdictSpec::Deny, vec![]),
    );
    harness.check(
        &harness
            .all_allowed()
            .deny("*", "prod/db", "*")
            .deny("prod/db", "*", "*"),
    );
    for (what, conn) in [("into", &mut into_db), ("out of", &mut from_db)] {
        conn.round_trip()
            .unwrap_or_else(|e| panic!("{what} prod/db after isolating it: {e}"));
    }

    world.set_policy("prod/db", RuleSetSpec::default(), RuleSetSpec::default());
    harness.check(&harness.all_allowed());
}

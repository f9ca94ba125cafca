use super::*;
use crate::api::fixtures;

#[test]
fn status_shows_the_node_the_dataplane_and_a_peer_table() {
    assert_eq!(
        render_status(&fixtures::status()),
        "\
node:          node1
subnets:       10.244.1.0/24, fd00:1::/64
node address:  192.168.0.1
underlay:      192.168.0.1 (vtep 02:00:00:00:01:01)
backend:       vxlan
store:         embedded /var/lib/tweed/state.redb, up
dataplane:     up, pid 4242, 1 restart, 2 ports, tap I/O io_uring (/run/tweed/dataplane.sock)

NAME   KIND    SUBNETS        UNDERLAY     BACKEND  REACHABLE  RTT
node2  node    10.244.2.0/24  192.168.0.2  vxlan    yes        0.42 ms
edge   static  10.250.0.0/16  203.0.113.7  udp      no         -
edge: last probe failed: no answer within 1s
"
    );
}

#[test]
fn status_with_the_dataplane_down_and_no_peers() {
    let mut status = fixtures::status();
    status.dataplane.up = false;
    status.dataplane.pid = None;
    status.dataplane.restarts = 3;
    status.dataplane.ports = 0;
    status.dataplane.error = Some("connecting to /run/tweed/dataplane.sock: refused".into());
    status.dataplane.io = None;
    status.peers.clear();
    let out = render_status(&status);
    assert!(
        out.contains("dataplane:        down, 3 restarts, 0 ports (/run/tweed/dataplane.sock)\n"),
        "{out}"
    );
    assert!(
        out.contains("dataplane error:  connecting to /run/tweed/dataplane.sock: refused\n"),
        "{out}"
    );
    assert!(out.ends_with("\nno peers\n"), "{out}");
}

#[test]
fn a_failing_store_shows_why() {
    let mut status = fixtures::status();
    status.store_health.up = false;
    status.store_health.failures = 3;
    status.store_health.error = Some("put failed: No space left on device".into());
    let out = render_status(&status);
    assert!(
        out.contains(
            "store:         embedded /var/lib/tweed/state.redb, failing (3 failed calls since start)\n\
             store error:   put failed: No space left on device\n\
             dataplane:     up"
        ),
        "{out}"
    );
}

#[test]
fn unprobed_peers_show_unknown() {
    let mut status = fixtures::status();
    status.peers[0].reachable = None;
    status.peers[0].rtt_ms = None;
    assert!(render_status(&status).contains("vxlan    unknown    -\n"));
}

#[test]
fn pods_show_addresses_and_a_short_container_id() {
    let mut v4_only = fixtures::pod();
    v4_only.name = "db".into();
    v4_only.ipv6 = None;
    assert_eq!(
        render_pods(&[fixtures::pod(), v4_only]),
        "\
NAMESPACE  NAME  CONTAINER     IFNAME  IPV4        IPV6       MAC                MTU
default    web   3f2a9c0d1e2b  eth0    10.244.1.2  fd00:1::2  02:00:0a:f4:01:02  1450
default    db    3f2a9c0d1e2b  eth0    10.244.1.2  -          02:00:0a:f4:01:02  1450
"
    );
    assert_eq!(render_pods(&[]), "no pods on this node\n");
}

#[test]
fn nodes_and_peers() {
    assert_eq!(
        render_nodes(&[fixtures::this_node(), fixtures::static_peer()]),
        "\
NAME   KIND    SUBNETS                     UNDERLAY     VTEP-MAC           BACKEND  ADDRESSES
node1  this    10.244.1.0/24, fd00:1::/64  192.168.0.1  02:00:00:00:01:01  vxlan    192.168.0.1
edge   static  10.250.0.0/16               203.0.113.7  02:00:00:00:09:09  udp      -
"
    );
    assert_eq!(
        render_peers(&[fixtures::static_peer()]),
        "\
NAME  SUBNETS        UNDERLAY     VTEP-MAC           BACKEND
edge  10.250.0.0/16  203.0.113.7  02:00:00:00:09:09  udp
"
    );
    assert_eq!(render_peers(&[]), "no static peers\n");
}

#[test]
fn routes() {
    assert_eq!(
        render_routes(&fixtures::routes()),
        "\
PREFIX         NEXT-HOP
10.244.1.2/32  port default/web
10.244.2.0/24  peer node2
0.0.0.0/0      host
"
    );
    assert_eq!(render_routes(&[]), "no routes\n");
}

#[test]
fn a_stale_kubernetes_datasource_says_which_watch_fails_and_what_was_refused() {
    use crate::api::node::{DatasourceStatus, ResourceStatus};
    let mut status = fixtures::status();
    let resource = |name: &str, objects| ResourceStatus {
        resource: name.into(),
        synced: true,
        served: true,
        objects,
        error: None,
        rejected: Vec::new(),
    };
    let mut pods = resource("pods", 40);
    pods.error = Some("connection refused".into());
    let mut policies = resource("networkpolicies", 2);
    policies.rejected = vec!["prod/db: spec.ingress[0]: bad port".into()];
    status.datasource = Some(DatasourceStatus {
        kind: "kubernetes".into(),
        server: "https://10.96.0.1/".into(),
        stale: true,
        resources: vec![pods, policies, resource("nodes", 3)],
    });
    let out = render_status(&status);
    for line in [
        "kubernetes https://10.96.0.1/, STALE: enforcing the last state seen (45 objects from 3 resources)\n",
        "watch failing:  pods: connection refused\n",
        "refused:        networkpolicies prod/db: spec.ingress[0]: bad port\n",
    ] {
        assert!(out.contains(line), "{line:?} missing from\n{out}");
    }
}

#[test]
fn status_says_when_the_dataplane_balances_services() {
    let mut status = fixtures::status();
    assert!(!render_status(&status).contains("services:"));
    status.native_services = true;
    let out = render_status(&status);
    assert!(
        out.contains("services:      native: the dataplane balances them\n"),
        "{out}"
    );
}

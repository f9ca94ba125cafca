//! The planner's changes on a state in memory: no root, no taps, no socket.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use tweed_api::ErrorKind;
use tweed_api::dataplane::proto::{
    Backend, MacAddr, PeerSpec, PolicySet, PortInfo, RouteSpec, RouteVia, RuleSetSpec, VerdictSpec,
};

use super::*;
use crate::daemon::shared::TapHandles;
use crate::table::acl::Verdict;
use crate::table::tables::NodeConfig;

fn state() -> Inner {
    Inner::new(TablesWriter::new(NodeConfig {
        gateway_mac: [2, 0, 0, 0, 0, 1],
        vtep_mac: [2, 0, 0, 0, 0, 2],
        host_mac: [2, 0, 0, 0, 0, 3],
        vni: 1,
        vxlan_port: 4789,
        udp_port: 8285,
        overlay_mtu: 1450,
        underlay_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))),
        service_cidrs: Vec::new(),
    }))
}

fn peer(name: &str, subnet: &str, underlay: &str) -> PeerSpec {
    PeerSpec {
        name: name.into(),
        subnets: vec![subnet.parse().expect("cidr")],
        underlay_ip: underlay.parse().expect("ip"),
        vtep_mac: MacAddr([2, 0, 0, 0, 1, 2]),
        backend: Backend::Vxlan,
        source_ports: None,
        partial_checksums: false,
    }
}

fn route(prefix: &str, via: RouteVia) -> RouteSpec {
    RouteSpec {
        prefix: prefix.parse().expect("cidr"),
        via,
    }
}

/// Attaches a port the way `Control::attach` does, minus the taps: no
/// queues, so nothing here needs root.
fn attach(state: &mut Inner, id: u32, name: &str, ip: [u8; 4]) {
    let port = PortState {
        info: PortInfo {
            id: PortId(id),
            name: name.into(),
            netns: "/run/netns/none".into(),
            ifname: "eth0".into(),
            mac: MacAddr([2, 0, 0, 0, 9, id as u8]),
            ipv4: Some(Ipv4Addr::from(ip)),
            ipv6: None,
            mtu: 1450,
        },
        ingress: RuleSetSpec::default(),
        egress: RuleSetSpec::default(),
        handles: Arc::new(TapHandles { queues: Vec::new() }),
    };
    let endpoint = super::super::endpoint::endpoint_of(&port).expect("compile");
    state.writer.upsert_endpoint(endpoint).expect("endpoint");
    state.ports.insert(PortId(id), port);
}

fn deny_all() -> RuleSetSpec {
    RuleSetSpec {
        default: VerdictSpec::Deny,
        rules: Vec::new(),
    }
}

#[test]
fn a_peer_on_another_peers_underlay_address_is_a_conflict_that_changes_nothing() {
    let mut s = state();
    s.peer_set(peer("node2", "10.244.2.0/24", "192.168.0.2"))
        .expect("first");
    let before = s.state_file();
    let e = s
        .peer_set(peer("node3", "10.244.3.0/24", "192.168.0.2"))
        .expect_err("same underlay address");
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("node2"), "{}", e.message);
    assert_eq!(s.state_file(), before);
}

#[test]
fn undoing_a_peer_change_restores_what_it_replaced() {
    let mut s = state();
    s.peer_set(peer("node2", "10.244.2.0/24", "192.168.0.2"))
        .expect("set");
    let before = s.state_file();
    let done = s
        .peer_set(peer("node2", "10.244.9.0/24", "192.168.0.2"))
        .expect("replace");
    assert_eq!(s.peer_specs()[0].subnets[0].to_string(), "10.244.9.0/24");
    s.undo_edit(done);
    assert_eq!(s.state_file(), before);
    let done = s.peer_remove("node2").expect("remove");
    assert!(s.peer_specs().is_empty());
    s.undo_edit(done);
    assert_eq!(s.state_file(), before);
    assert_eq!(
        s.peer_remove("node9").expect_err("unknown").kind,
        ErrorKind::NotFound
    );
}

#[test]
fn a_static_route_may_not_take_a_pods_or_a_peers_prefix() {
    let mut s = state();
    attach(&mut s, 0, "default/web", [10, 244, 1, 2]);
    s.peer_set(peer("node2", "10.244.2.0/24", "192.168.0.2"))
        .expect("peer");
    for prefix in ["10.244.1.2/32", "10.244.2.0/24"] {
        let e = s
            .route_set(route(prefix, RouteVia::Host))
            .expect_err(prefix);
        assert_eq!(e.kind, ErrorKind::Conflict, "{prefix}");
    }
    assert!(s.static_routes.is_empty());
}

#[test]
fn a_route_is_saved_replaced_and_undone_exactly() {
    let mut s = state();
    let empty = s.state_file();
    // Host bits are dropped: the route is the network's.
    let done = s
        .route_set(route("10.96.0.7/12", RouteVia::Host))
        .expect("set");
    let prefix = "10.96.0.0/12".parse().expect("cidr");
    assert_eq!(s.writer.route(prefix), Some(NextHop::Host));
    assert_eq!(
        s.state_file().routes,
        [route("10.96.0.0/12", RouteVia::Host)]
    );
    s.undo_edit(done);
    assert_eq!(s.state_file(), empty);
    assert_eq!(s.writer.route(prefix), None);

    s.route_set(route("10.96.0.0/12", RouteVia::Host))
        .expect("set");
    let saved = s.state_file();
    let done = s
        .route_set(route("10.96.0.0/12", RouteVia::Blackhole))
        .expect("replace");
    assert_eq!(s.writer.route(prefix), Some(NextHop::Blackhole));
    s.undo_edit(done);
    assert_eq!(s.state_file(), saved);
    assert_eq!(s.writer.route(prefix), Some(NextHop::Host));

    let done = s.route_remove(prefix).expect("remove");
    assert_eq!(s.writer.route(prefix), None);
    s.undo_edit(done);
    assert_eq!(s.state_file(), saved);
    assert_eq!(
        s.route_remove("10.97.0.0/16".parse().expect("cidr"))
            .expect_err("no such route")
            .kind,
        ErrorKind::NotFound
    );
}

#[test]
fn a_policy_change_naming_an_unknown_port_changes_no_port() {
    let mut s = state();
    attach(&mut s, 0, "default/web", [10, 244, 1, 2]);
    let sets = vec![
        PolicySet {
            name: "default/web".into(),
            ingress: deny_all(),
            egress: RuleSetSpec::default(),
        },
        PolicySet {
            name: "default/gone".into(),
            ingress: deny_all(),
            egress: RuleSetSpec::default(),
        },
    ];
    let e = s.policy_targets(sets).expect_err("unknown port");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("default/gone"), "{}", e.message);
    assert_eq!(s.ports[&PortId(0)].ingress, RuleSetSpec::default());
}

#[test]
fn a_policy_change_compiles_installs_and_undoes() {
    let mut s = state();
    attach(&mut s, 0, "default/web", [10, 244, 1, 2]);
    attach(&mut s, 1, "default/db", [10, 244, 1, 3]);
    let before = s.state_file();
    let verdict = |s: &Inner, id: u32| {
        let endpoint = s.writer.endpoints().get(PortId(id)).expect("endpoint");
        let client = IpAddr::V4(Ipv4Addr::new(10, 244, 1, 2));
        endpoint.ingress.classify(client, 6, 80).verdict
    };
    assert_eq!(verdict(&s, 1), Verdict::Allow);
    let targets = s
        .policy_targets(vec![PolicySet {
            name: "default/db".into(),
            ingress: deny_all(),
            egress: RuleSetSpec::default(),
        }])
        .expect("targets");
    let done = s
        .policy_apply(compile_targets(targets).expect("compile"))
        .expect("apply");
    assert_eq!(verdict(&s, 1), Verdict::Deny);
    assert_eq!(verdict(&s, 0), Verdict::Allow);
    assert_eq!(s.ports[&PortId(1)].ingress, deny_all());
    assert_ne!(s.state_file(), before);
    s.undo_edit(done);
    assert_eq!(verdict(&s, 1), Verdict::Allow);
    assert_eq!(s.state_file(), before);
}

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::*;
use crate::wire::transport::{PROTO_TCP, PROTO_UDP};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10));
const NODE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 244, 0, 7));

fn key(ip: IpAddr, port: u16) -> ServiceKey {
    ServiceKey {
        ip,
        protocol: PROTO_TCP,
        port,
    }
}

fn endpoint(last: u8, local: bool) -> ServiceEndpoint {
    ServiceEndpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 244, 1, last)),
        port: 8080,
        local,
        ready: true,
        serving: true,
        terminating: false,
    }
}

fn service(endpoints: Vec<ServiceEndpoint>) -> ServicePort {
    ServicePort {
        name: "default/web:http".into(),
        frontends: vec![
            Frontend {
                key: key(VIP, 80),
                kind: FrontendKind::ClusterIp,
            },
            Frontend {
                key: key(NODE, 30080),
                kind: FrontendKind::External,
            },
        ],
        endpoints,
        internal: TrafficPolicy::Cluster,
        external: TrafficPolicy::Cluster,
        affinity: Affinity::None,
    }
}

fn backend(selection: Selection) -> SocketAddr {
    match selection {
        Selection::Backend { to, .. } => to,
        other => panic!("expected a backend, got {other:?}"),
    }
}

/// The backends chosen for 4,000 flows of distinct hashes, counted.
fn spread(table: &ServiceTable, to: ServiceKey, origin: Origin) -> HashMap<SocketAddr, usize> {
    let mut seen = HashMap::new();
    for flow in 0..4_000u64 {
        let hash = maglev::mix(flow);
        *seen
            .entry(backend(table.select(to, CLIENT, hash, origin)))
            .or_default() += 1;
    }
    seen
}

#[test]
fn an_address_no_service_answers_on_is_not_a_service() {
    let table = ServiceTable::build(&[service(vec![endpoint(1, true)])]).unwrap();
    assert_eq!(table.len(), 2);
    for other in [
        key(VIP, 81),
        ServiceKey {
            protocol: PROTO_UDP,
            ..key(VIP, 80)
        },
        key(CLIENT, 80),
    ] {
        assert_eq!(
            table.select(other, CLIENT, 1, Origin::Pod),
            Selection::NotService
        );
    }
}

#[test]
fn flows_spread_over_the_ready_endpoints_only() {
    let mut not_ready = endpoint(4, true);
    not_ready.ready = false;
    let table = ServiceTable::build(&[service(vec![
        endpoint(1, true),
        endpoint(2, false),
        endpoint(3, false),
        not_ready,
    ])])
    .unwrap();
    let seen = spread(&table, key(VIP, 80), Origin::Pod);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(!seen.contains_key(&SocketAddr::new(not_ready.ip, 8080)));
    for (to, count) in &seen {
        assert!((1_000..1_700).contains(count), "{to}: {count} of 4000");
    }
}

#[test]
fn without_ready_endpoints_serving_terminating_ones_serve_and_without_any_it_rejects() {
    let mut terminating = endpoint(1, true);
    terminating.ready = false;
    terminating.terminating = true;
    let mut gone = endpoint(2, true);
    gone.ready = false;
    gone.serving = false;
    gone.terminating = true;
    let table = ServiceTable::build(&[service(vec![terminating, gone])]).unwrap();
    let seen = spread(&table, key(VIP, 80), Origin::Pod);
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [SocketAddr::new(terminating.ip, 8080)]
    );

    let table = ServiceTable::build(&[service(vec![gone])]).unwrap();
    let refused = table.select(key(VIP, 80), CLIENT, 9, Origin::Pod);
    assert_eq!(
        refused,
        Selection::Reject {
            service: "default/web:http".into()
        }
    );
    let table = ServiceTable::build(&[service(vec![])]).unwrap();
    assert!(matches!(
        table.select(key(NODE, 30080), CLIENT, 9, Origin::External),
        Selection::Reject { .. }
    ));
}

#[test]
fn internal_local_keeps_pods_on_this_node_and_drops_without_a_local_endpoint() {
    let mut port = service(vec![endpoint(1, true), endpoint(2, false)]);
    port.internal = TrafficPolicy::Local;
    let table = ServiceTable::build(&[port.clone()]).unwrap();
    let seen = spread(&table, key(VIP, 80), Origin::Pod);
    assert_eq!(seen.len(), 1, "only the local endpoint: {seen:?}");
    // A pod reaching the node port is short-circuited to every endpoint.
    assert_eq!(spread(&table, key(NODE, 30080), Origin::Pod).len(), 2);

    port.endpoints = vec![endpoint(2, false)];
    let table = ServiceTable::build(&[port]).unwrap();
    assert!(matches!(
        table.select(key(VIP, 80), CLIENT, 3, Origin::Pod),
        Selection::Drop { .. }
    ));
}

#[test]
fn external_local_holds_for_outside_clients_only() {
    let mut port = service(vec![
        endpoint(1, true),
        endpoint(2, false),
        endpoint(3, false),
    ]);
    port.external = TrafficPolicy::Local;
    let table = ServiceTable::build(&[port]).unwrap();
    assert_eq!(spread(&table, key(NODE, 30080), Origin::External).len(), 1);
    assert_eq!(spread(&table, key(VIP, 80), Origin::Pod).len(), 3);
}

#[test]
fn only_outside_clients_under_the_cluster_policy_are_masqueraded() {
    let masquerade = |table: &ServiceTable, to, origin| match table.select(to, CLIENT, 5, origin) {
        Selection::Backend { masquerade, .. } => masquerade,
        other => panic!("expected a backend, got {other:?}"),
    };
    let mut port = service(vec![endpoint(1, true), endpoint(2, false)]);
    let table = ServiceTable::build(&[port.clone()]).unwrap();
    assert!(masquerade(&table, key(NODE, 30080), Origin::External));
    assert!(!masquerade(&table, key(NODE, 30080), Origin::Pod));
    assert!(!masquerade(&table, key(VIP, 80), Origin::Pod));
    port.external = TrafficPolicy::Local;
    let table = ServiceTable::build(&[port]).unwrap();
    assert!(!masquerade(&table, key(NODE, 30080), Origin::External));
}

#[test]
fn client_ip_affinity_sends_every_flow_of_a_client_to_one_backend() {
    let mut port = service((1..=5).map(|i| endpoint(i, true)).collect());
    port.affinity = Affinity::ClientIp;
    let table = ServiceTable::build(&[port]).unwrap();
    assert_eq!(spread(&table, key(VIP, 80), Origin::Pod).len(), 1);
    let clients: std::collections::HashSet<SocketAddr> = (1..=200u8)
        .map(|i| {
            let client = IpAddr::V4(Ipv4Addr::new(10, 244, 2, i));
            backend(table.select(key(VIP, 80), client, 0, Origin::Pod))
        })
        .collect();
    assert_eq!(clients.len(), 5, "clients still spread over the backends");
}

#[test]
fn removing_an_endpoint_keeps_most_flows_of_the_others_on_theirs() {
    let endpoints: Vec<ServiceEndpoint> = (1..=8).map(|i| endpoint(i, true)).collect();
    let before = ServiceTable::build(&[service(endpoints.clone())]).unwrap();
    let removed = SocketAddr::new(endpoints[3].ip, 8080);
    let after = ServiceTable::build(&[service(
        endpoints
            .iter()
            .copied()
            .filter(|e| e.ip != removed.ip())
            .collect(),
    )])
    .unwrap();
    let (mut kept, mut moved) = (0, 0);
    for flow in 0..10_000u64 {
        let hash = maglev::mix(flow);
        let old = backend(before.select(key(VIP, 80), CLIENT, hash, Origin::Pod));
        let new = backend(after.select(key(VIP, 80), CLIENT, hash, Origin::Pod));
        assert_ne!(new, removed);
        if old != removed {
            if old == new { kept += 1 } else { moved += 1 }
        }
    }
    assert!(
        moved * 100 / (kept + moved) < 10,
        "{moved} of {} flows moved",
        kept + moved
    );
}

#[test]
fn two_services_on_one_frontend_and_mixed_families_are_refused() {
    let mut other = service(vec![endpoint(9, true)]);
    other.name = "default/other:http".into();
    other.frontends.truncate(1);
    let err = ServiceTable::build(&[service(vec![endpoint(1, true)]), other]).unwrap_err();
    assert!(
        matches!(err, ServiceError::SharedFrontend { ref first, .. } if first == "default/web:http"),
        "{err}"
    );
    assert!(err.to_string().contains("default/other:http"), "{err}");

    let mut v6 = endpoint(1, true);
    v6.ip = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    let err = ServiceTable::build(&[service(vec![endpoint(2, true), v6])]).unwrap_err();
    assert!(
        matches!(err, ServiceError::MixedFamilies { endpoint, .. } if endpoint == v6.ip),
        "{err}"
    );
}

#[test]
fn a_backend_is_listed_while_it_serves_though_terminating_ones_take_no_new_connections() {
    let mut not_ready = endpoint(4, true);
    not_ready.ready = false;
    not_ready.serving = false;
    let mut terminating = endpoint(5, true);
    terminating.ready = false;
    terminating.terminating = true;
    let table =
        ServiceTable::build(&[service(vec![endpoint(1, true), not_ready, terminating])]).unwrap();
    let listed = |last: u8, port: u16| {
        table.lists(
            key(VIP, 80),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 244, 1, last)), port),
        )
    };
    assert!(listed(1, 8080));
    assert!(!listed(1, 8081), "another port of the same pod");
    assert!(!listed(4, 8080), "neither ready nor serving");
    assert!(
        listed(5, 8080),
        "shutting down: its open connections finish"
    );
    assert!(!listed(9, 8080));
    assert!(!table.lists(key(VIP, 81), SocketAddr::new(endpoint(1, true).ip, 8080)));
    let seen = spread(&table, key(VIP, 80), Origin::Pod);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        [&SocketAddr::new(endpoint(1, true).ip, 8080)],
        "new connections go to the ready one only"
    );
}

#[test]
fn a_rebuild_recompiles_only_the_ports_that_changed() {
    let other = |endpoints| ServicePort {
        name: "default/api:http".into(),
        frontends: vec![Frontend {
            key: key(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 11)), 80),
            kind: FrontendKind::ClusterIp,
        }],
        ..service(endpoints)
    };
    let before = ServiceTable::build(&[
        service(vec![endpoint(1, true), endpoint(2, false)]),
        other(vec![endpoint(3, false)]),
    ])
    .unwrap();
    // web loses an endpoint; api is the same.
    let after = ServiceTable::rebuild(
        &[
            service(vec![endpoint(1, true)]),
            other(vec![endpoint(3, false)]),
        ],
        &before,
    )
    .unwrap();
    let same = |name: &str| {
        Arc::ptr_eq(
            before.compiled(name).unwrap(),
            after.compiled(name).unwrap(),
        )
    };
    assert!(same("default/api:http"), "unchanged: reused");
    assert!(!same("default/web:http"), "changed: compiled again");
    // And the rebuilt table answers as one built from scratch.
    let fresh = ServiceTable::build(&[
        service(vec![endpoint(1, true)]),
        other(vec![endpoint(3, false)]),
    ])
    .unwrap();
    for to in [
        key(VIP, 80),
        key(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 11)), 80),
    ] {
        assert_eq!(
            spread(&after, to, Origin::Pod),
            spread(&fresh, to, Origin::Pod)
        );
    }
    // A port gone from the set is gone from the table.
    let without = ServiceTable::rebuild(&[other(vec![endpoint(3, false)])], &after).unwrap();
    assert_eq!(without.len(), 1);
    assert!(without.compiled("default/web:http").is_none());
    assert_eq!(
        without.select(key(VIP, 80), CLIENT, 1, Origin::Pod),
        Selection::NotService
    );
}

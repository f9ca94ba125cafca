//! Tests of [`render`](super::render): its output is read back by the strict checker
//! of [`crate::metrics::checker`], written independently of the writer.

use std::collections::BTreeMap;
use std::time::Duration;

use tweed_api::dataplane::report::{
    ActionStats, ConntrackStats, PortStats, StatsReply, WorkerStats,
};
use tweed_dataplane::api::report::drops_by_name;
use tweed_dataplane::pipeline::DropReason;

use super::render;
use crate::health::PeerHealth;
use crate::metrics::checker::{check, value};
use crate::metrics::{MetricsSnapshot, PoolUsage};
use crate::store::StoreHealth;

const ODD_PORT: &str = "ns/we\"ird\\pod\nname";

fn stats() -> StatsReply {
    let mut drops = [0u64; DropReason::COUNT];
    drops[DropReason::ALL[0] as usize] = 7;
    StatsReply {
        workers: vec![
            WorkerStats {
                id: 0,
                rx: 10,
                tx: 11,
                underlay_rx: 2,
                underlay_tx: 3,
                io_errors: 1,
            },
            WorkerStats {
                id: 1,
                rx: 20,
                tx: 21,
                underlay_rx: 4,
                underlay_tx: 5,
                io_errors: 0,
            },
        ],
        ports: vec![
            PortStats {
                name: "default/web".into(),
                rx_packets: 100,
                rx_bytes: 6400,
                tx_packets: 90,
                tx_bytes: 5000,
            },
            PortStats {
                name: ODD_PORT.into(),
                rx_packets: 1,
                rx_bytes: 64,
                tx_packets: 0,
                tx_bytes: 0,
            },
        ],
        drops: drops_by_name(&drops),
        actions: ActionStats {
            delivered: 30,
            to_host: 4,
            encapsulated: 9,
            replied: 2,
        },
        conntrack: ConntrackStats {
            entries: 12,
            capacity: 4096,
            evictions: 3,
            busy: 2,
        },
        policy_drops: vec![],
        io: None,
    }
}

fn peer(name: &str, reachable: Option<bool>, rtt_us: Option<u64>) -> PeerHealth {
    PeerHealth {
        name: name.into(),
        target: "10.244.1.1:9901".parse().expect("literal address"),
        reachable,
        rtt: rtt_us.map(Duration::from_micros),
        last_error: None,
    }
}

fn snapshot(dataplane: Option<StatsReply>) -> MetricsSnapshot {
    MetricsSnapshot {
        node: "node-a".into(),
        dataplane,
        dataplane_restarts: 2,
        store: StoreHealth::default(),
        peers: vec![
            peer("node-b", Some(true), Some(1500)),
            peer("node-c", Some(false), None),
            peer("node-d", None, None),
        ],
        ipam: vec![PoolUsage {
            subnet: "10.244.0.0/24".into(),
            capacity: 253,
            used: 5,
        }],
        datasource: Vec::new(),
    }
}

#[test]
fn full_snapshot_is_well_formed_in_a_stable_order() {
    let text = render(snapshot(Some(stats())));
    let (families, _) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        families,
        [
            "tweed_node_info",
            "tweed_dataplane_up",
            "tweed_dataplane_restarts_total",
            "tweed_store_up",
            "tweed_store_errors_total",
            "tweed_worker_rx_packets_total",
            "tweed_worker_tx_packets_total",
            "tweed_worker_underlay_rx_packets_total",
            "tweed_worker_underlay_tx_packets_total",
            "tweed_worker_io_errors_total",
            "tweed_port_rx_packets_total",
            "tweed_port_rx_bytes_total",
            "tweed_port_tx_packets_total",
            "tweed_port_tx_bytes_total",
            "tweed_drops_total",
            "tweed_actions_total",
            "tweed_conntrack_entries",
            "tweed_conntrack_capacity",
            "tweed_conntrack_evictions_total",
            "tweed_conntrack_busy_total",
            "tweed_peers",
            "tweed_peers_up",
            "tweed_peer_up",
            "tweed_peer_rtt_seconds",
            "tweed_ipam_addresses_capacity",
            "tweed_ipam_addresses_used",
            "tweed_datasource_current",
            "tweed_datasource_objects",
            "tweed_datasource_refused",
        ]
    );
    assert_eq!(
        text,
        render(snapshot(Some(stats()))),
        "same input, same text"
    );
}

#[test]
fn values_land_in_their_series() {
    let text = render(snapshot(Some(stats())));
    let (_, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let expect = [
        ("tweed_node_info", vec![("node", "node-a")], 1.0),
        ("tweed_dataplane_up", vec![], 1.0),
        ("tweed_dataplane_restarts_total", vec![], 2.0),
        ("tweed_store_up", vec![], 1.0),
        ("tweed_store_errors_total", vec![], 0.0),
        ("tweed_worker_rx_packets_total", vec![("worker", "1")], 20.0),
        ("tweed_worker_tx_packets_total", vec![("worker", "0")], 11.0),
        (
            "tweed_worker_underlay_rx_packets_total",
            vec![("worker", "1")],
            4.0,
        ),
        (
            "tweed_worker_underlay_tx_packets_total",
            vec![("worker", "0")],
            3.0,
        ),
        ("tweed_worker_io_errors_total", vec![("worker", "0")], 1.0),
        (
            "tweed_port_rx_bytes_total",
            vec![("port", "default/web")],
            6400.0,
        ),
        (
            "tweed_port_tx_packets_total",
            vec![("port", "default/web")],
            90.0,
        ),
        ("tweed_port_rx_packets_total", vec![("port", ODD_PORT)], 1.0),
        ("tweed_actions_total", vec![("action", "encapsulated")], 9.0),
        ("tweed_actions_total", vec![("action", "to_host")], 4.0),
        ("tweed_conntrack_entries", vec![], 12.0),
        ("tweed_conntrack_capacity", vec![], 4096.0),
        ("tweed_conntrack_evictions_total", vec![], 3.0),
        ("tweed_conntrack_busy_total", vec![], 2.0),
        ("tweed_peers", vec![], 3.0),
        ("tweed_peers_up", vec![], 1.0),
        ("tweed_peer_up", vec![("peer", "node-b")], 1.0),
        ("tweed_peer_up", vec![("peer", "node-c")], 0.0),
        ("tweed_peer_up", vec![("peer", "node-d")], 0.0),
        ("tweed_peer_rtt_seconds", vec![("peer", "node-b")], 0.0015),
        (
            "tweed_ipam_addresses_capacity",
            vec![("subnet", "10.244.0.0/24")],
            253.0,
        ),
        (
            "tweed_ipam_addresses_used",
            vec![("subnet", "10.244.0.0/24")],
            5.0,
        ),
    ];
    for (name, labels, want) in expect {
        assert_eq!(
            value(&s, name, &labels),
            Some(want),
            "{name}{labels:?}\n{text}"
        );
    }
    let rtts = s
        .iter()
        .filter(|x| x.name == "tweed_peer_rtt_seconds")
        .count();
    assert_eq!(rtts, 1, "an RTT only for the peer with a known one\n{text}");
}

#[test]
fn every_drop_reason_is_listed_zeros_included() {
    let text = render(snapshot(Some(stats())));
    let (_, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        let want = if i == 0 { 7.0 } else { 0.0 };
        let got = value(&s, "tweed_drops_total", &[("reason", reason.name())]);
        assert_eq!(got, Some(want), "{}", reason.name());
    }
    let drops = s.iter().filter(|x| x.name == "tweed_drops_total").count();
    assert_eq!(drops, DropReason::COUNT);
}

#[test]
fn label_values_are_escaped_on_the_wire() {
    let text = render(snapshot(Some(stats())));
    assert!(
        text.contains("tweed_port_rx_packets_total{port=\"ns/we\\\"ird\\\\pod\\nname\"} 1\n"),
        "{text}"
    );
}

#[test]
fn a_silent_dataplane_shows_down_and_no_dataplane_families() {
    let text = render(snapshot(None));
    let (families, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(value(&s, "tweed_dataplane_up", &[]), Some(0.0));
    assert_eq!(value(&s, "tweed_dataplane_restarts_total", &[]), Some(2.0));
    for family in &families {
        let dataplane = [
            "tweed_worker_",
            "tweed_port_",
            "tweed_drops",
            "tweed_actions",
            "tweed_conntrack",
        ];
        assert!(
            !dataplane.iter().any(|p| family.starts_with(p)),
            "{family}\n{text}"
        );
    }
    assert!(families.iter().any(|f| f == "tweed_peer_up"));
}

#[test]
fn an_empty_node_is_still_well_formed() {
    let empty = MetricsSnapshot {
        node: "n".into(),
        dataplane: Some(StatsReply {
            workers: Vec::new(),
            ports: Vec::new(),
            drops: BTreeMap::new(),
            actions: ActionStats::default(),
            conntrack: ConntrackStats::default(),
            policy_drops: vec![],
            io: None,
        }),
        dataplane_restarts: 0,
        store: StoreHealth::default(),
        peers: Vec::new(),
        ipam: Vec::new(),
        datasource: Vec::new(),
    };
    let text = render(empty);
    let (_, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(value(&s, "tweed_peers", &[]), Some(0.0));
}

#[test]
fn a_failing_store_shows_down_with_its_error_count() {
    let mut failing = snapshot(Some(stats()));
    failing.store = StoreHealth {
        failing: true,
        error: Some("put failed".into()),
        failures: 4,
    };
    let text = render(failing);
    let (_, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(value(&s, "tweed_store_up", &[]), Some(0.0));
    assert_eq!(value(&s, "tweed_store_errors_total", &[]), Some(4.0));
}

#[test]
fn the_kubernetes_datasource_shows_per_resource() {
    use crate::api::node::ResourceStatus;
    let mut kube = snapshot(Some(stats()));
    kube.datasource = vec![
        ResourceStatus {
            resource: "pods".into(),
            synced: true,
            served: true,
            objects: 12,
            error: Some("connection refused".into()),
            rejected: Vec::new(),
        },
        ResourceStatus {
            resource: "networkpolicies".into(),
            synced: true,
            served: true,
            objects: 3,
            error: None,
            rejected: vec!["prod/bad: port 70000".into()],
        },
    ];
    let text = render(kube);
    let (_, s) = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value(&s, "tweed_datasource_current", &[("resource", "pods")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "tweed_datasource_current",
            &[("resource", "networkpolicies")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "tweed_datasource_objects", &[("resource", "pods")]),
        Some(12.0)
    );
    assert_eq!(
        value(
            &s,
            "tweed_datasource_refused",
            &[("resource", "networkpolicies")]
        ),
        Some(1.0)
    );
}

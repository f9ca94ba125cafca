//! Canned requests and replies: examples for the API's own tests, the CLI's
//! renderer tests and the integration tests' fake daemon. Pure constructors.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dataplane::proto::{RouteTarget, VerdictSpec};
use crate::dataplane::report::{ActionStats, ConntrackStats, PortStats, WorkerStats};

use super::node::{
    DataplaneStatus, NodeInfo, NodeKind, PeerAdd, PeerStatus, StatusReply, StoreStatus,
};
use super::pod::{GcArgs, PodAdd, PodDel, PodInfo};
use super::proto::{
    Backend, Empty, MacAddr, NameArgs, Protocol, Request, RouteInfo, StatsReply, TraceFrom,
    TraceReply, TraceRequest, TraceStage,
};

fn net(s: &str) -> ipnet::IpNet {
    s.parse()
        .unwrap_or_else(|_| unreachable!("fixture CIDR {s}"))
}

/// This node: `node1`, 10.244.1.0/24 and fd00:1::/64, underlay 192.168.0.1.
pub fn this_node() -> NodeInfo {
    NodeInfo {
        name: "node1".into(),
        subnets: vec![net("10.244.1.0/24"), net("fd00:1::/64")],
        underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
        vtep_mac: MacAddr([2, 0, 0, 0, 1, 1]),
        backend: Backend::Vxlan,
        kind: NodeKind::This,
        node_addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1))],
    }
}

/// Another node of the cluster: `node2`, 10.244.2.0/24, underlay 192.168.0.2.
pub fn other_node() -> NodeInfo {
    NodeInfo {
        name: "node2".into(),
        subnets: vec![net("10.244.2.0/24")],
        underlay_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2)),
        vtep_mac: MacAddr([2, 0, 0, 0, 2, 1]),
        backend: Backend::Vxlan,
        kind: NodeKind::Node,
        node_addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2))],
    }
}

/// A static peer: `edge`, 10.250.0.0/16 over UDP, underlay 203.0.113.7.
pub fn static_peer() -> NodeInfo {
    NodeInfo {
        name: "edge".into(),
        subnets: vec![net("10.250.0.0/16")],
        underlay_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        vtep_mac: MacAddr([2, 0, 0, 0, 9, 9]),
        backend: Backend::Udp,
        kind: NodeKind::Static,
        node_addrs: vec![],
    }
}

/// A status with the dataplane up, one reachable node and one unreachable static peer.
pub fn status() -> StatusReply {
    StatusReply {
        native_services: false,
        node: this_node(),
        store: "embedded /var/lib/tweed/state.redb".into(),
        store_health: StoreStatus {
            up: true,
            error: None,
            failures: 0,
        },
        dataplane: DataplaneStatus {
            up: true,
            pid: Some(4242),
            restarts: 1,
            socket: "/run/tweed/dataplane.sock".into(),
            ports: 2,
            error: None,
            io: Some("io_uring".into()),
        },
        peers: vec![
            PeerStatus {
                node: other_node(),
                reachable: Some(true),
                rtt_ms: Some(0.42),
                last_error: None,
            },
            PeerStatus {
                node: static_peer(),
                reachable: Some(false),
                rtt_ms: None,
                last_error: Some("no answer within 1s".into()),
            },
        ],
        datasource: None,
    }
}

/// Pod `default/web` on node1 with both address families.
pub fn pod() -> PodInfo {
    PodInfo {
        container_id: "3f2a9c0d1e2b3c4d5e6f".into(),
        ifname: "eth0".into(),
        namespace: "default".into(),
        name: "web".into(),
        netns: "/var/run/netns/cni-1234".into(),
        ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
        ipv6: Some(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 2)),
        mac: MacAddr([2, 0, 0x0a, 0xf4, 1, 2]),
        mtu: 1450,
        gateway_v4: Some(Ipv4Addr::new(169, 254, 1, 1)),
        gateway_v6: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
        node: "node1".into(),
    }
}

/// The routes of node1 with one pod and one peer.
pub fn routes() -> Vec<RouteInfo> {
    vec![
        RouteInfo {
            prefix: net("10.244.1.2/32"),
            next_hop: RouteTarget::Port("default/web".into()),
        },
        RouteInfo {
            prefix: net("10.244.2.0/24"),
            next_hop: RouteTarget::Peer("node2".into()),
        },
        RouteInfo {
            prefix: net("0.0.0.0/0"),
            next_hop: RouteTarget::Host,
        },
    ]
}

/// Counters with two workers, one port and two non-zero drop reasons.
pub fn stats() -> StatsReply {
    let mut drops = BTreeMap::from([
        ("spoofed_ip".to_owned(), 3),
        ("no_route".to_owned(), 0),
        ("policy_ingress".to_owned(), 17),
    ]);
    drops.insert("ttl_exceeded".into(), 0);
    StatsReply {
        workers: (0..2)
            .map(|id| WorkerStats {
                id,
                rx: 100 + u64::from(id),
                tx: 90,
                underlay_rx: 10,
                underlay_tx: 20,
                io_errors: 0,
            })
            .collect(),
        ports: vec![PortStats {
            name: "default/web".into(),
            rx_packets: 5,
            rx_bytes: 500,
            tx_packets: 6,
            tx_bytes: 600,
        }],
        drops,
        actions: ActionStats {
            delivered: 7,
            to_host: 8,
            encapsulated: 9,
            replied: 10,
        },
        conntrack: ConntrackStats {
            entries: 4,
            capacity: 65536,
            evictions: 0,
            busy: 0,
        },
        policy_drops: vec![],
        io: None,
    }
}

/// A trace of a TCP packet from `default/web` to a pod on node2.
pub fn trace() -> TraceReply {
    TraceReply {
        stages: vec![
            TraceStage::Parsed {
                summary: "tcp 10.244.1.2:40000 -> 10.244.2.3:80".into(),
            },
            TraceStage::SpoofCheck { passed: true },
            TraceStage::Conntrack { hit: None },
            TraceStage::EgressPolicy {
                verdict: VerdictSpec::Allow,
                rule: Some(7),
                logged: vec![],
            },
            TraceStage::Route {
                prefix: Some(net("10.244.2.0/24")),
                next_hop: Some(RouteTarget::Peer("node2".into())),
            },
            TraceStage::Action {
                action: "encap peer node2 192.168.0.2:4789".into(),
            },
        ],
        verdict: "encapsulated to peer node2".into(),
    }
}

/// One valid request of every op.
pub fn requests() -> Vec<Request> {
    let pod = pod();
    vec![
        Request::Status(Empty {}),
        Request::PodAdd(PodAdd {
            container_id: pod.container_id.clone(),
            netns: pod.netns.clone(),
            ifname: pod.ifname.clone(),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            labels: pod.labels.clone(),
            mtu: Some(1400),
            ips: Vec::new(),
            mac: None,
            netns_fd: None,
        }),
        Request::PodDel(PodDel {
            container_id: pod.container_id.clone(),
            ifname: None,
        }),
        Request::PodGet(pod.key()),
        Request::PodList(Empty {}),
        Request::Gc(GcArgs {
            valid: vec![pod.key()],
        }),
        Request::NodeList(Empty {}),
        Request::RouteList(Empty {}),
        Request::PeerAdd(PeerAdd {
            name: "edge".into(),
            subnets: vec![net("10.250.0.0/16")],
            underlay_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            vtep_mac: MacAddr([2, 0, 0, 0, 9, 9]),
            backend: Backend::Udp,
        }),
        Request::PeerRemove(NameArgs {
            name: "edge".into(),
        }),
        Request::PeerList(Empty {}),
        Request::Stats(Empty {}),
        Request::Trace(TraceRequest {
            from: TraceFrom::Port("default/web".into()),
            src: IpAddr::V4(Ipv4Addr::new(10, 244, 1, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 244, 2, 3)),
            protocol: Protocol::Name("tcp".into()),
            src_port: 40000,
            dst_port: 80,
        }),
    ]
}

/// A fresh directory under the system's temp dir, removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: std::path::PathBuf,
}

impl TempDir {
    /// Creates `tweed-<tag>-<pid>-<n>`, unique within this process.
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tweed-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

//! What the fuzz targets share: one node's tables (two pods, three peers,
//! routes), built once per process.
//!
//! The node: pods `fuzz/pod-0` (10.244.1.2, fd00::2) on port 0 and
//! `fuzz/pod-1` (10.244.1.3, fd00::3) on port 1 with a small policy; peers
//! `vx` (VXLAN from 192.168.0.2, source ports [`VX_SOURCE_PORTS`], pods
//! 10.244.2.0/24 and fd00:2::/64), `udp` (flannel UDP from 192.168.0.3, pods
//! 10.244.3.0/24 and fd00:3::/64) and `kvx` (a kernel `vxlan` device at
//! 192.168.0.4 that sends from any port, pods 10.244.4.0/24 and
//! fd00:4::/64); the default routes go to the host; 10.244.9.0/24 is a
//! blackhole. This node's underlay address is 192.168.0.1.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use tweed_dataplane::table::acl::{
    Classifier, PortRange as Ports, Rule, RuleAction, RuleSet, Verdict,
};
use tweed_dataplane::table::conntrack::{Conntrack, ConntrackConfig};
use tweed_dataplane::table::endpoints::Endpoint;
use tweed_dataplane::table::nexthop::{NextHop, PortId};
use tweed_dataplane::table::peers::{Backend, Peer, PortRange};
use tweed_dataplane::table::tables::{NodeConfig, Tables, TablesWriter};

/// The VXLAN source ports peer `vx` publishes.
pub const VX_SOURCE_PORTS: PortRange = PortRange {
    first: 49152,
    last: 49215,
};

/// This node's VTEP MAC: the inner destination of VXLAN frames it accepts.
pub const VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// The node's tables and its conntrack.
#[derive(Debug)]
pub struct World {
    /// The published tables.
    pub tables: Arc<Tables>,
    /// Flows and fragments seen so far (shared by every input of a run).
    pub conntrack: Conntrack,
}

fn net(s: &str) -> IpNet {
    s.parse().expect("valid CIDR")
}

/// The node, built on first use.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build)
}

fn build() -> World {
    let mut writer = TablesWriter::new(NodeConfig {
        vtep_mac: VTEP_MAC,
        host_mac: [2, 0, 0, 0, 0, 2],
        underlay_ip: Some(IpAddr::from([192, 168, 0, 1])),
        service_cidrs: vec![net("10.96.0.0/12")],
        ..NodeConfig::default()
    });
    let policy = Classifier::compile(&RuleSet {
        rules: vec![
            Rule {
                protocol: Some(6),
                ports: Some(Ports {
                    first: 1,
                    last: 1024,
                }),
                ..Rule::any(1, 0, RuleAction::Log)
            },
            Rule {
                remote: vec![net("10.244.2.0/24")],
                ..Rule::any(2, 0, RuleAction::Pass)
            },
            Rule {
                protocol: Some(17),
                ..Rule::any(3, 1, RuleAction::Deny)
            },
        ],
        default: Verdict::Allow,
    })
    .expect("policy compiles");
    let policy = Arc::new(policy);
    for (i, (v4, v6)) in [("10.244.1.2", "fd00::2"), ("10.244.1.3", "fd00::3")]
        .iter()
        .enumerate()
    {
        writer
            .upsert_endpoint(Endpoint {
                port: PortId(i as u32),
                name: format!("fuzz/pod-{i}"),
                mac: [2, 0, 0, 0, 1, i as u8],
                ipv4: Some(v4.parse::<Ipv4Addr>().expect("v4")),
                ipv6: Some(v6.parse::<Ipv6Addr>().expect("v6")),
                identity: i as u32,
                ingress: policy.clone(),
                egress: policy.clone(),
                rule_names: Arc::new(HashMap::new()),
            })
            .expect("endpoint");
    }
    for (name, n, backend, source_ports) in [
        ("vx", 2, Backend::Vxlan, Some(VX_SOURCE_PORTS)),
        ("udp", 3, Backend::Udp, None),
        ("kvx", 4, Backend::Vxlan, None),
    ] {
        writer
            .upsert_peer(Peer {
                name: name.into(),
                subnets: vec![net(&format!("10.244.{n}.0/24")), net(&format!("fd00:{n}::/64"))],
                underlay_ip: IpAddr::from([192, 168, 0, n]),
                vtep_mac: [2, 0, 0, 0, 2, n],
                backend,
                source_ports,
            })
            .expect("peer");
    }
    writer
        .set_route(net("0.0.0.0/0"), NextHop::Host)
        .expect("route");
    writer.set_route(net("::/0"), NextHop::Host).expect("route");
    writer
        .set_route(net("10.244.9.0/24"), NextHop::Blackhole)
        .expect("route");
    World {
        tables: writer.publish(),
        conntrack: Conntrack::new(ConntrackConfig::new(256, [1, 2, 3, 4])),
    }
}

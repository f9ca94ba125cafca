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
//! blackhole; 10.244.1.1 is the node's own overlay address. This node's
//! underlay address is 192.168.0.1.

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

/// Whether `TWEED_FUZZ_VERBOSE` is set: targets then print what they
/// decide, to check that seeds reach what they are meant to.
pub fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("TWEED_FUZZ_VERBOSE").is_some())
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
                subnets: vec![
                    net(&format!("10.244.{n}.0/24")),
                    net(&format!("fd00:{n}::/64")),
                ],
                underlay_ip: IpAddr::from([192, 168, 0, n]),
                vtep_mac: [2, 0, 0, 0, 2, n],
                backend,
                source_ports,
                // The tweed peer takes partial checksums, so fuzzed input
                // reaches that path too; the others are completed.
                partial_checksums: source_ports.is_some(),
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
    writer
        .set_route(net("10.244.1.1/32"), NextHop::Node)
        .expect("route");
    World {
        tables: writer.publish(),
        conntrack: Conntrack::new(ConntrackConfig::new(256, [1, 2, 3, 4])),
    }
}

/// Splits `data` into request lines as the API servers do (`line::feed`,
/// lines of at most `max` bytes; a longer one ends the stream, as the
/// servers close the connection) and calls `each` with every line.
pub fn lines(mut data: &[u8], max: usize, mut each: impl FnMut(&[u8])) {
    use tweed_api::line::{self, Line};
    let mut buf = Vec::new();
    loop {
        // The servers' buffered readers hand over what they have; feed
        // the stream in pieces of a few sizes so lines span reads.
        let piece = data.len().min(1 + buf.len() % 7 * 13);
        let (used, end) = line::feed(&mut buf, &data[..piece], max);
        data = &data[used..];
        match end {
            None => continue,
            Some(Line::Complete) => {
                each(&buf);
                buf.clear();
            }
            Some(Line::Eof | Line::TooLong) => return,
        }
    }
}

/// Addresses to classify a rule set at: each rule's remote and except
/// prefixes' first and last addresses and their neighbours, plus a few
/// fixed ones.
pub fn probe_addresses(set: &tweed_dataplane::table::acl::RuleSet) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = vec![
        IpAddr::from([10, 244, 1, 2]),
        IpAddr::from([0, 0, 0, 0]),
        IpAddr::from([255, 255, 255, 255]),
        "fd00::2".parse().expect("v6"),
        "::".parse().expect("v6"),
    ];
    for rule in &set.rules {
        for net in rule.remote.iter().chain(&rule.remote_except) {
            let (first, last) = (net.network(), net.broadcast());
            out.extend([first, last]);
            out.extend(step(first, -1));
            out.extend(step(last, 1));
        }
        if out.len() > 24 {
            break;
        }
    }
    out
}

fn step(ip: IpAddr, by: i8) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add_signed(i32::from(by))
            .map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        IpAddr::V6(a) => u128::from(a)
            .checked_add_signed(i128::from(by))
            .map(|n| IpAddr::V6(Ipv6Addr::from(n))),
    }
}

/// Compiles `set` and checks that the classifier agrees with the reference
/// walk ([`classify_linear`]) at every probe; the compile error, if any.
///
/// [`classify_linear`]: tweed_dataplane::table::acl::classify_linear
pub fn check_classifier(
    set: &tweed_dataplane::table::acl::RuleSet,
) -> Result<(), tweed_dataplane::table::acl::CompileError> {
    use tweed_dataplane::table::acl::classify_linear;
    let classifier = Classifier::compile(set)?;
    let mut ports = vec![0u16, 1, 80, 65535];
    let mut protocols = vec![1u8, 6, 17, 58, 132, 255];
    for rule in set.rules.iter().take(16) {
        if let Some(p) = rule.protocol {
            protocols.push(p);
        }
        if let Some(r) = rule.ports {
            ports.extend([
                r.first,
                r.last,
                r.first.wrapping_sub(1),
                r.last.wrapping_add(1),
            ]);
        }
    }
    // Bounded, so a large rule set costs a few thousand walks, not millions.
    protocols.sort_unstable();
    protocols.dedup();
    protocols.truncate(8);
    ports.sort_unstable();
    ports.dedup();
    ports.truncate(12);
    for remote in probe_addresses(set).into_iter().take(24) {
        for &protocol in &protocols {
            for &port in &ports {
                let fast = classifier.classify(remote, protocol, port);
                let slow = classify_linear(set, remote, protocol, port);
                assert_eq!(
                    fast, &slow,
                    "classifier and reference disagree at {remote} proto {protocol} port {port}"
                );
            }
        }
    }
    Ok(())
}

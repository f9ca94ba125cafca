//! Arbitrary bytes through the whole forwarding decision, as pod frames, host
//! frames and underlay packets (VXLAN and flannel UDP), then through the
//! splitting a worker does for oversized frames. Nothing may panic.
//!
//! The first input byte picks where the bytes come from; the rest is the frame.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use tweed_dataplane::frame::Frame;
use tweed_dataplane::offload::{fragment, gso};
use tweed_dataplane::pipeline::{Action, Counters, Ingress, Pipeline, Split};
use tweed_dataplane::table::acl::{Classifier, PortRange, Rule, RuleAction, RuleSet, Verdict};
use tweed_dataplane::table::conntrack::{Conntrack, ConntrackConfig};
use tweed_dataplane::table::endpoints::Endpoint;
use tweed_dataplane::table::nexthop::{NextHop, PortId};
use tweed_dataplane::table::peers::{Backend, Peer};
use tweed_dataplane::table::tables::{NodeConfig, Tables, TablesWriter};

struct World {
    tables: Arc<Tables>,
    conntrack: Conntrack,
}

fn net(s: &str) -> IpNet {
    s.parse().expect("valid CIDR")
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut writer = TablesWriter::new(NodeConfig { vtep_mac: [2, 0, 0, 0, 0, 1], host_mac: [2, 0, 0, 0, 0, 2], ..NodeConfig::default() });
        let policy = Classifier::compile(&RuleSet {
            rules: vec![
                Rule { protocol: Some(6), ports: Some(PortRange { first: 1, last: 1024 }), ..Rule::any(1, 0, RuleAction::Log) },
                Rule { remote: vec![net("10.244.2.0/24")], ..Rule::any(2, 0, RuleAction::Pass) },
                Rule { protocol: Some(17), ..Rule::any(3, 1, RuleAction::Deny) },
            ],
            default: Verdict::Allow,
        })
        .expect("policy compiles");
        let policy = Arc::new(policy);
        for (i, (v4, v6)) in [("10.244.1.2", "fd00::2"), ("10.244.1.3", "fd00::3")].iter().enumerate() {
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
                })
                .expect("endpoint");
        }
        for (name, subnet, ip, backend) in [
            ("vx", "10.244.2.0/24", [192, 168, 0, 2], Backend::Vxlan),
            ("udp", "10.244.3.0/24", [192, 168, 0, 3], Backend::Udp),
        ] {
            writer
                .upsert_peer(Peer {
                    name: name.into(),
                    subnets: vec![net(subnet), net(if backend == Backend::Vxlan { "fd00:2::/64" } else { "fd00:3::/64" })],
                    underlay_ip: IpAddr::from(ip),
                    vtep_mac: [2, 0, 0, 0, 2, ip[3]],
                    backend,
                })
                .expect("peer");
        }
        writer.set_route(net("0.0.0.0/0"), NextHop::Host).expect("route");
        writer.set_route(net("::/0"), NextHop::Host).expect("route");
        writer.set_route(net("10.244.9.0/24"), NextHop::Blackhole).expect("route");
        World { tables: writer.publish(), conntrack: Conntrack::new(ConntrackConfig::new(256, [1, 2, 3, 4])) }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let world = world();
    let ingress = match selector % 5 {
        0 => Ingress::Port(PortId(0)),
        1 => Ingress::Host,
        2 => Ingress::Underlay { backend: Backend::Vxlan, src: SocketAddr::from(([192, 168, 0, 2], 4789)) },
        3 => Ingress::Underlay { backend: Backend::Udp, src: SocketAddr::from(([192, 168, 0, 3], 8285)) },
        _ => Ingress::Port(PortId(7)),
    };
    let mut frame = Frame::from_bytes(bytes);
    let mut counters = Counters::default();
    let now = u64::from(selector) * 1000;
    let action = Pipeline::new(&world.tables, &world.conntrack, now).process(ingress, &mut frame, &mut counters);
    if let Action::EncapSplit(_, split) = action {
        let mut scratch = Vec::new();
        let eth = frame.data().get(10..).unwrap_or(&[]);
        match split {
            Split::Segment(hdr) => {
                let _ = gso::segment_tcp(eth, &hdr, &mut scratch, |segment| assert!(!segment.is_empty()));
            }
            Split::Fragment(mtu) => {
                let ip = eth.get(14..).unwrap_or(&[]);
                let _ = fragment::fragment_ipv4(ip, mtu, &mut scratch, |part| assert!(part.len() <= usize::from(mtu)));
            }
        }
    }
});

//! Tests of the forwarding decision. Every input frame is built by etherparse
//! (or is an etherparse-built frame with one field made to lie); every output
//! is checked by parsing it with etherparse.

mod fragments;
mod gateway;
mod kube_proxy;
mod local;
mod malformed;
mod node;
mod output;
mod overlay;
mod policy;
mod reasons;
mod services;
mod services_external;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use etherparse::{PacketBuilder, SlicedPacket};
use ipnet::IpNet;

use super::{Action, Counters, Ingress, Pipeline};
use crate::frame::Frame;
use crate::table::acl::{Classifier, RuleSet, Verdict};
use crate::table::conntrack::{Conntrack, ConntrackConfig};
use crate::table::endpoints::{Endpoint, Mac};
use crate::table::nexthop::{NextHop, PortId};
use crate::table::peers::{Backend, Peer, PortRange};
use crate::table::tables::{NodeConfig, Tables, TablesWriter};

pub const GW_MAC: Mac = [0xee, 0xee, 0xee, 0xee, 0xee, 0x01];
pub const VTEP_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
pub const HOST_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe];
pub const MAC_A: Mac = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: Mac = [0x02, 0, 0, 0, 0, 0x0b];
pub const PEER2_VTEP: Mac = [0x02, 0x00, 0x00, 0x00, 0x02, 0x02];
pub const PEER3_VTEP: Mac = [0x02, 0x00, 0x00, 0x00, 0x03, 0x03];

pub const POD_A: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
pub const POD_B: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 3);
pub const POD_A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 2);
pub const POD_B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 1, 0, 0, 0, 3);
/// A pod behind peer node2 (VXLAN).
pub const REMOTE_VX: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 5);
pub const REMOTE_VX6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x244, 2, 0, 0, 0, 5);
/// A pod behind peer node3 (flannel UDP).
pub const REMOTE_UDP: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 7);
/// This node's own underlay address.
pub const NODE1: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
pub const NODE2: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
/// The ports node2's dataplane sends VXLAN from.
pub const NODE2_SOURCE_PORTS: PortRange = PortRange {
    first: 61000,
    last: 61007,
};
pub const NODE3: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
pub const BLACKHOLED: Ipv4Addr = Ipv4Addr::new(10, 244, 9, 9);

pub const PORT_A: PortId = PortId(0);
/// The time the fixture's pipeline runs at, unless a test says otherwise.
pub const NOW_MS: u64 = 1_000;
pub const PORT_B: PortId = PortId(1);
pub const MTU: u16 = 1450;

/// Two pods on this node, two peers (VXLAN and UDP), a default route to the
/// host and a blackhole.
pub struct Fixture {
    pub writer: TablesWriter,
    pub tables: Arc<Tables>,
    pub conntrack: Conntrack,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_default_route(true)
    }

    pub fn with_default_route(default_route: bool) -> Self {
        let mut writer = TablesWriter::new(NodeConfig {
            gateway_mac: GW_MAC,
            vtep_mac: VTEP_MAC,
            host_mac: HOST_MAC,
            vni: 1,
            vxlan_port: 4789,
            udp_port: 8285,
            overlay_mtu: MTU,
            underlay_ip: Some(IpAddr::V4(NODE1)),
            service_cidrs: Vec::new(),
        });
        writer
            .upsert_endpoint(endpoint(PORT_A, MAC_A, POD_A, POD_A6))
            .unwrap();
        writer
            .upsert_endpoint(endpoint(PORT_B, MAC_B, POD_B, POD_B6))
            .unwrap();
        writer
            .upsert_peer(Peer {
                name: "node2".into(),
                subnets: vec![net("10.244.2.0/24"), net("fd00:10:244:2::/64")],
                underlay_ip: IpAddr::V4(NODE2),
                vtep_mac: PEER2_VTEP,
                backend: Backend::Vxlan,
                source_ports: Some(NODE2_SOURCE_PORTS),
                partial_checksums: false,
            })
            .unwrap();
        writer
            .upsert_peer(Peer {
                name: "node3".into(),
                subnets: vec![net("10.244.3.0/24")],
                underlay_ip: IpAddr::V4(NODE3),
                vtep_mac: PEER3_VTEP,
                backend: Backend::Udp,
                source_ports: None,
                partial_checksums: false,
            })
            .unwrap();
        if default_route {
            writer.set_route(net("0.0.0.0/0"), NextHop::Host).unwrap();
            writer.set_route(net("::/0"), NextHop::Host).unwrap();
        }
        writer
            .set_route(net("10.244.9.0/24"), NextHop::Blackhole)
            .unwrap();
        let tables = writer.publish();
        let conntrack = Conntrack::new(ConntrackConfig::new(1024, [1, 2, 3, 4]));
        Self {
            writer,
            tables,
            conntrack,
        }
    }

    /// Compiles and installs policy for the pod on `port`.
    pub fn set_policy(&mut self, port: PortId, ingress: &RuleSet, egress: &RuleSet) {
        let mut ep = (*self
            .writer
            .endpoints()
            .get(port)
            .cloned()
            .map(Arc::new)
            .unwrap())
        .clone();
        ep.ingress = Arc::new(Classifier::compile(ingress).unwrap());
        ep.egress = Arc::new(Classifier::compile(egress).unwrap());
        self.writer.upsert_endpoint(ep).unwrap();
        self.tables = self.writer.publish();
    }

    pub fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(&self.tables, &self.conntrack, NOW_MS)
    }

    /// Runs one frame and returns the action, the frame after and the counters.
    pub fn run(&self, ingress: Ingress, bytes: &[u8]) -> (Action, Frame, Counters) {
        self.run_at(NOW_MS, ingress, bytes)
    }

    /// [`Fixture::run`] at another time (milliseconds).
    pub fn run_at(&self, now_ms: u64, ingress: Ingress, bytes: &[u8]) -> (Action, Frame, Counters) {
        let mut frame = Frame::from_bytes(bytes);
        let mut counters = Counters::default();
        let action = Pipeline::new(&self.tables, &self.conntrack, now_ms).process(
            ingress,
            &mut frame,
            &mut counters,
        );
        (action, frame, counters)
    }
}

/// A rule set without rules that allows everything.
pub fn allow_all() -> RuleSet {
    RuleSet {
        rules: vec![],
        default: Verdict::Allow,
    }
}

/// A rule set without rules that denies everything.
pub fn deny_all() -> RuleSet {
    RuleSet {
        rules: vec![],
        default: Verdict::Deny,
    }
}

pub fn endpoint(port: PortId, mac: Mac, v4: Ipv4Addr, v6: Ipv6Addr) -> Endpoint {
    Endpoint {
        port,
        name: format!("default/pod-{}", port.0),
        mac,
        ipv4: Some(v4),
        ipv6: Some(v6),
        identity: port.0 + 100,
        ingress: Arc::new(Classifier::allow_all()),
        egress: Arc::new(Classifier::allow_all()),
        rule_names: Default::default(),
    }
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A datagram from a peer's dataplane: VXLAN from one of node2's source
/// ports, flannel UDP from the UDP port.
pub fn from_underlay(backend: Backend, ip: Ipv4Addr) -> Ingress {
    let port = if backend == Backend::Vxlan {
        NODE2_SOURCE_PORTS.first + 3
    } else {
        8285
    };
    Ingress::Underlay {
        backend,
        src: SocketAddr::new(IpAddr::V4(ip), port),
    }
}

/// A VXLAN payload (VNI 1) from node2: the SYN-ACK of its pod REMOTE_VX
/// from `sport` to pod A's `dport`.
pub fn syn_ack_from_remote_vx(sport: u16, dport: u16) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(REMOTE_VX.octets(), POD_A.octets(), 63)
        .tcp(sport, dport, 5000, 64000)
        .syn()
        .ack(1)
        .write(&mut out, b"")
        .unwrap();
    out
}

/// Prefixes an Ethernet frame with an empty virtio-net header, as a tap reads it.
pub fn tap(eth: Vec<u8>) -> Vec<u8> {
    let mut bytes = vec![0; 10];
    bytes.extend_from_slice(&eth);
    bytes
}

pub fn tcp4(src_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(40000, dport, 1000, 64000)
        .syn()
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn tcp6(src_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .tcp(40000, dport, 1000, 64000)
        .syn()
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn udp4(src_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv4(src.octets(), dst.octets(), ttl)
        .udp(5353, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// The answer to [`udp4`]'s datagram: from port 53 back to 5353.
pub fn udp_reply(src_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(53, 5353)
        .write(&mut out, b"answer")
        .unwrap();
    out
}

/// A bare IPv4/UDP packet (no Ethernet), as flannel's UDP backend carries it.
pub fn bare_udp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 63)
        .udp(5353, 53)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// An IPv4/TCP frame with DF set or clear (etherparse sets DF by default).
pub fn tcp4_df(
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
    dont_fragment: bool,
) -> Vec<u8> {
    let mut header =
        etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, src.octets(), dst.octets())
            .unwrap();
    header.dont_fragment = dont_fragment;
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ip(etherparse::IpHeaders::Ipv4(header, Default::default()))
        .tcp(40000, 80, 1, 64000)
        .ack(1)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// The Ethernet frame of a tap frame (after the 10-byte virtio-net header).
pub fn eth_of(frame: &Frame) -> &[u8] {
    &frame.data()[10..]
}

/// Parses an Ethernet frame with etherparse, failing the test if it does not.
pub fn sliced(eth: &[u8]) -> SlicedPacket<'_> {
    SlicedPacket::from_ethernet(eth).expect("etherparse parses the output")
}

/// Asserts the IPv4 header checksum of an Ethernet frame is valid.
pub fn assert_ipv4_checksum(eth: &[u8]) {
    let header = etherparse::Ipv4HeaderSlice::from_slice(&eth[14..]).unwrap();
    assert_eq!(
        header.to_header().calc_header_checksum(),
        header.header_checksum(),
        "IPv4 header checksum"
    );
}

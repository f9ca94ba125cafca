//! Synthetic packets for `trace`: the frame a pod, the host or a peer would
//! send for a 5-tuple, built with etherparse and run through the live
//! pipeline as a dry run.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use crate::frame::Frame;
use crate::pipeline::trace::{Recorder, Stage};
use crate::pipeline::{Action, Counters, Ingress, Pipeline};
use crate::table::conntrack::Conntrack;
use crate::table::nexthop::{PeerId, PortId};
use crate::table::peers::Backend;
use crate::table::tables::Tables;
use crate::wire::{virtio_net, vxlan};

/// Where the synthetic packet enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFrom {
    /// From a pod's port.
    Port(PortId),
    /// From the host port.
    Host,
    /// From a peer, through the overlay.
    Peer(PeerId),
}

/// The synthetic packet's flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFlow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol (6 TCP, 17 UDP, 1/58 ICMP echo).
    pub protocol: u8,
    /// Source port (ICMP: the echo identifier).
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// Why a trace could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Source and destination are of different families.
    #[error("source {0} and destination {1} are not of the same IP family")]
    MixedFamilies(IpAddr, IpAddr),
    /// The protocol cannot be synthesized.
    #[error("protocol {0} cannot be traced: use tcp, udp or icmp")]
    Protocol(u8),
    /// The entry point does not exist.
    #[error("{0}")]
    NoSuchSource(String),
}

/// Runs the flow through the pipeline from `from` without sending anything or
/// creating flows; returns every stage and the action.
pub fn run(
    tables: &Tables,
    conntrack: &Conntrack,
    now_ms: u64,
    from: TraceFrom,
    flow: TraceFlow,
) -> Result<(Vec<Stage>, Action), TraceError> {
    let (ingress, mut frame) = synthesize(tables, from, flow)?;
    let mut recorder = Recorder::default();
    let action = Pipeline::new(tables, conntrack, now_ms).process_traced(
        ingress,
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    Ok((recorder.stages, action))
}

fn synthesize(
    tables: &Tables,
    from: TraceFrom,
    flow: TraceFlow,
) -> Result<(Ingress, Frame), TraceError> {
    let node = &tables.node;
    let (src_mac, dst_mac) = match from {
        TraceFrom::Port(port) => {
            let endpoint = tables
                .endpoints
                .get(port)
                .ok_or_else(|| TraceError::NoSuchSource(format!("no port {}", port.0)))?;
            (endpoint.mac, node.gateway_mac)
        }
        TraceFrom::Host => (node.host_mac, node.gateway_mac),
        TraceFrom::Peer(id) => {
            let peer = tables
                .peers
                .get(id)
                .ok_or_else(|| TraceError::NoSuchSource(format!("no peer {}", id.0)))?;
            (peer.vtep_mac, node.vtep_mac)
        }
    };
    let eth = build(flow, src_mac, dst_mac)?;
    match from {
        TraceFrom::Port(port) => Ok((Ingress::Port(port), tap_frame(&eth))),
        TraceFrom::Host => Ok((Ingress::Host, tap_frame(&eth))),
        TraceFrom::Peer(id) => {
            let peer = tables
                .peers
                .get(id)
                .ok_or_else(|| TraceError::NoSuchSource(format!("no peer {}", id.0)))?;
            let (payload, port) = match peer.backend {
                Backend::Vxlan => {
                    let mut header = [0; vxlan::HEADER_LEN];
                    vxlan::write_header(&mut header, node.vni, false);
                    let mut payload = header.to_vec();
                    payload.extend_from_slice(&eth);
                    (payload, node.vxlan_port)
                }
                Backend::Udp => (eth[14..].to_vec(), node.udp_port),
            };
            let src = SocketAddr::new(peer.underlay_ip, port);
            Ok((
                Ingress::Underlay {
                    backend: peer.backend,
                    src,
                },
                Frame::from_bytes(&payload),
            ))
        }
    }
}

fn tap_frame(eth: &[u8]) -> Frame {
    let mut bytes = vec![0; virtio_net::LEN];
    bytes.extend_from_slice(eth);
    Frame::from_bytes(&bytes)
}

fn build(flow: TraceFlow, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Result<Vec<u8>, TraceError> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let payload: &[u8] = b"tweed trace";
    let (ip, v6) = match (flow.src, flow.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => (eth.ipv4(src.octets(), dst.octets(), 64), false),
        (IpAddr::V6(src), IpAddr::V6(dst)) => (eth.ipv6(src.octets(), dst.octets(), 64), true),
        (src, dst) => return Err(TraceError::MixedFamilies(src, dst)),
    };
    let mut out = Vec::new();
    let written = match flow.protocol {
        6 => ip
            .tcp(flow.src_port, flow.dst_port, 1, 64_000)
            .syn()
            .write(&mut out, payload)
            .is_ok(),
        17 => ip
            .udp(flow.src_port, flow.dst_port)
            .write(&mut out, payload)
            .is_ok(),
        1 | 58 if v6 => ip
            .icmpv6_echo_request(flow.src_port, 1)
            .write(&mut out, payload)
            .is_ok(),
        1 => ip
            .icmpv4_echo_request(flow.src_port, 1)
            .write(&mut out, payload)
            .is_ok(),
        other => return Err(TraceError::Protocol(other)),
    };
    if written {
        Ok(out)
    } else {
        Err(TraceError::Protocol(flow.protocol))
    }
}

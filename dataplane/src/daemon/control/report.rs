//! The reads: port, peer and route lists, counters, the dump and `trace`.
//! Each holds `inner` for as long as it copies what it needs, and never
//! `writes`, so it answers while a change is in progress.

use std::collections::HashMap;

use super::Control;
use super::state::Inner;
use crate::api::report::drops_by_name;
use crate::api::trace::{route_target, trace_reply};
use crate::daemon::trace::{self, TraceFlow};
use crate::pipeline::counters::DeniedBy;
use crate::table::nexthop::{PeerId, PortId};
use tweed_api::dataplane::proto::{
    ActionStats, ApiError, ConntrackStats, DumpReply, NodeInfo, PortInfo, PortStats, ResponseBody,
    RouteInfo, StatsReply, TraceFrom, TraceRequest, WorkerStats,
};

impl Control {
    pub(super) fn stats(&self) -> Result<ResponseBody, ApiError> {
        let (total, workers) = self.shared.totals();
        let pipeline = &total.pipeline;
        let inner = self.lock()?;
        let ports = inner
            .ports
            .values()
            .map(|p| {
                let c = total.ports.get(&p.info.id).copied().unwrap_or_default();
                PortStats {
                    name: p.info.name.clone(),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                }
            })
            .collect();
        let policy_drops = policy_drops(&inner, &pipeline.denied_by_rule);
        drop(inner);
        let workers = workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerStats {
                id: i as u32,
                rx: w.underlay_rx
                    + w.host.rx_packets
                    + w.ports.values().map(|p| p.rx_packets).sum::<u64>(),
                tx: w.underlay_tx
                    + w.host.tx_packets
                    + w.ports.values().map(|p| p.tx_packets).sum::<u64>(),
                underlay_rx: w.underlay_rx,
                underlay_tx: w.underlay_tx,
                io_errors: w.io_errors,
            })
            .collect();
        let conntrack = &self.shared.conntrack;
        Ok(ResponseBody::Stats(StatsReply {
            workers,
            ports,
            drops: drops_by_name(&pipeline.drops),
            actions: ActionStats {
                delivered: pipeline.delivered,
                to_host: pipeline.to_host,
                encapsulated: pipeline.encapsulated,
                replied: pipeline.replied,
            },
            conntrack: ConntrackStats {
                entries: conntrack.len() as u64,
                capacity: conntrack.capacity() as u64,
                evictions: conntrack.evictions(),
                busy: pipeline.conntrack_busy,
            },
            policy_drops,
            io: Some(self.io.clone()),
        }))
    }

    pub(super) fn dump(&self) -> Result<ResponseBody, ApiError> {
        let tables = self.shared.tables.load();
        let (routes, ports, peers) = {
            let inner = self.lock()?;
            (route_infos(&inner), port_infos(&inner), inner.peer_specs())
        };
        let flows = self
            .shared
            .conntrack
            .entries(self.now_ms())
            .iter()
            .map(Into::into)
            .collect();
        Ok(ResponseBody::Dump(DumpReply {
            node: NodeInfo::from(&tables.node),
            routes,
            ports,
            peers,
            flows,
        }))
    }

    pub(super) fn trace(&self, args: TraceRequest) -> Result<ResponseBody, ApiError> {
        let inner = self.lock()?;
        let from = match &args.from {
            TraceFrom::Port(name) => trace::TraceFrom::Port(inner.port_id(name)?),
            TraceFrom::Host(_) => trace::TraceFrom::Host,
            TraceFrom::Peer(name) => trace::TraceFrom::Peer(
                inner
                    .writer
                    .peers()
                    .id_of(name)
                    .ok_or_else(|| ApiError::not_found(format!("no peer named {name:?}")))?,
            ),
        };
        let protocol = match crate::api::validate::protocol("protocol", &args.protocol)? {
            1 if args.dst.is_ipv6() => 58,
            n => n,
        };
        let flow = TraceFlow {
            src: args.src,
            dst: args.dst,
            protocol,
            src_port: args.src_port,
            dst_port: args.dst_port,
        };
        let tables = self.shared.tables.load();
        let (stages, action) =
            trace::run(&tables, &self.shared.conntrack, self.now_ms(), from, flow)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        let names = names_of(&inner);
        Ok(ResponseBody::Trace(trace_reply(&stages, &action, &names)))
    }
}

/// Policy denials of the ports that exist, named, in port order.
fn policy_drops(
    inner: &Inner,
    denied: &HashMap<DeniedBy, u64>,
) -> Vec<crate::api::report::PolicyDrops> {
    let mut out: Vec<_> = denied
        .iter()
        .filter_map(|(by, &packets)| {
            let state = inner.ports.get(&by.port)?;
            Some(crate::api::report::PolicyDrops {
                port: state.info.name.clone(),
                direction: if by.ingress { "ingress" } else { "egress" }.to_owned(),
                rule: by.rule.map(|r| r.0),
                // The name the rule had when it denied, not whatever rule
                // holds its number now.
                name: by.name.as_deref().map(str::to_owned),
                packets,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.port, &a.direction, a.rule, &a.name).cmp(&(&b.port, &b.direction, b.rule, &b.name))
    });
    out
}

pub(super) fn port_infos(inner: &Inner) -> Vec<PortInfo> {
    inner.ports.values().map(|p| p.info.clone()).collect()
}

fn names_of(inner: &Inner) -> impl crate::api::trace::Names + '_ {
    let ports = move |id: PortId| inner.ports.get(&id).map(|p| p.info.name.clone());
    let peers = move |id: PeerId| inner.writer.peers().get(id).map(|p| p.name.clone());
    (ports, peers)
}

pub(super) fn route_infos(inner: &Inner) -> Vec<RouteInfo> {
    let names = names_of(inner);
    inner
        .writer
        .routes()
        .into_iter()
        .map(|(prefix, hop)| RouteInfo {
            prefix,
            next_hop: route_target(hop, &names),
        })
        .collect()
}

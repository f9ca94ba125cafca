//! The node's metrics as OpenMetrics text (pure): [`render`] turns one
//! [`MetricsSnapshot`] into what a scrape returns, through `prometheus-client`'s
//! text encoder ([`super::families`]).
//!
//! Families come in a fixed order and every family is always announced (HELP and
//! TYPE), even with no samples, so the output only changes where values do. The
//! dataplane's families are left out when it did not answer (`tweed_dataplane_up 0`):
//! a counter that vanishes is read as "unknown", one that drops to zero as a reset.
//! Every drop reason is listed, zeros included, so `rate()` sees a reason's first drop.
//! The node's name is the label of `tweed_node_info`; other series do not repeat it
//! (the scrape target already identifies the node).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use tweed_api::dataplane::report::{StatsReply, WorkerStats};

use super::families::{Families, Kind};
use super::snapshot::MetricsSnapshot;
use crate::health::PeerHealth;

/// The content type of what [`render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The OpenMetrics text of `snapshot` (taken whole: the registry's collector
/// owns what it encodes).
pub fn render(snapshot: MetricsSnapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(snapshot)));
    let mut out = String::new();
    // Writing into a String does not fail, and the families never fail on
    // their own; were it to happen, the error is logged and the scrape gets
    // the text cut short (without `# EOF`, so Prometheus refuses it).
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "metrics: encoding the scrape failed");
    }
    out
}

/// One scrape's snapshot, as a collector the registry encodes.
#[derive(Debug)]
struct Scrape(MetricsSnapshot);

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        write_families(&mut Families::new(encoder), &self.0)
    }
}

/// Every family of `snapshot`, in order.
fn write_families(e: &mut Families<'_>, snapshot: &MetricsSnapshot) -> fmt::Result {
    e.family(
        "tweed_node_info",
        Kind::Gauge,
        "The node this daemon runs on (always 1).",
    )?
    .sample(&[("node", &snapshot.node)], 1u64)?;
    e.family(
        "tweed_dataplane_up",
        Kind::Gauge,
        "Whether the dataplane answered the stats request (1) or not (0).",
    )?
    .sample(&[], u64::from(snapshot.dataplane.is_some()))?;
    e.family(
        "tweed_dataplane_restarts_total",
        Kind::Counter,
        "Times the daemon restarted the dataplane.",
    )?
    .sample(&[], snapshot.dataplane_restarts)?;
    e.family(
        "tweed_store_up",
        Kind::Gauge,
        "Whether the store's last call worked (1) or failed (0); see tweed status for why.",
    )?
    .sample(&[], u64::from(!snapshot.store.failing))?;
    e.family(
        "tweed_store_errors_total",
        Kind::Counter,
        "Store calls that failed (the store unreachable or failing, not a refused request).",
    )?
    .sample(&[], snapshot.store.failures)?;
    if let Some(stats) = &snapshot.dataplane {
        render_workers(e, &stats.workers)?;
        render_dataplane(e, stats)?;
    }
    render_peers(e, &snapshot.peers)?;
    render_ipam(e, snapshot)?;
    render_datasource(e, snapshot)
}

/// The Kubernetes datasource, per resource (no samples in the other modes).
fn render_datasource(e: &mut Families<'_>, snapshot: &MetricsSnapshot) -> fmt::Result {
    let mut f = e.family(
        "tweed_datasource_current",
        Kind::Gauge,
        "Whether a resource watched from the Kubernetes API server is listed and its watch working (1) or stale (0).",
    )?;
    for r in &snapshot.datasource {
        f.sample(
            &[("resource", &r.resource)],
            u64::from(r.synced && r.error.is_none()),
        )?;
    }
    let mut f = e.family(
        "tweed_datasource_objects",
        Kind::Gauge,
        "Objects of a resource the node holds from the Kubernetes API server.",
    )?;
    for r in &snapshot.datasource {
        f.sample(&[("resource", &r.resource)], r.objects)?;
    }
    let mut f = e.family(
        "tweed_datasource_refused",
        Kind::Gauge,
        "Objects tweed refused (a policy that does not validate); tweed status names them.",
    )?;
    for r in &snapshot.datasource {
        f.sample(&[("resource", &r.resource)], r.rejected.len() as u64)?;
    }
    Ok(())
}

/// The per-worker counter families, labelled `worker`.
fn render_workers(e: &mut Families<'_>, workers: &[WorkerStats]) -> fmt::Result {
    type Field = fn(&WorkerStats) -> u64;
    let families: [(&'static str, &str, Field); 5] = [
        (
            "tweed_worker_rx_packets_total",
            "Frames a dataplane worker received (underlay included).",
            |w| w.rx,
        ),
        (
            "tweed_worker_tx_packets_total",
            "Frames a dataplane worker sent (underlay included).",
            |w| w.tx,
        ),
        (
            "tweed_worker_underlay_rx_packets_total",
            "Datagrams a dataplane worker received from the underlay.",
            |w| w.underlay_rx,
        ),
        (
            "tweed_worker_underlay_tx_packets_total",
            "Datagrams a dataplane worker sent to the underlay.",
            |w| w.underlay_tx,
        ),
        (
            "tweed_worker_io_errors_total",
            "Writes and sends of a dataplane worker that failed.",
            |w| w.io_errors,
        ),
    ];
    for (name, help, field) in families {
        let mut family = e.family(name, Kind::Counter, help)?;
        for worker in workers {
            family.sample(&[("worker", &worker.id.to_string())], field(worker))?;
        }
    }
    Ok(())
}

/// Ports, drops, actions and conntrack.
fn render_dataplane(e: &mut Families<'_>, stats: &StatsReply) -> fmt::Result {
    type Field = fn(&tweed_api::dataplane::report::PortStats) -> u64;
    let ports: [(&'static str, &str, Field); 4] = [
        (
            "tweed_port_rx_packets_total",
            "Frames read from a pod's tap.",
            |p| p.rx_packets,
        ),
        (
            "tweed_port_rx_bytes_total",
            "Bytes read from a pod's tap.",
            |p| p.rx_bytes,
        ),
        (
            "tweed_port_tx_packets_total",
            "Frames written to a pod's tap.",
            |p| p.tx_packets,
        ),
        (
            "tweed_port_tx_bytes_total",
            "Bytes written to a pod's tap.",
            |p| p.tx_bytes,
        ),
    ];
    for (name, help, field) in ports {
        let mut family = e.family(name, Kind::Counter, help)?;
        for port in &stats.ports {
            family.sample(&[("port", &port.name)], field(port))?;
        }
    }

    let mut drops = e.family(
        "tweed_drops_total",
        Kind::Counter,
        "Frames the dataplane dropped, by reason.",
    )?;
    for (reason, count) in &stats.drops {
        drops.sample(&[("reason", reason)], *count)?;
    }

    let a = &stats.actions;
    e.family(
        "tweed_actions_total",
        Kind::Counter,
        "Frames by the dataplane's decision.",
    )?
    .sample(&[("action", "delivered")], a.delivered)?
    .sample(&[("action", "to_host")], a.to_host)?
    .sample(&[("action", "encapsulated")], a.encapsulated)?
    .sample(&[("action", "replied")], a.replied)?;

    let ct = &stats.conntrack;
    e.family(
        "tweed_conntrack_entries",
        Kind::Gauge,
        "Live flows in the connection tracking table.",
    )?
    .sample(&[], ct.entries)?;
    e.family(
        "tweed_conntrack_capacity",
        Kind::Gauge,
        "Slots of the connection tracking table.",
    )?
    .sample(&[], ct.capacity)?;
    e.family(
        "tweed_conntrack_evictions_total",
        Kind::Counter,
        "Live flows evicted to make room.",
    )?
    .sample(&[], ct.evictions)?;
    e.family(
        "tweed_conntrack_busy_total",
        Kind::Counter,
        "New flows not recorded because their bucket stayed locked.",
    )?
    .sample(&[], ct.busy)?;
    Ok(())
}

/// Peer counts, reachability and round-trip times, labelled `peer`.
fn render_peers(e: &mut Families<'_>, peers: &[PeerHealth]) -> fmt::Result {
    let up = peers.iter().filter(|p| p.reachable == Some(true)).count();
    e.family("tweed_peers", Kind::Gauge, "Peers this node probes.")?
        .sample(&[], peers.len() as u64)?;
    e.family(
        "tweed_peers_up",
        Kind::Gauge,
        "Peers whose health port answers through the overlay.",
    )?
    .sample(&[], up as u64)?;
    let mut family = e.family(
        "tweed_peer_up",
        Kind::Gauge,
        "Whether a peer answers through the overlay (0 also while not yet probed).",
    )?;
    for peer in peers {
        family.sample(
            &[("peer", &peer.name)],
            u64::from(peer.reachable == Some(true)),
        )?;
    }
    let mut family = e.family(
        "tweed_peer_rtt_seconds",
        Kind::Gauge,
        "Time to connect to a peer's health port through the overlay, last probe.",
    )?;
    for peer in peers {
        if let Some(rtt) = peer.rtt {
            family.sample(&[("peer", &peer.name)], rtt.as_secs_f64())?;
        }
    }
    Ok(())
}

/// Pod subnet address usage, labelled `subnet`.
fn render_ipam(e: &mut Families<'_>, snapshot: &MetricsSnapshot) -> fmt::Result {
    let mut family = e.family(
        "tweed_ipam_addresses_capacity",
        Kind::Gauge,
        "Addresses of a pod subnet that can be handed out.",
    )?;
    for pool in &snapshot.ipam {
        family.sample(&[("subnet", &pool.subnet)], pool.capacity)?;
    }
    let mut family = e.family(
        "tweed_ipam_addresses_used",
        Kind::Gauge,
        "Addresses of a pod subnet handed out.",
    )?;
    for pool in &snapshot.ipam {
        family.sample(&[("subnet", &pool.subnet)], pool.used)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;

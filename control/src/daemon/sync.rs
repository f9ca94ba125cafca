//! Keeping the dataplane and the host equal to the daemon's state.
//!
//! [`resync`] pushes everything (host routes, static routes, peers, ports,
//! policy, native Services and their steering) and is run at start, whenever
//! a new dataplane answers, and periodically to heal drift (then policy only
//! where it differs from what was pushed: a full push costs about a
//! millisecond per port; Services only if their last push failed);
//! [`follow_peers`] reprograms peers and health targets as soon as the
//! cluster view changes. Every step is a diff, so a resync of an unchanged
//! dataplane changes nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tweed_api::dataplane::proto::{RouteSpec, RouteVia};

use super::Daemon;
use crate::dataplane::{DataplaneError, resync};

/// How often a full resync runs without a reason.
pub const PERIOD: Duration = Duration::from_secs(30);

/// Why a resync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The daemon starts, or a new dataplane answers: nothing it holds is
    /// known, so every port's policy is pushed.
    NewDataplane,
    /// The periodic round: the dataplane is the one the daemon last
    /// programmed, so policy is pushed only for what differs from what it
    /// was given (and for ports the round had to create again).
    Periodic,
}

/// Pushes the whole state; failures are logged (the next round retries).
pub async fn resync(daemon: &Daemon, reason: Reason) {
    if let Err(e) = daemon.install_host().await {
        tracing::warn!(error = %e, "resync: host routes");
    }
    if let Err(e) = routes(daemon).await {
        tracing::warn!(error = %e, "resync: dataplane routes");
    }
    if let Err(e) = peers(daemon).await {
        tracing::warn!(error = %e, "resync: peers");
    }
    let created = match daemon.pods.resync_ports().await {
        Ok(created) => created,
        Err(e) => {
            tracing::warn!(error = %e, "resync: pod ports");
            Vec::new()
        }
    };
    match reason {
        Reason::NewDataplane => {
            daemon.enforcer.resync().await;
            if let Some(balancer) = &daemon.balancer {
                balancer.resync().await;
            }
        }
        Reason::Periodic => {
            daemon.enforcer.update_created(&created, |_| {}).await;
            if let Some(balancer) = &daemon.balancer {
                balancer.heal().await;
            }
        }
    }
}

/// The static routes the daemon owns: its overlay addresses to the node, the
/// rest of the world to the host.
fn wanted_routes(node_addrs: &[IpAddr]) -> Vec<RouteSpec> {
    let own = node_addrs.iter().map(|a| RouteSpec {
        prefix: IpNet::from(*a),
        via: RouteVia::Node,
    });
    let defaults = ["0.0.0.0/0", "::/0"].into_iter().map(|p| RouteSpec {
        prefix: p.parse().expect("a default prefix parses"),
        via: RouteVia::Host,
    });
    own.chain(defaults).collect()
}

async fn routes(daemon: &Daemon) -> Result<(), DataplaneError> {
    let dp = daemon.supervisor.dataplane();
    let current = dp.routes().await?;
    let wanted = wanted_routes(&daemon.record().node_addrs());
    for route in resync::routes(&wanted, &current) {
        dp.route_set(route).await?;
    }
    Ok(())
}

/// Makes the dataplane's peers those of the current view.
pub async fn peers(daemon: &Daemon) -> Result<(), DataplaneError> {
    let dp = daemon.supervisor.dataplane();
    let desired = daemon.view.borrow().peers_of(&daemon.config.node_name);
    let current = dp.peers().await?;
    let changes = resync::peers(&desired, &current);
    for name in &changes.remove {
        tracing::info!(peer = %name, "removing a peer");
        dp.peer_remove(name).await?;
    }
    for peer in changes.set {
        tracing::info!(peer = %peer.name, subnets = ?peer.subnets, underlay = %peer.underlay_ip, "programming a peer");
        if let Err(e) = dp.peer_set(peer.clone()).await {
            // One bad peer (say, overlapping subnets) must not block the others.
            tracing::error!(peer = %peer.name, error = %e, "programming a peer");
        }
    }
    Ok(())
}

/// Health targets: every tweed node's overlay addresses (static peers run no
/// health endpoint).
fn health_targets(daemon: &Daemon) -> Vec<(String, SocketAddr)> {
    let view = daemon.view.borrow();
    view.nodes
        .values()
        .filter(|n| n.name != daemon.config.node_name)
        .filter_map(|n| {
            let addr = n.node_addrs().into_iter().next()?;
            Some((
                n.name.clone(),
                SocketAddr::new(addr, daemon.config.health_port),
            ))
        })
        .collect()
}

/// Reprograms peers and health targets on every view change, resyncs fully on
/// every new dataplane and every [`PERIOD`], until `shutdown`.
pub async fn follow(daemon: Arc<Daemon>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut view = daemon.view.clone();
    let mut generation = daemon.supervisor.generation();
    let mut tick = tokio::time::interval(PERIOD);
    tick.tick().await;
    loop {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() { return; }
                if let Err(e) = peers(&daemon).await {
                    tracing::warn!(error = %e, "programming peers; the next resync retries");
                }
            }
            changed = generation.changed() => {
                if changed.is_err() { return; }
                tracing::info!("a new dataplane answers; pushing the whole state");
                resync(&daemon, Reason::NewDataplane).await;
            }
            _ = tick.tick() => resync(&daemon, Reason::Periodic).await,
            _ = shutdown.changed() => return,
        }
        daemon
            .health
            .lock()
            .expect("health lock")
            .set_targets(&health_targets(&daemon));
    }
}

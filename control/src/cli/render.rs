//! The table output of `status`, `pods`, `nodes`, `routes` and `peer list`:
//! one pure function per answer, from the reply to the text printed.

use std::fmt::Display;

use ipnet::IpNet;

use super::table::{Table, key_values};
use crate::api::node::{DataplaneStatus, DatasourceStatus, NodeInfo, PeerStatus, StatusReply};
use crate::api::pod::PodInfo;
use crate::api::proto::{Backend, RouteInfo};

/// `-` for an absent value.
fn or_dash<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Values joined by `, `, or `-` when there are none.
fn list<T: Display>(values: &[T]) -> String {
    if values.is_empty() {
        return "-".to_owned();
    }
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn subnets(nets: &[IpNet]) -> String {
    list(nets)
}

fn backend(backend: Backend) -> &'static str {
    match backend {
        Backend::Vxlan => "vxlan",
        Backend::Udp => "udp",
    }
}

/// `1 restart`, `2 restarts`.
fn plural(n: impl Into<u64>, one: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn dataplane_line(dp: &DataplaneStatus) -> String {
    let mut parts = vec![if dp.up { "up" } else { "down" }.to_owned()];
    if let Some(pid) = dp.pid {
        parts.push(format!("pid {pid}"));
    }
    parts.push(plural(dp.restarts, "restart"));
    parts.push(plural(dp.ports as u64, "port"));
    if let Some(io) = &dp.io {
        parts.push(format!("tap I/O {io}"));
    }
    format!("{} ({})", parts.join(", "), dp.socket)
}

fn store_line(status: &StatusReply) -> String {
    let health = &status.store_health;
    let state = if health.up { "up" } else { "failing" };
    match health.failures {
        0 => format!("{}, {state}", status.store),
        n => format!(
            "{}, {state} ({} since start)",
            status.store,
            plural(n, "failed call")
        ),
    }
}

/// `datasource`: current or stale, then one line per resource that is not
/// listed yet, failing, or has objects tweed refused.
fn datasource_lines(source: &DatasourceStatus) -> Vec<(&'static str, String)> {
    let state = if source.stale {
        "STALE: enforcing the last state seen"
    } else {
        "current"
    };
    let objects: u64 = source.resources.iter().map(|r| r.objects).sum();
    let mut out = vec![(
        "datasource",
        format!(
            "{} {}, {state} ({} from {})",
            source.kind,
            source.server,
            plural(objects, "object"),
            plural(source.resources.len() as u64, "resource")
        ),
    )];
    for r in &source.resources {
        if !r.synced {
            out.push(("not listed yet", r.resource.clone()));
        }
        if !r.served {
            out.push((
                "not served",
                format!(
                    "{} (install its CRD: deploy/kubernetes/tweed-crds.yaml)",
                    r.resource
                ),
            ));
        }
        if let Some(error) = &r.error {
            out.push(("watch failing", format!("{}: {error}", r.resource)));
        }
        for refused in &r.rejected {
            out.push(("refused", format!("{} {refused}", r.resource)));
        }
    }
    out
}

fn reachable(peer: &PeerStatus) -> &'static str {
    match peer.reachable {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

/// `tweed status`: this node, the store, the dataplane, then a peer table
/// and the peers' last errors.
pub fn render_status(status: &StatusReply) -> String {
    let node = &status.node;
    let mut pairs = vec![
        ("node", node.name.clone()),
        ("subnets", subnets(&node.subnets)),
        ("node address", list(&node.node_addrs)),
        (
            "underlay",
            format!("{} (vtep {})", node.underlay_ip, node.vtep_mac),
        ),
        ("backend", backend(node.backend).to_owned()),
        ("store", store_line(status)),
        ("dataplane", dataplane_line(&status.dataplane)),
    ];
    if let Some(error) = &status.store_health.error {
        pairs.insert(pairs.len() - 1, ("store error", error.clone()));
    }
    if let Some(error) = &status.dataplane.error {
        pairs.push(("dataplane error", error.clone()));
    }
    if let Some(source) = &status.datasource {
        pairs.extend(datasource_lines(source));
    }
    if status.native_services {
        pairs.push(("services", "native: the dataplane balances them".to_owned()));
    }
    let mut out = key_values(&pairs);
    out.push('\n');
    if status.peers.is_empty() {
        out.push_str("no peers\n");
        return out;
    }
    let mut table = Table::new([
        "NAME",
        "KIND",
        "SUBNETS",
        "UNDERLAY",
        "BACKEND",
        "REACHABLE",
        "RTT",
    ]);
    for peer in &status.peers {
        let n = &peer.node;
        table.row([
            n.name.clone(),
            n.kind.name().to_owned(),
            subnets(&n.subnets),
            n.underlay_ip.to_string(),
            backend(n.backend).to_owned(),
            reachable(peer).to_owned(),
            or_dash(peer.rtt_ms.map(|ms| format!("{ms:.2} ms"))),
        ]);
    }
    out.push_str(&table.render());
    for peer in &status.peers {
        if let Some(error) = &peer.last_error {
            out.push_str(&format!("{}: last probe failed: {error}\n", peer.node.name));
        }
    }
    out
}

/// `tweed pods`: one row per attachment.
pub fn render_pods(pods: &[PodInfo]) -> String {
    if pods.is_empty() {
        return "no pods on this node\n".to_owned();
    }
    let mut table = Table::new([
        "NAMESPACE",
        "NAME",
        "CONTAINER",
        "IFNAME",
        "IPV4",
        "IPV6",
        "MAC",
        "MTU",
    ]);
    for pod in pods {
        // Runtimes print the first 12 characters of a container id too.
        let container: String = pod.container_id.chars().take(12).collect();
        table.row([
            pod.namespace.clone(),
            pod.name.clone(),
            container,
            pod.ifname.clone(),
            or_dash(pod.ipv4),
            or_dash(pod.ipv6),
            pod.mac.to_string(),
            pod.mtu.to_string(),
        ]);
    }
    table.render()
}

/// `tweed nodes`: this node, the other nodes and the static peers.
pub fn render_nodes(nodes: &[NodeInfo]) -> String {
    if nodes.is_empty() {
        return "no nodes\n".to_owned();
    }
    let mut table = Table::new([
        "NAME",
        "KIND",
        "SUBNETS",
        "UNDERLAY",
        "VTEP-MAC",
        "BACKEND",
        "ADDRESSES",
    ]);
    for node in nodes {
        table.row([
            node.name.clone(),
            node.kind.name().to_owned(),
            subnets(&node.subnets),
            node.underlay_ip.to_string(),
            node.vtep_mac.to_string(),
            backend(node.backend).to_owned(),
            list(&node.node_addrs),
        ]);
    }
    table.render()
}

/// `tweed peer list`: the static peers.
pub fn render_peers(peers: &[NodeInfo]) -> String {
    if peers.is_empty() {
        return "no static peers\n".to_owned();
    }
    let mut table = Table::new(["NAME", "SUBNETS", "UNDERLAY", "VTEP-MAC", "BACKEND"]);
    for peer in peers {
        table.row([
            peer.name.clone(),
            subnets(&peer.subnets),
            peer.underlay_ip.to_string(),
            peer.vtep_mac.to_string(),
            backend(peer.backend).to_owned(),
        ]);
    }
    table.render()
}

/// `tweed routes`: the dataplane's routes.
pub fn render_routes(routes: &[RouteInfo]) -> String {
    if routes.is_empty() {
        return "no routes\n".to_owned();
    }
    let mut table = Table::new(["PREFIX", "NEXT-HOP"]);
    for route in routes {
        table.row([route.prefix.to_string(), route.next_hop.to_string()]);
    }
    table.render()
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;

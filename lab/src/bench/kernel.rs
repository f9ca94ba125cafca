//! The kernel's path, as a CNI would build it: Calico-style pods (a veth
//! per pod, the pod's address as a /32, its gateway 169.254.1.1 answered by
//! proxy ARP on the host end, a /32 route per pod on the node) and, across
//! nodes, flannel-style VXLAN (a kernel `vxlan` device per node, a route to
//! the other node's pod subnet via its VTEP address, a permanent neighbour
//! entry for it). All over rtnetlink and `/proc/sys`, no `ip`.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::neighbour::NeighbourState;
use rtnetlink::{LinkUnspec, LinkVxlan, RouteMessageBuilder};
use tweed_sys::netlink::{add_default_v4, add_host_address, add_link_route_v4, link_index, set_up};

use crate::links::UNDERLAY_IFNAME;
use crate::{links, netns};

/// The pods' gateway, as Calico has it.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// Makes node namespace `node` forward, with the gateway address routed
/// to `lo` (proxy ARP answers for an address only when the node has a route
/// to it through another device; a Calico host has its default route).
pub fn node(node: &str) -> Result<(), String> {
    netns::sysctl(node, "net.ipv4.ip_forward", "1").map_err(|e| e.to_string())?;
    links::run_in(&netns::path(node), |h| async move {
        let lo = index(&h, "lo").await?;
        add_link_route_v4(&h, lo, GATEWAY)
            .await
            .map_err(|e| format!("route {GATEWAY} to lo: {e}"))
    })
}

/// A Calico-style pod: `eth0` in namespace `pod` with `ip`/32, its host
/// end `hostif` in namespace `node` with proxy ARP and a /32 route.
pub fn pod(node: &str, pod: &str, ip: Ipv4Addr, hostif: &str, mtu: u32) -> Result<(), String> {
    links::veth_between(
        &netns::path(node),
        hostif,
        &netns::path(pod),
        "eth0",
        Some(mtu),
    )?;
    links::run_in(&netns::path(pod), move |h| async move {
        let eth0 = index(&h, "eth0").await?;
        add_host_address(&h, eth0, IpAddr::V4(ip))
            .await
            .map_err(|e| format!("add {ip}/32 to eth0: {e}"))?;
        set_up(&h, eth0)
            .await
            .map_err(|e| format!("set eth0 up: {e}"))?;
        add_link_route_v4(&h, eth0, GATEWAY)
            .await
            .map_err(|e| format!("route {GATEWAY} on eth0: {e}"))?;
        add_default_v4(&h, eth0, GATEWAY)
            .await
            .map_err(|e| format!("default via {GATEWAY}: {e}"))
    })?;
    for (key, value) in [
        (format!("net.ipv4.conf.{hostif}.proxy_arp"), "1"),
        (format!("net.ipv4.neigh.{hostif}.proxy_delay"), "0"),
    ] {
        netns::sysctl(node, &key, value).map_err(|e| e.to_string())?;
    }
    let hostif = hostif.to_owned();
    links::run_in(&netns::path(node), move |h| async move {
        let i = index(&h, &hostif).await?;
        set_up(&h, i)
            .await
            .map_err(|e| format!("set {hostif} up: {e}"))?;
        add_link_route_v4(&h, i, ip)
            .await
            .map_err(|e| format!("route {ip}/32 to {hostif}: {e}"))
    })
}

/// One node's end of flannel-style VXLAN.
#[derive(Debug, Clone, Copy)]
pub struct Vtep {
    /// Its underlay address (on the underlay's `eth0`).
    pub underlay: Ipv4Addr,
    /// The VTEP device's MAC.
    pub mac: [u8; 6],
    /// Its pod subnet's first address (`10.244.N.0`), on the VTEP as a /32.
    pub addr: Ipv4Addr,
}

/// A `vxlan` device `vx0` (VNI 1, port 4789) in node namespace `node`
/// towards `remote`, routing `remote.addr`/24 through it.
pub fn vxlan(node: &str, local: Vtep, remote: Vtep, mtu: u32) -> Result<(), String> {
    links::run_in(&netns::path(node), move |h| async move {
        let ul = index(&h, UNDERLAY_IFNAME).await?;
        let vx = LinkVxlan::new("vx0", 1)
            .dev(ul)
            .port(4789)
            .local(local.underlay)
            .remote(remote.underlay)
            .learning(false)
            .mtu(mtu)
            .build();
        h.link()
            .add(vx)
            .execute()
            .await
            .map_err(|e| format!("create vx0: {e}"))?;
        let vx0 = index(&h, "vx0").await?;
        h.link()
            .set(
                LinkUnspec::new_with_index(vx0)
                    .address(local.mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| format!("set vx0's MAC: {e}"))?;
        set_up(&h, vx0)
            .await
            .map_err(|e| format!("set vx0 up: {e}"))?;
        add_host_address(&h, vx0, IpAddr::V4(local.addr))
            .await
            .map_err(|e| format!("add {}/32 to vx0: {e}", local.addr))?;
        h.neighbours()
            .add(vx0, IpAddr::V4(remote.addr))
            .link_layer_address(&remote.mac)
            .state(NeighbourState::Permanent)
            .execute()
            .await
            .map_err(|e| format!("neighbour {} on vx0: {e}", remote.addr))?;
        add_link_route_v4(&h, vx0, remote.addr)
            .await
            .map_err(|e| format!("route {}/32 to vx0: {e}", remote.addr))?;
        let subnet = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(remote.addr, 24)
            .gateway(remote.addr)
            .output_interface(vx0)
            .build();
        h.route()
            .add(subnet)
            .execute()
            .await
            .map_err(|e| format!("route {}/24 via {}: {e}", remote.addr, remote.addr))
    })
}

async fn index(h: &rtnetlink::Handle, name: &str) -> Result<u32, String> {
    link_index(h, name)
        .await
        .map_err(|e| format!("find {name}: {e}"))?
        .ok_or_else(|| format!("{name} is missing"))
}

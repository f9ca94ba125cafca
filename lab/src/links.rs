//! The demo's links, over rtnetlink: the underlay veth between the two
//! nodes, its addresses and default routes; veths between any two
//! namespaces (`tweed bench`'s kernel-path pods).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth};
use tweed_sys::netlink::{add_default_v4, link_index, set_up, with_netlink_in};
use tweed_sys::netns::NetNs;

/// The node's underlay interface.
pub const UNDERLAY_IFNAME: &str = "eth0";
/// The underlay's prefix length (the nodes share one /24).
pub const UNDERLAY_PREFIX: u8 = 24;

/// Sets `lo` up in the handle's namespace.
pub async fn lo_up(h: &Handle) -> Result<(), String> {
    let lo = link_index(h, "lo")
        .await
        .map_err(|e| format!("find lo: {e}"))?
        .ok_or("no lo")?;
    set_up(h, lo).await.map_err(|e| format!("set lo up: {e}"))
}

/// One end of the underlay: a node's namespace and its address there.
#[derive(Debug, Clone, Copy)]
pub struct UnderlayEnd<'a> {
    /// The node's namespace (a `/run/netns` path).
    pub netns: &'a Path,
    /// Its underlay address.
    pub ip: Ipv4Addr,
}

/// Joins two node namespaces with a veth pair, `eth0` on both sides, each
/// with its address on the shared /24 and a default route via the other
/// (so a daemon looking for the default route's interface finds `eth0`).
pub fn underlay(a: UnderlayEnd<'_>, b: UnderlayEnd<'_>) -> Result<(), String> {
    let (ip_a, ip_b) = (a.ip, b.ip);
    veth_between(a.netns, UNDERLAY_IFNAME, b.netns, UNDERLAY_IFNAME, None)?;
    run_in(
        a.netns,
        move |h| async move { configure(&h, ip_a, ip_b).await },
    )?;
    run_in(
        b.netns,
        move |h| async move { configure(&h, ip_b, ip_a).await },
    )
}

/// A veth pair from namespace `a` (end `a_name`) to namespace `b` (end
/// `b_name`), with `mtu` on both ends when given, both still down. The peer
/// end is made directly in b's namespace, under its final name: nothing
/// appears in the namespace the caller runs in.
pub fn veth_between(
    a: &Path,
    a_name: &str,
    b: &Path,
    b_name: &str,
    mtu: Option<u32>,
) -> Result<(), String> {
    let ns_b = NetNs::open(b).map_err(|e| format!("open {}: {e}", b.display()))?;
    let fd_b = ns_b.as_raw_fd();
    let (a_name, b_name) = (a_name.to_owned(), b_name.to_owned());
    run_in(a, move |h| async move {
        let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(b_name.clone())
            .setns_by_fd(fd_b);
        if let Some(mtu) = mtu {
            peer = peer.mtu(mtu);
        }
        let mut veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(a_name.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        if let Some(mtu) = mtu {
            veth = veth.mtu(mtu);
        }
        h.link()
            .add(veth.build())
            .execute()
            .await
            .map_err(|e| format!("create the veth {a_name} <-> {b_name}: {e}"))
    })
}

/// The underlay of a lone node: a veth pair inside its namespace, `eth0`
/// with its address and a default route via `.254` of the /24, and `uplink0`
/// its other end (nothing answers there: the daemon only needs an underlay
/// to stand on; a veth, because not every kernel has the dummy driver).
pub fn lone_underlay(a: UnderlayEnd<'_>) -> Result<(), String> {
    let ip = a.ip;
    let [x, y, z, _] = ip.octets();
    run_in(a.netns, move |h| async move {
        h.link()
            .add(LinkVeth::new(UNDERLAY_IFNAME, "uplink0").build())
            .execute()
            .await
            .map_err(|e| format!("create the underlay veth: {e}"))?;
        let uplink = link_index(&h, "uplink0")
            .await
            .map_err(|e| format!("find uplink0: {e}"))?
            .ok_or("uplink0 is missing")?;
        set_up(&h, uplink)
            .await
            .map_err(|e| format!("set uplink0 up: {e}"))?;
        configure(&h, ip, Ipv4Addr::new(x, y, z, 254)).await
    })
}

/// Address, up, default route via the other end.
async fn configure(h: &Handle, ip: Ipv4Addr, gateway: Ipv4Addr) -> Result<(), String> {
    let index = link_index(h, UNDERLAY_IFNAME)
        .await
        .map_err(|e| format!("find {UNDERLAY_IFNAME}: {e}"))?
        .ok_or_else(|| format!("{UNDERLAY_IFNAME} is missing"))?;
    h.address()
        .add(index, ip.into(), UNDERLAY_PREFIX)
        .execute()
        .await
        .map_err(|e| format!("add {ip}/{UNDERLAY_PREFIX}: {e}"))?;
    set_up(h, index)
        .await
        .map_err(|e| format!("set {UNDERLAY_IFNAME} up: {e}"))?;
    add_default_v4(h, index, gateway)
        .await
        .map_err(|e| format!("add default via {gateway}: {e}"))
}

/// Runs `f` with a netlink handle inside the namespace at `netns`.
pub fn run_in<F, Fut>(netns: &Path, f: F) -> Result<(), String>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let ns = NetNs::open(netns).map_err(|e| format!("open {}: {e}", netns.display()))?;
    with_netlink_in(&ns, move |h| async move { Ok(f(h).await) }).map_err(|e| e.to_string())?
}

//! Pod taps: create a persistent multi-queue tap inside the pod's netns and
//! configure it there (Calico's model, see the README's "Design notes");
//! re-attach to it after a restart; remove it.
//!
//! One thread inside the pod netns does the whole job: it opens the queues
//! (`TUNSETIFF` creates the tap in the netns the `/dev/net/tun` fd was opened
//! in, so directly under the pod's `ifname`; `IFF_TUN_EXCL`: a name already
//! taken is `EBUSY`, never somebody else's tap), marks the tap persistent,
//! and over a netlink socket of that netns gives it its MTU, MAC, `/32` and
//! `/128` and the `noqueue` qdisc (see [`nl::set_noqueue`]), sets it up and
//! adds the link-scope route to `169.254.1.1` and the default routes via
//! `169.254.1.1` and `fe80::1`. Nothing is created in the
//! dataplane's own netns and nothing is moved between namespaces (moving a
//! link makes the kernel unregister and register it again, which cost more
//! than everything else together). The queue fds work from any thread.
//!
//! A queue fd keeps the netns it was opened in alive, so a pod netns whose
//! mount is removed while its port exists lives on, with its tap, until the
//! port is removed and the queues are closed.
//!
//! If any step fails after the tap exists, it is made non-persistent and its
//! queues closed, which removes it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rtnetlink::Handle;

use tweed_sys::PortError;
use tweed_sys::netlink::{
    self as nl, current_netns_label, with_netlink_here, with_netlink_in,
    with_netlink_on_this_thread,
};
use tweed_sys::netns::NetNs;
use tweed_sys::tap::{self, TapQueue};

/// The gateways every pod routes through (defined with the node's tables).
pub use crate::table::tables::{GATEWAY_V4, GATEWAY_V6};

/// How a pod's interface should look inside its netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLink {
    /// The pod's netns file (e.g. `/var/run/netns/cni-…`).
    pub netns: PathBuf,
    /// The interface name inside the pod (`CNI_IFNAME`, usually `eth0`).
    pub ifname: String,
    /// The pod-side MAC address.
    pub mac: [u8; 6],
    /// The interface MTU.
    pub mtu: u16,
    /// The pod's IPv4 address (installed as `/32`).
    pub ipv4: Option<Ipv4Addr>,
    /// The pod's IPv6 address (installed as `/128`, no DAD).
    pub ipv6: Option<Ipv6Addr>,
}

pub(crate) fn check_name(name: &str) -> Result<(), PortError> {
    tap::check_ifname(name).map_err(|source| PortError::InvalidName {
        name: name.to_string(),
        source,
    })
}

pub(crate) fn open_netns(path: &Path) -> Result<NetNs, PortError> {
    NetNs::open(path).map_err(|source| PortError::NetnsOpen {
        netns: path.to_path_buf(),
        source,
    })
}

/// Creates the pod's tap with `queues` queues (one per worker) inside the pod
/// netns and returns them. Fails with [`PortError::LinkExists`] if
/// `link.ifname` is taken in the pod netns and [`PortError::NetnsOpen`] if
/// the netns does not exist. Nothing is left behind on failure.
pub fn create_pod_tap(link: &PodLink, queues: usize) -> Result<Vec<TapQueue>, PortError> {
    check_name(&link.ifname)?;
    let pod = open_netns(&link.netns)?;
    let link = link.clone();
    pod.run(move || with_netlink_on_this_thread(|h| create_here(h, link, queues)))
        .map_err(|source| PortError::NetnsEnter {
            netns: pod.path().to_path_buf(),
            source,
        })?
}

/// On a thread inside the pod netns: creates, persists and configures.
async fn create_here(h: Handle, link: PodLink, queues: usize) -> Result<Vec<TapQueue>, PortError> {
    let qs = match tap::create_tap_queues(&link.ifname, queues) {
        Ok(qs) => qs,
        // EBUSY: a link of that name exists (IFF_TUN_EXCL), maybe one that
        // is being deleted right now: the caller may wait and try again.
        Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
            return Err(PortError::LinkExists {
                netns: link.netns,
                ifname: link.ifname,
            });
        }
        Err(source) => {
            return Err(PortError::TapOpen {
                netns: link.netns,
                ifname: link.ifname,
                source,
            });
        }
    };
    // The tap exists from here on: any failure must remove it.
    let made = match make_persistent(&qs, &link.ifname) {
        Ok(()) => configure(&h, &link, false).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(()) => Ok(qs),
        Err(e) => {
            discard_here(&h, qs, &link).await;
            Err(e)
        }
    }
}

/// The index of `name`, or [`PortError::LinkNotFound`].
pub(super) async fn lookup(h: &Handle, netns: &Path, name: &str) -> Result<u32, PortError> {
    nl::link_index(h, name)
        .await
        .map_err(|source| PortError::LinkLookup {
            netns: netns.to_path_buf(),
            ifname: name.to_string(),
            source,
        })?
        .ok_or_else(|| PortError::LinkNotFound {
            netns: netns.to_path_buf(),
            ifname: name.to_string(),
        })
}

/// Inside the pod netns: MTU, MAC, addresses, qdisc, up, routes. Routes come
/// last because the kernel refuses a nexthop on a link that is down. An
/// `existing` tap (one being adopted) keeps the addresses and routes it has
/// and its qdisc.
pub(super) async fn configure(h: &Handle, link: &PodLink, existing: bool) -> Result<(), PortError> {
    let added = |result| {
        if existing {
            nl::exists_ok(result)
        } else {
            result
        }
    };
    let netns = || link.netns.clone();
    let ifname = || link.ifname.clone();
    let index = lookup(h, &link.netns, &link.ifname).await?;
    nl::set_mtu(h, index, u32::from(link.mtu))
        .await
        .map_err(|source| PortError::LinkSetMtu {
            netns: netns(),
            ifname: ifname(),
            mtu: link.mtu,
            source,
        })?;
    nl::set_mac(h, index, link.mac)
        .await
        .map_err(|source| PortError::LinkSetMac {
            netns: netns(),
            ifname: ifname(),
            source,
        })?;
    let addrs = link
        .ipv4
        .map(IpAddr::V4)
        .into_iter()
        .chain(link.ipv6.map(IpAddr::V6));
    for addr in addrs {
        added(nl::add_host_address(h, index, addr).await).map_err(|source| {
            PortError::AddressAdd {
                netns: netns(),
                ifname: ifname(),
                addr,
                source,
            }
        })?;
    }
    // Best effort: the default qdisc works too, only slower to set up.
    if !existing && let Err(e) = nl::set_noqueue(h, index).await {
        tracing::warn!(ifname = %link.ifname, netns = %link.netns.display(), error = %e, "could not give the tap the noqueue qdisc; keeping the default");
    }
    nl::set_up(h, index)
        .await
        .map_err(|source| PortError::LinkUp {
            netns: netns(),
            ifname: ifname(),
            source,
        })?;
    let route_err = |route: &'static str| {
        move |source| PortError::RouteAdd {
            netns: netns(),
            ifname: ifname(),
            route,
            source,
        }
    };
    if link.ipv4.is_some() {
        added(nl::add_link_route_v4(h, index, GATEWAY_V4).await)
            .map_err(route_err("169.254.1.1/32 scope link"))?;
        added(nl::add_default_v4(h, index, GATEWAY_V4).await)
            .map_err(route_err("default via 169.254.1.1"))?;
    }
    if link.ipv6.is_some() {
        added(nl::add_default_v6(h, index, GATEWAY_V6).await)
            .map_err(route_err("default via fe80::1"))?;
    }
    Ok(())
}

/// Removes a tap we just created, from the thread inside its netns:
/// non-persistent plus last fd closed makes the kernel unregister it. Should
/// clearing persist fail, delete it by name (only if it is a tap).
async fn discard_here(h: &Handle, qs: Vec<TapQueue>, link: &PodLink) {
    let cleared = tap::set_persist(&qs[0], false);
    drop(qs);
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "could not clear persist on a failed tap; deleting it by name");
        let _ = delete_if_tap(h, link.netns.clone(), link.ifname.clone()).await;
    }
}

fn link_exists_in(ns: &NetNs, name: &str) -> Result<bool, PortError> {
    let (netns, name) = (ns.path().to_path_buf(), name.to_string());
    with_netlink_in(ns, move |h| async move {
        nl::link_exists(&h, &name)
            .await
            .map_err(|source| PortError::LinkLookup {
                netns,
                ifname: name,
                source,
            })
    })
}

/// Deletes `name` if it exists and is a tap (never anybody else's link).
async fn delete_if_tap(h: &Handle, netns: PathBuf, name: String) -> Result<(), PortError> {
    let found = nl::find_link(h, &name)
        .await
        .map_err(|source| PortError::LinkLookup {
            netns: netns.clone(),
            ifname: name.clone(),
            source,
        })?;
    let Some(link) = found else { return Ok(()) };
    if !nl::is_tun(&link) {
        return Err(PortError::NotATap {
            netns,
            ifname: name,
        });
    }
    match nl::delete(h, link.header.index).await {
        Err(e) if !nl::is_not_found(&e) => Err(PortError::LinkDelete {
            netns,
            ifname: name,
            source: e,
        }),
        _ => Ok(()),
    }
}

pub(super) fn delete_tap_here(name: &str) -> Result<(), PortError> {
    let name = name.to_string();
    with_netlink_here(move |h| async move { delete_if_tap(&h, current_netns_label(), name).await })
}

fn delete_tap_in(ns: NetNs, name: &str) -> Result<(), PortError> {
    let (netns, name) = (ns.path().to_path_buf(), name.to_string());
    with_netlink_in(
        &ns,
        move |h| async move { delete_if_tap(&h, netns, name).await },
    )
}

/// Deletes the tap `ifname` in `netns` if both still exist; success if the
/// netns or the link is already gone.
fn delete_pod_link(netns: &Path, ifname: &str) -> Result<(), PortError> {
    match NetNs::open(netns) {
        Ok(ns) => delete_tap_in(ns, ifname),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(PortError::NetnsOpen {
            netns: netns.to_path_buf(),
            source,
        }),
    }
}

/// Re-opens `queues` queues of the persistent tap `ifname` that lives in the
/// pod netns (after a dataplane restart). [`PortError::LinkNotFound`] if it
/// is gone (it is never created here), [`PortError::NotATap`] if the name
/// belongs to another kind of link.
pub fn reattach_pod_tap(
    netns: &Path,
    ifname: &str,
    queues: usize,
) -> Result<Vec<TapQueue>, PortError> {
    check_name(ifname)?;
    let pod = open_netns(netns)?;
    let (path, name) = (netns.to_path_buf(), ifname.to_string());
    // TUNSETIFF looks the name up in the netns the fd was opened in, so open
    // the queues from a thread inside the pod netns.
    pod.run(move || {
        with_netlink_on_this_thread(|h| async move {
            let found = nl::find_link(&h, &name)
                .await
                .map_err(|source| PortError::LinkLookup {
                    netns: path.clone(),
                    ifname: name.clone(),
                    source,
                })?;
            match found {
                None => Err(PortError::LinkNotFound {
                    netns: path,
                    ifname: name,
                }),
                Some(l) if !nl::is_tun(&l) => Err(PortError::NotATap {
                    netns: path,
                    ifname: name,
                }),
                Some(_) => {
                    tap::open_tap_queues(&name, queues).map_err(|source| PortError::TapOpen {
                        netns: path,
                        ifname: name,
                        source,
                    })
                }
            }
        })
    })
    .map_err(|source| PortError::NetnsEnter {
        netns: netns.to_path_buf(),
        source,
    })?
}

/// Removes the pod's tap: clears persist, closes `queues` (a non-persistent
/// tap vanishes with its last fd) and deletes the link if it is still there.
/// Idempotent: success if the netns or the link is already gone.
pub fn remove_pod_tap(netns: &Path, ifname: &str, queues: Vec<TapQueue>) -> Result<(), PortError> {
    clear_persist(&queues);
    drop(queues);
    delete_pod_link(netns, ifname)
}

/// Like [`remove_pod_tap`] for queues that other threads may still hold
/// (they see `EBADFD` afterwards): clears persist and deletes the link.
pub fn delete_pod_tap(netns: &Path, ifname: &str, queues: &[TapQueue]) -> Result<(), PortError> {
    clear_persist(queues);
    delete_pod_link(netns, ifname)
}

/// Removes the pod's tap through `queues`, the last handles on it: clears
/// persist and closes them, and the kernel unregisters exactly this device
/// (never a newer link that took its name), wherever it is: also in a netns
/// whose mount is gone, which only the queues kept alive. Only if persist
/// cannot be cleared is the link deleted by name in `netns` (as
/// [`delete_pod_tap`]), and without queues too. Success if the tap is
/// already gone.
pub fn close_pod_tap(netns: &Path, ifname: &str, queues: Vec<TapQueue>) -> Result<(), PortError> {
    let Some(first) = queues.first() else {
        return delete_pod_link(netns, ifname);
    };
    let result = match tap::set_persist(first, false) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Ok(()),
        Err(e) => {
            tracing::warn!(%ifname, error = %e, "could not clear persist on a tap; deleting it by name");
            delete_pod_link(netns, ifname)
        }
    };
    // Closing the last queue of a non-persistent tap unregisters it.
    drop(queues);
    result
}

/// Best effort: a queue whose tap is already gone answers `EBADFD`.
pub(super) fn clear_persist(queues: &[TapQueue]) {
    if let Some(q) = queues.first()
        && let Err(e) = tap::set_persist(q, false)
        && e.raw_os_error() != Some(libc::EBADFD)
    {
        tracing::debug!(error = %e, "could not clear persist on a tap");
    }
}

/// Whether `ifname` exists in the pod netns ([`PortError::NetnsOpen`] if the
/// netns does not).
pub fn pod_link_exists(netns: &Path, ifname: &str) -> Result<bool, PortError> {
    check_name(ifname)?;
    let pod = open_netns(netns)?;
    link_exists_in(&pod, ifname)
}

/// Marks the tap `name` persistent through one of its queues, so it outlives
/// our file descriptors (a restarted dataplane re-attaches it).
pub(super) fn make_persistent(qs: &[TapQueue], name: &str) -> Result<(), PortError> {
    let Some(q) = qs.first() else {
        return Ok(());
    };
    tap::set_persist(q, true).map_err(|source| PortError::TapSetPersist {
        ifname: name.to_string(),
        on: true,
        source,
    })
}

//! Installs and removes the node addresses and the routes to the dataplane (cluster
//! CIDRs, and Service CIDRs with native Services) on the host port.
//!
//! [`install`] converges: it sets the port up, adds each node address unless it is
//! already there (`EEXIST` is success), and replaces the route to each cluster CIDR
//! (`NLM_F_REPLACE`), so running it again, or after a restart that left the old state,
//! ends in the same state without errors. [`remove`] deletes the routes first (deleting
//! an IPv4 address would flush routes using it as source anyway) and then the
//! addresses, tolerating whatever is already gone, including the port itself.
//!
//! The dataplane creates the port; it may appear a moment after the dataplane starts,
//! hence [`wait_for_link`]. All calls run in the calling thread's netns, on the
//! caller's tokio runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use netlink_packet_route::route::RouteMessage;
use rtnetlink::{AddressMessageBuilder, Handle, RouteMessageBuilder};
use tweed_sys::netlink as nl;

use super::HostError;
use super::netlink::{Conn, is_exists, is_gone};
pub use super::plan::{Desired, HostPlan, HostRoute};

/// How often [`wait_for_link`] looks again.
const LINK_POLL: Duration = Duration::from_millis(50);

/// Makes the host port carry `plan`: port up, node addresses, cluster routes.
/// Idempotent. Fails with [`HostError::LinkMissing`] if the port does not exist.
pub async fn install(plan: &HostPlan) -> Result<(), HostError> {
    let desired = plan.desired()?;
    let conn = Conn::open()?;
    let h = &conn.handle;
    let dev = plan.device.as_str();
    let index = conn
        .link_index(dev)
        .await?
        .ok_or_else(|| HostError::LinkMissing { name: dev.into() })?;
    nl::set_up(h, index)
        .await
        .map_err(|source| HostError::LinkUp {
            name: dev.into(),
            source,
        })?;
    for &addr in &desired.addresses {
        match nl::add_host_address(h, index, addr.addr()).await {
            Ok(()) => {}
            Err(e) if is_exists(&e) => {}
            Err(source) => {
                return Err(HostError::AddressAdd {
                    addr,
                    dev: dev.into(),
                    source,
                });
            }
        }
    }
    for route in &desired.routes {
        h.route()
            .add(route_message(route, index)?)
            .replace()
            .execute()
            .await
            .map_err(|e| HostError::RouteReplace {
                prefix: route.prefix,
                gateway: route.gateway,
                dev: dev.into(),
                source_addr: route.source,
                source: Box::new(e),
            })?;
    }
    Ok(())
}

/// Removes what [`install`] put on the port: its routes, then its addresses. Whatever
/// is already gone (the port included) is fine. The port's up state is left alone:
/// the dataplane owns the port.
pub async fn remove(plan: &HostPlan) -> Result<(), HostError> {
    remove_from(plan, true).await
}

/// Removes only the routes of `plan` (what is gone is fine): those a node
/// no longer wants, such as the Service CIDRs' once it stops balancing
/// Services.
pub async fn remove_routes(plan: &HostPlan) -> Result<(), HostError> {
    remove_from(plan, false).await
}

async fn remove_from(plan: &HostPlan, addresses: bool) -> Result<(), HostError> {
    let desired = plan.desired()?;
    let conn = Conn::open()?;
    let h = &conn.handle;
    let dev = plan.device.as_str();
    let Some(index) = conn.link_index(dev).await? else {
        // Routes and addresses on a link vanish with it.
        return Ok(());
    };
    for route in &desired.routes {
        let deleted = h.route().del(route_message(route, index)?).execute().await;
        match deleted.map_err(Box::new) {
            Ok(()) => {}
            Err(e) if is_gone(&e) => {}
            Err(source) => {
                return Err(HostError::RouteDelete {
                    prefix: route.prefix,
                    dev: dev.into(),
                    source,
                });
            }
        }
    }
    let addresses = if addresses {
        desired.addresses.as_slice()
    } else {
        &[]
    };
    for &addr in addresses {
        match delete_address(h, index, addr).await {
            Ok(()) => {}
            Err(e) if is_gone(&e) => {}
            Err(e) => {
                return Err(HostError::AddressDelete {
                    addr,
                    dev: dev.into(),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// Waits until link `name` exists (polling every 50 ms) and returns its index;
/// [`HostError::LinkWait`] after `timeout`.
pub async fn wait_for_link(name: &str, timeout: Duration) -> Result<u32, HostError> {
    let conn = Conn::open()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(index) = conn.link_index(name).await? {
            return Ok(index);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HostError::LinkWait {
                name: name.into(),
                waited: timeout,
            });
        }
        tokio::time::sleep(LINK_POLL).await;
    }
}

/// The netlink message for `route` on link `index` (for replace and delete alike: the
/// delete matches on the same gateway and device, so it never takes a route to the same
/// prefix that someone else installed elsewhere).
fn route_message(route: &HostRoute, index: u32) -> Result<RouteMessage, HostError> {
    let mixed = || HostError::InvalidPlan {
        reason: format!("route {route:?} mixes address families"),
    };
    let b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.prefix.addr(), route.prefix.prefix_len())
        .and_then(|b| b.gateway(route.gateway))
        .and_then(|b| b.pref_source(route.source))
        .map_err(|_| mixed())?;
    // `gateway` turns an IPv6 next hop of an IPv4 route into RTA_VIA: refuse that too.
    if route.prefix.addr().is_ipv4() != route.gateway.is_ipv4() {
        return Err(mixed());
    }
    let b = b.output_interface(index);
    Ok(if route.onlink { b.onlink() } else { b }.build())
}

/// Deletes `addr` (with its prefix length) from link `index`.
async fn delete_address(h: &Handle, index: u32, addr: IpNet) -> Result<(), nl::NlError> {
    let msg = match addr {
        IpNet::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(a.addr(), a.prefix_len())
            .build(),
        IpNet::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(a.addr(), a.prefix_len())
            .build(),
    };
    h.address().del(msg).execute().await.map_err(Box::new)
}

//! What a pod's netns holds for one interface, read over rtnetlink from a
//! thread that entered the netns (the dataplane's `with_netlink_in`): the
//! link, its addresses and the main table's routes through it. CHECK
//! compares this with the daemon's record (`spec::check`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::{Handle, RouteMessageBuilder};
use tweed_sys::PortError;
use tweed_sys::netlink::{self as nl, NlError};
use tweed_sys::netns::NetNs;

use crate::spec::check::{ObservedLink, ObservedRoute};

/// Reading the netns failed; the variant says at which step.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The netns file could not be opened (usually: it no longer exists).
    #[error("cannot open netns {}", .netns.display())]
    Open {
        /// The path.
        netns: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Entering the netns or opening its rtnetlink socket failed.
    #[error("cannot read netns {}", .netns.display())]
    Enter {
        /// The path.
        netns: PathBuf,
        /// The cause.
        #[source]
        source: PortError,
    },
    /// A netlink dump failed; `what` names it.
    #[error("cannot list the {what} of {ifname:?} in netns {}", .netns.display())]
    Dump {
        /// The path.
        netns: PathBuf,
        /// The interface.
        ifname: String,
        /// `link`, `addresses` or `routes`.
        what: &'static str,
        /// The cause.
        #[source]
        source: NlError,
    },
}

/// The interface `ifname` in the netns at `netns`; `None` if it does not exist.
pub fn observe(netns: &Path, ifname: &str) -> Result<Option<ObservedLink>, NetnsError> {
    let ns = NetNs::open(netns).map_err(|source| NetnsError::Open {
        netns: netns.to_owned(),
        source,
    })?;
    let name = ifname.to_owned();
    let read = nl::with_netlink_in(&ns, move |h| async move { Ok(read_link(h, name).await) })
        .map_err(|source| NetnsError::Enter {
            netns: netns.to_owned(),
            source,
        })?;
    read.map_err(|(what, source)| NetnsError::Dump {
        netns: netns.to_owned(),
        ifname: ifname.to_owned(),
        what,
        source,
    })
}

type Step<T> = Result<T, (&'static str, NlError)>;

async fn read_link(h: Handle, ifname: String) -> Step<Option<ObservedLink>> {
    let Some(link) = nl::find_link(&h, &ifname).await.map_err(|e| ("link", e))? else {
        return Ok(None);
    };
    let index = link.header.index;
    let mac = nl::link_mac(&link).map(|m| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    });
    let mtu = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    });
    let addrs: Vec<AddressMessage> = h
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| ("addresses", Box::new(e)))?;
    let mut routes = Vec::new();
    for filter in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let found: Vec<RouteMessage> = h
            .route()
            .get(filter)
            .execute()
            .try_collect()
            .await
            .map_err(|e| ("routes", Box::new(e)))?;
        routes.extend(found.iter().filter_map(|r| route_via(r, index)));
    }
    Ok(Some(ObservedLink {
        mac,
        mtu,
        up: link.header.flags.contains(LinkFlags::Up),
        addrs: addrs
            .iter()
            .filter(|a| a.header.index == index)
            .filter_map(address)
            .collect(),
        routes,
    }))
}

/// An address message as `ADDR/LEN` (`IFA_LOCAL`, else `IFA_ADDRESS`).
fn address(msg: &AddressMessage) -> Option<IpNet> {
    let mut local = None;
    let mut addr = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    IpNet::new(local.or(addr)?, msg.header.prefix_len).ok()
}

/// A main-table route whose output interface is `index`.
fn route_via(msg: &RouteMessage, index: u32) -> Option<ObservedRoute> {
    let mut table = u32::from(msg.header.table);
    let mut oif = None;
    let mut dst = None;
    let mut gateway = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Destination(d) => dst = ip_of(d),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || oif != Some(index) {
        return None;
    }
    let len = msg.header.destination_prefix_length;
    let dst = match dst {
        Some(ip) => IpNet::new(ip, len).ok()?,
        None if msg.header.address_family == netlink_packet_route::AddressFamily::Inet6 => {
            IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), len).ok()?
        }
        None => IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), len).ok()?,
    };
    Some(ObservedRoute { dst, gateway })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

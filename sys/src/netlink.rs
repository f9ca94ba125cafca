//! Small async rtnetlink helpers, and the two ways to run them.
//!
//! A netlink socket belongs to the netns it was created in, so every batch of
//! requests runs on a dedicated std thread (in the caller's netns:
//! [`with_netlink_here`], or after `setns` into another one:
//! [`with_netlink_in`]) with its own current-thread tokio runtime and
//! connection. That also keeps these blocking calls safe to use from inside
//! an async runtime: they never nest `block_on`. A thread that is already
//! dedicated (one [`NetNs::run`] started) uses [`with_netlink_on_this_thread`]
//! instead, and saves a thread.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::RouteScope;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::PortError;
use crate::netns::{NetNs, SELF_NETNS};

/// An rtnetlink error, boxed: the unboxed one is over 100 bytes and would
/// bloat every `Result` that carries it.
pub type NlError = Box<rtnetlink::Error>;

/// Builds a current-thread runtime and an rtnetlink connection on the
/// calling thread (so in its netns), runs `f` and tears both down.
fn block_on<T, F, Fut>(f: F) -> io::Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let (conn, handle, _messages) = rtnetlink::new_connection()?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        Ok(out)
    })
}

/// A printable name for the calling thread's netns (`net:[4026531840]`).
pub fn current_netns_label() -> PathBuf {
    std::fs::read_link(SELF_NETNS).unwrap_or_else(|_| PathBuf::from(SELF_NETNS))
}

/// Runs `f` with a netlink handle in the caller's netns, on a fresh thread.
pub fn with_netlink_here<T, F, Fut>(f: F) -> Result<T, PortError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, PortError>>,
{
    let netns = current_netns_label();
    let thread = std::thread::Builder::new()
        .name("tweed-netlink".into())
        .spawn(move || block_on(f))
        .map_err(|source| PortError::NetnsEnter {
            netns: netns.clone(),
            source,
        })?;
    match thread.join() {
        Ok(r) => r.map_err(|source| PortError::NetlinkSocket { netns, source })?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `f` with a netlink handle on the calling thread, in its netns. For
/// threads that [`NetNs::run`] started (no async runtime on them): one
/// thread then does a whole job (tap ioctls and netlink) inside a netns.
pub fn with_netlink_on_this_thread<T, F, Fut>(f: F) -> Result<T, PortError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    block_on(f).map_err(|source| PortError::NetlinkSocket {
        netns: current_netns_label(),
        source,
    })?
}

/// Runs `f` with a netlink handle inside `ns`, on a fresh thread.
pub fn with_netlink_in<T, F, Fut>(ns: &NetNs, f: F) -> Result<T, PortError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, PortError>>,
{
    let netns = ns.path().to_path_buf();
    ns.run(move || block_on(f))
        .map_err(|source| PortError::NetnsEnter {
            netns: netns.clone(),
            source,
        })?
        .map_err(|source| PortError::NetlinkSocket { netns, source })?
}

/// True for the errors that mean "no such link/address/route".
pub fn is_not_found(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m)
        if matches!(m.raw_code().abs(), libc::ENODEV | libc::ENOENT | libc::ESRCH))
}

/// An addition that found what it adds already there (`EEXIST`) succeeded.
pub fn exists_ok(result: Result<(), NlError>) -> Result<(), NlError> {
    match result {
        Err(e) if matches!(&*e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == libc::EEXIST) => {
            Ok(())
        }
        other => other,
    }
}

/// Looks a link up by name; `None` if there is none.
pub async fn find_link(h: &Handle, name: &str) -> Result<Option<LinkMessage>, NlError> {
    let mut links = h.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Box::new(e)),
    }
}

/// The index of the link called `name`, if it exists.
pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>, NlError> {
    Ok(find_link(h, name).await?.map(|l| l.header.index))
}

/// Whether a link called `name` exists.
pub async fn link_exists(h: &Handle, name: &str) -> Result<bool, NlError> {
    Ok(find_link(h, name).await?.is_some())
}

/// Whether the link is a tun/tap device (`IFLA_INFO_KIND` "tun").
pub fn is_tun(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun))),
        _ => false,
    })
}

/// The link's Ethernet address, if it has one.
pub fn link_mac(link: &LinkMessage) -> Option<[u8; 6]> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
        _ => None,
    })
}

async fn set_link(h: &Handle, msg: LinkMessage) -> Result<(), NlError> {
    h.link().set(msg).execute().await.map_err(Box::new)
}

/// Sets the MTU of link `index`.
pub async fn set_mtu(h: &Handle, index: u32, mtu: u32) -> Result<(), NlError> {
    set_link(h, LinkUnspec::new_with_index(index).mtu(mtu).build()).await
}

/// Sets the Ethernet address of link `index`.
pub async fn set_mac(h: &Handle, index: u32, mac: [u8; 6]) -> Result<(), NlError> {
    set_link(
        h,
        LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build(),
    )
    .await
}

/// Sets link `index` administratively up.
pub async fn set_up(h: &Handle, index: u32) -> Result<(), NlError> {
    set_link(h, LinkUnspec::new_with_index(index).up().build()).await
}

/// Gives link `index` the `noqueue` root qdisc (`tc qdisc add dev X root
/// noqueue`). Done while the link is down, it saves the default one: on a
/// multi-queue tap (256 transmit queues) that is an `mq` with 256
/// `pfifo_fast` children, which cost a millisecond or more to set up and
/// 6 MB of rings, and queue nothing (a tap never stops its queues).
pub async fn set_noqueue(h: &Handle, index: u32) -> Result<(), NlError> {
    let index = i32::try_from(index).map_err(|_| Box::new(rtnetlink::Error::RequestFailed))?;
    let mut message = TcMessage::with_index(index);
    message.header.parent = TcHandle::ROOT;
    message
        .attributes
        .push(TcAttribute::Kind("noqueue".to_string()));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(message));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
    let mut responses = h.clone().request(request).map_err(Box::new)?;
    while let Some(response) = responses.next().await {
        if let NetlinkPayload::Error(e) = response.payload {
            return Err(Box::new(rtnetlink::Error::NetlinkError(e)));
        }
    }
    Ok(())
}

/// Deletes link `index`.
pub async fn delete(h: &Handle, index: u32) -> Result<(), NlError> {
    h.link().del(index).execute().await.map_err(Box::new)
}

/// Adds a host address (IPv4 `/32`, IPv6 `/128` without DAD: the only other
/// host on the link is the dataplane, so duplicate detection is pointless and
/// would delay the address by a second).
pub async fn add_host_address(h: &Handle, index: u32, addr: IpAddr) -> Result<(), NlError> {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    let mut req = h.address().add(index, addr, prefix);
    if addr.is_ipv6() {
        let msg = req.message_mut();
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await.map_err(Box::new)
}

/// Adds `dst/32 dev index scope link` (the on-link route to the gateway).
pub async fn add_link_route_v4(h: &Handle, index: u32, dst: Ipv4Addr) -> Result<(), NlError> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst, 32)
        .output_interface(index)
        .scope(RouteScope::Link)
        .build();
    h.route().add(msg).execute().await.map_err(Box::new)
}

/// Adds `default via gw dev index` (IPv4).
pub async fn add_default_v4(h: &Handle, index: u32, gw: Ipv4Addr) -> Result<(), NlError> {
    let msg = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gw)
        .output_interface(index)
        .build();
    h.route().add(msg).execute().await.map_err(Box::new)
}

/// Adds `default via gw dev index` (IPv6).
pub async fn add_default_v6(h: &Handle, index: u32, gw: Ipv6Addr) -> Result<(), NlError> {
    let msg = RouteMessageBuilder::<Ipv6Addr>::new()
        .gateway(gw)
        .output_interface(index)
        .build();
    h.route().add(msg).execute().await.map_err(Box::new)
}

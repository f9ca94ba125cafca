//! Defaults for `tweed daemon --underlay-ip` and `--mtu`, read from the node.
//!
//! The underlay is the interface of the node's default route (IPv4 first, IPv6 if
//! there is no IPv4 default), with the route's preferred source or else the first
//! global address of that family on it; an explicit `--underlay-ip` is looked up
//! instead with [`interface_of`]. The pod MTU is the underlay's MTU minus the
//! encapsulation overhead ([`pod_mtu`]). The choice of route and address is pure
//! ([`pick_default`], [`pick_address`], over summaries of the kernel's messages) and
//! unit-tested; the netlink dumps are at the edge.
//!
//! A route's own `mtu` metric (`ip route ... mtu N`) is not considered: the link's MTU
//! is used, which is what nearly every node has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use super::HostError;
use super::netlink::Conn;

/// VXLAN's overhead on an IPv4 underlay: outer IPv4 (20) + UDP (8) + VXLAN (8) + the
/// inner Ethernet header (14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// flannel-style UDP encapsulation's overhead on an IPv4 underlay: outer IPv4 (20) +
/// UDP (8); it carries IP packets, not frames.
pub const UDP_OVERHEAD: u32 = 28;
/// What an IPv6 underlay adds to either overhead (its header is 40 bytes, not 20).
pub const IPV6_UNDERLAY_EXTRA: u32 = 20;
/// The smallest pod MTU we configure: the datagram size every IPv4 host must accept
/// (RFC 791). IPv6 needs 1280; an underlay that small cannot carry IPv6 pods anyway.
pub const MIN_POD_MTU: u16 = 576;
/// The largest IP packet (its length field is 16 bits): an encapsulated packet must fit.
const MAX_IP_PACKET: u32 = 65535;

/// The node's underlay: the interface that carries encapsulated traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The interface's name.
    pub ifname: String,
    /// The node's address on it (the tunnel source).
    pub ip: IpAddr,
    /// The interface's MTU.
    pub mtu: u32,
}

/// The pod MTU for an underlay MTU and a backend's encapsulation overhead:
/// `underlay_mtu - backend_overhead`, clamped to `MIN_POD_MTU..=65535 - overhead`.
///
/// The upper bound is what an encapsulated packet can carry at all (the outer IP
/// packet is at most 65535 bytes). It matters on a loopback underlay (MTU 65536, as in
/// single-host tests): VXLAN gives 65485 there, not a cap like 9000; pods on such a
/// node only talk through the kernel's loopback, which takes that size. The lower
/// bound keeps a misreported tiny underlay from producing an unusable pod interface.
pub fn pod_mtu(underlay_mtu: u32, backend_overhead: u32) -> u16 {
    let min = u32::from(MIN_POD_MTU);
    let max = MAX_IP_PACKET.saturating_sub(backend_overhead).max(min);
    let mtu = underlay_mtu
        .saturating_sub(backend_overhead)
        .clamp(min, max);
    u16::try_from(mtu).unwrap_or(u16::MAX)
}

/// The parts of a route [`pick_default`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSummary {
    /// The routing table (254 is `main`).
    pub table: u32,
    /// The destination prefix length (0 for a default route).
    pub dst_len: u8,
    /// A plain unicast route (not `unreachable`, `blackhole`, ...).
    pub unicast: bool,
    /// The output interface (of the first next hop, for a multipath route).
    pub oif: Option<u32>,
    /// The metric (lowest wins).
    pub metric: u32,
    /// The preferred source address, if the route names one.
    pub pref_src: Option<IpAddr>,
}

impl RouteSummary {
    /// Summarizes a kernel route message.
    pub fn of(msg: &RouteMessage) -> Self {
        let mut s = RouteSummary {
            table: u32::from(msg.header.table),
            dst_len: msg.header.destination_prefix_length,
            unicast: msg.header.kind == RouteType::Unicast,
            oif: None,
            metric: 0,
            pref_src: None,
        };
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Table(t) => s.table = *t,
                RouteAttribute::Oif(i) => s.oif = Some(*i),
                RouteAttribute::MultiPath(hops) if s.oif.is_none() => {
                    s.oif = hops.first().map(|h| h.interface_index);
                }
                RouteAttribute::Priority(m) => s.metric = *m,
                RouteAttribute::PrefSource(RouteAddress::Inet(a)) => {
                    s.pref_src = Some(IpAddr::V4(*a));
                }
                RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => {
                    s.pref_src = Some(IpAddr::V6(*a));
                }
                _ => {}
            }
        }
        s
    }
}

/// The default route the kernel would use: in table `main`, unicast, with an output
/// interface, lowest metric first (the first listed among equals).
pub fn pick_default(routes: &[RouteSummary]) -> Option<&RouteSummary> {
    routes
        .iter()
        .filter(|r| {
            r.table == u32::from(RouteHeader::RT_TABLE_MAIN)
                && r.dst_len == 0
                && r.unicast
                && r.oif.is_some()
        })
        .min_by_key(|r| r.metric)
}

/// The parts of an address [`pick_address`] and [`interface_of`] look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSummary {
    /// The link holding it.
    pub index: u32,
    /// The address itself (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    /// Global scope (not link-local, host or site).
    pub global: bool,
    /// Usable as a source: not tentative, failed DAD, or deprecated.
    pub usable: bool,
}

impl AddrSummary {
    /// Summarizes a kernel address message; `None` if it carries no address.
    pub fn of(msg: &AddressMessage) -> Option<Self> {
        let mut local = None;
        let mut address = None;
        let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Flags(f) => flags = *f,
                _ => {}
            }
        }
        let bad = AddressFlags::Tentative | AddressFlags::Dadfailed | AddressFlags::Deprecated;
        Some(AddrSummary {
            index: msg.header.index,
            addr: local.or(address)?,
            global: msg.header.scope == AddressScope::Universe,
            usable: !flags.intersects(bad),
        })
    }
}

/// The first usable global address of the given family on link `index`.
pub fn pick_address(addrs: &[AddrSummary], index: u32, v4: bool) -> Option<IpAddr> {
    addrs
        .iter()
        .find(|a| a.index == index && a.addr.is_ipv4() == v4 && a.global && a.usable)
        .map(|a| a.addr)
}

/// The underlay of the node's default route: IPv4's, else IPv6's.
/// [`HostError::NoDefaultRoute`] when there is neither.
pub async fn default_route_interface() -> Result<Underlay, HostError> {
    let conn = Conn::open()?;
    let h = &conn.handle;
    for v4 in [true, false] {
        let routes = dump_routes(h, v4).await?;
        let Some(route) = pick_default(&routes) else {
            continue;
        };
        let Some(index) = route.oif else { continue };
        let (ifname, mtu) = link_name_mtu(h, index).await?;
        let ip = match route.pref_src {
            Some(ip) => ip,
            None => pick_address(&dump_addresses(h).await?, index, v4).ok_or_else(|| {
                HostError::NoGlobalAddress {
                    ifname: ifname.clone(),
                    family: if v4 { 4 } else { 6 },
                }
            })?,
        };
        return Ok(Underlay { ifname, ip, mtu });
    }
    Err(HostError::NoDefaultRoute)
}

/// The interface holding `ip`, with its MTU (an address on `lo` gives `lo`, MTU 65536).
/// [`HostError::AddressNotFound`] if no interface holds it.
pub async fn interface_of(ip: IpAddr) -> Result<Underlay, HostError> {
    let conn = Conn::open()?;
    let h = &conn.handle;
    let addrs = dump_addresses(h).await?;
    let found = addrs
        .iter()
        .find(|a| a.addr == ip)
        .ok_or(HostError::AddressNotFound { ip })?;
    let (ifname, mtu) = link_name_mtu(h, found.index).await?;
    Ok(Underlay { ifname, ip, mtu })
}

/// Every route of one family, in every table, summarized.
async fn dump_routes(h: &Handle, v4: bool) -> Result<Vec<RouteSummary>, HostError> {
    let filter = if v4 {
        RouteMessageBuilder::<Ipv4Addr>::new().build()
    } else {
        RouteMessageBuilder::<Ipv6Addr>::new().build()
    };
    h.route()
        .get(filter)
        .execute()
        .map_ok(|m| RouteSummary::of(&m))
        .try_collect()
        .await
        .map_err(|e| HostError::RouteList(Box::new(e)))
}

/// Every address of every link, summarized.
async fn dump_addresses(h: &Handle) -> Result<Vec<AddrSummary>, HostError> {
    let msgs: Vec<AddressMessage> =
        h.address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| HostError::AddressList {
                dev: "all".into(),
                source: Box::new(e),
            })?;
    Ok(msgs.iter().filter_map(AddrSummary::of).collect())
}

/// The name and MTU of link `index`.
async fn link_name_mtu(h: &Handle, index: u32) -> Result<(String, u32), HostError> {
    let link = h
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(|e| HostError::LinkLookup {
            name: format!("#{index}"),
            source: Box::new(e),
        })?
        .ok_or(HostError::LinkIncomplete {
            index,
            what: "link",
        })?;
    let mut name = None;
    let mut mtu = None;
    for attr in &link.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => mtu = Some(*m),
            _ => {}
        }
    }
    let name = name.ok_or(HostError::LinkIncomplete {
        index,
        what: "name",
    })?;
    let mtu = mtu.ok_or(HostError::LinkIncomplete { index, what: "mtu" })?;
    Ok((name, mtu))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: u32, dst_len: u8, oif: Option<u32>, metric: u32) -> RouteSummary {
        RouteSummary {
            table,
            dst_len,
            unicast: true,
            oif,
            metric,
            pref_src: None,
        }
    }

    #[test]
    fn the_lowest_metric_main_table_default_wins() {
        let routes = vec![
            route(254, 24, Some(1), 0),
            route(100, 0, Some(2), 0),
            route(254, 0, Some(3), 600),
            route(254, 0, Some(4), 100),
            route(254, 0, Some(5), 100),
        ];
        assert_eq!(pick_default(&routes).and_then(|r| r.oif), Some(4));
    }

    #[test]
    fn unreachable_or_interfaceless_defaults_do_not_count() {
        let mut unreachable = route(254, 0, Some(1), 0);
        unreachable.unicast = false;
        let routes = vec![unreachable, route(254, 0, None, 0)];
        assert_eq!(pick_default(&routes), None);
        assert_eq!(pick_default(&[]), None);
    }

    #[test]
    fn route_summary_reads_the_kernel_message() {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(Ipv4Addr::new(192, 0, 2, 1))
            .output_interface(7)
            .priority(100)
            .pref_source(Ipv4Addr::new(192, 0, 2, 10))
            .build();
        assert_eq!(
            RouteSummary::of(&msg),
            RouteSummary {
                table: 254,
                dst_len: 0,
                unicast: true,
                oif: Some(7),
                metric: 100,
                pref_src: Some("192.0.2.10".parse().unwrap()),
            }
        );
    }

    fn addr(index: u32, a: &str, global: bool, usable: bool) -> AddrSummary {
        AddrSummary {
            index,
            addr: a.parse().unwrap(),
            global,
            usable,
        }
    }

    #[test]
    fn the_first_usable_global_address_of_the_family_on_the_link() {
        let addrs = vec![
            addr(1, "127.0.0.1", false, true),
            addr(2, "fe80::1", false, true),
            addr(2, "2001:db8::9", true, false),
            addr(2, "2001:db8::1", true, true),
            addr(3, "192.0.2.3", true, true),
            addr(2, "192.0.2.2", true, true),
            addr(2, "192.0.2.4", true, true),
        ];
        assert_eq!(
            pick_address(&addrs, 2, true),
            Some("192.0.2.2".parse().unwrap())
        );
        assert_eq!(
            pick_address(&addrs, 2, false),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(pick_address(&addrs, 1, true), None);
    }

    #[test]
    fn pod_mtu_subtracts_the_overhead() {
        assert_eq!(pod_mtu(1500, VXLAN_OVERHEAD), 1450);
        assert_eq!(pod_mtu(1500, UDP_OVERHEAD), 1472);
        assert_eq!(pod_mtu(9001, VXLAN_OVERHEAD + IPV6_UNDERLAY_EXTRA), 8931);
    }

    #[test]
    fn pod_mtu_on_loopback_is_what_one_ip_packet_can_carry() {
        assert_eq!(pod_mtu(65536, VXLAN_OVERHEAD), 65485);
        assert_eq!(pod_mtu(u32::MAX, 0), 65535);
    }

    #[test]
    fn pod_mtu_never_goes_below_the_minimum() {
        assert_eq!(pod_mtu(600, VXLAN_OVERHEAD), MIN_POD_MTU);
        assert_eq!(pod_mtu(0, VXLAN_OVERHEAD), MIN_POD_MTU);
        assert_eq!(pod_mtu(1500, u32::MAX), MIN_POD_MTU);
    }
}

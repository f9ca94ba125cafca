//! Adopting a pod tap of ours that lost its port.
//!
//! A tap outlives the dataplane (it is persistent), but the port that
//! described it can be lost: the process was killed between creating the
//! tap and saving the state file, or the state file it restarted from is
//! older than the tap. The daemon then asks for the port again and
//! `port_add` finds the interface name taken. Refusing would fail that pod
//! for good (the daemon's resync would retry forever), and deleting the tap
//! would cut the pod off for nothing, so a tap that is provably ours is
//! adopted: its queues are opened again and its configuration made what the
//! request asks, as a fresh tap would get it.
//!
//! Ours means: a tap (not a tun) with the flags tweed creates taps with
//! (multi-queue, virtio-net header, no packet info, persistent), with no
//! queue open (no process drives it: not a live port of this dataplane, not
//! a tap being created or removed right now), and with the MAC the request
//! asks for (tweed derives a pod's MAC from its address, so a tap of another
//! pod, or anybody else's, does not match). Anything else stays a conflict.

use rtnetlink::Handle;
use rtnetlink::packet_core::Nla;
use rtnetlink::packet_route::link::{InfoData, InfoTun, LinkAttribute, LinkInfo, LinkMessage};

use super::tap::{PodLink, check_name, configure, make_persistent, open_netns};
use tweed_sys::PortError;
use tweed_sys::netlink::{self as nl, with_netlink_on_this_thread};
use tweed_sys::tap::{self, TapQueue};

/// `IFLA_TUN_*` attributes (linux/if_link.h).
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_VNET_HDR: u16 = 5;
const IFLA_TUN_PERSIST: u16 = 6;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;
const IFLA_TUN_NUM_QUEUES: u16 = 8;
/// `IFF_TAP`, as `IFLA_TUN_TYPE` reports it.
const TYPE_TAP: u32 = 2;

/// What the kernel reports of a tun/tap device (`IFLA_INFO_DATA`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunInfo {
    /// `IFLA_TUN_TYPE`: 1 tun, 2 tap.
    pub kind: u32,
    /// Frames carry packet information (`IFF_NO_PI` not set).
    pub pi: bool,
    /// Frames carry a virtio-net header.
    pub vnet_hdr: bool,
    /// The device outlives its queues.
    pub persist: bool,
    /// The device has several queues.
    pub multi_queue: bool,
    /// Queues attached now (open file descriptors).
    pub queues: u32,
}

/// The tun attributes of `link`, if it reports them.
pub fn tun_info(link: &LinkMessage) -> Option<TunInfo> {
    let nlas = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Tun(nlas)) => Some(nlas),
            _ => None,
        }),
        _ => None,
    })?;
    let mut info = TunInfo::default();
    for nla in nlas {
        let InfoTun::Other(nla) = nla else { continue };
        let mut value = vec![0u8; nla.value_len()];
        nla.emit_value(&mut value);
        let number = match value.as_slice() {
            [b] => u32::from(*b),
            [a, b, c, d] => u32::from_ne_bytes([*a, *b, *c, *d]),
            _ => continue,
        };
        match nla.kind() {
            IFLA_TUN_TYPE => info.kind = number,
            IFLA_TUN_PI => info.pi = number != 0,
            IFLA_TUN_VNET_HDR => info.vnet_hdr = number != 0,
            IFLA_TUN_PERSIST => info.persist = number != 0,
            IFLA_TUN_MULTI_QUEUE => info.multi_queue = number != 0,
            IFLA_TUN_NUM_QUEUES => info.queues = number,
            _ => {}
        }
    }
    Some(info)
}

/// Why a tap is not one to adopt, or `None` if it is (see the module docs).
pub fn not_ours(info: &TunInfo, mac: Option<[u8; 6]>, want: [u8; 6]) -> Option<&'static str> {
    if info.kind != TYPE_TAP || info.pi || !info.vnet_hdr || !info.multi_queue {
        return Some("it is not a tap as tweed makes them");
    }
    if !info.persist {
        return Some("it is not persistent");
    }
    if info.queues != 0 {
        return Some("a process holds its queues");
    }
    if mac != Some(want) {
        return Some("its MAC is not the pod's");
    }
    None
}

/// Opens `queues` queues of the tap `link.ifname` in the pod's netns if it is
/// ours (see the module docs) and configures it as `link` asks.
/// [`PortError::LinkExists`] if it is not ours (or is gone again); on a
/// failure after the queues are open, they are closed and the tap stays as
/// it was found (persistent).
pub fn adopt_pod_tap(link: &PodLink, queues: usize) -> Result<Vec<TapQueue>, PortError> {
    check_name(&link.ifname)?;
    let pod = open_netns(&link.netns)?;
    let link = link.clone();
    pod.run(move || with_netlink_on_this_thread(|h| adopt_here(h, link, queues)))
        .map_err(|source| PortError::NetnsEnter {
            netns: pod.path().to_path_buf(),
            source,
        })?
}

/// On a thread inside the pod netns: checks, opens the queues, configures.
async fn adopt_here(h: Handle, link: PodLink, queues: usize) -> Result<Vec<TapQueue>, PortError> {
    let taken = || PortError::LinkExists {
        netns: link.netns.clone(),
        ifname: link.ifname.clone(),
    };
    let found = nl::find_link(&h, &link.ifname)
        .await
        .map_err(|source| PortError::LinkLookup {
            netns: link.netns.clone(),
            ifname: link.ifname.clone(),
            source,
        })?;
    let Some(found) = found else {
        return Err(taken());
    };
    let why = match tun_info(&found) {
        None => Some("it is not a tap"),
        Some(info) => not_ours(&info, nl::link_mac(&found), link.mac),
    };
    if let Some(why) = why {
        tracing::info!(ifname = %link.ifname, netns = %link.netns.display(), why, "the pod's interface name is taken by a link that is not an orphaned tap of ours");
        return Err(taken());
    }
    let qs = tap::open_tap_queues(&link.ifname, queues).map_err(|source| PortError::TapOpen {
        netns: link.netns.clone(),
        ifname: link.ifname.clone(),
        source,
    })?;
    make_persistent(&qs, &link.ifname)?;
    configure(&h, &link, true).await?;
    Ok(qs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x0a, 0x58, 10, 244, 0, 2];

    fn ours() -> TunInfo {
        TunInfo {
            kind: TYPE_TAP,
            pi: false,
            vnet_hdr: true,
            persist: true,
            multi_queue: true,
            queues: 0,
        }
    }

    #[test]
    fn an_orphaned_tap_of_ours_with_the_pods_mac_is_adopted() {
        assert_eq!(not_ours(&ours(), Some(MAC), MAC), None);
    }

    #[test]
    fn anything_else_is_not() {
        let cases = [
            (TunInfo { kind: 1, ..ours() }, Some(MAC)),
            (TunInfo { pi: true, ..ours() }, Some(MAC)),
            (
                TunInfo {
                    vnet_hdr: false,
                    ..ours()
                },
                Some(MAC),
            ),
            (
                TunInfo {
                    multi_queue: false,
                    ..ours()
                },
                Some(MAC),
            ),
            (
                TunInfo {
                    persist: false,
                    ..ours()
                },
                Some(MAC),
            ),
            (
                TunInfo {
                    queues: 2,
                    ..ours()
                },
                Some(MAC),
            ),
            (ours(), Some([0x0a, 0x58, 10, 244, 0, 3])),
            (ours(), None),
        ];
        for (info, mac) in cases {
            assert!(not_ours(&info, mac, MAC).is_some(), "{info:?} {mac:?}");
        }
    }
}

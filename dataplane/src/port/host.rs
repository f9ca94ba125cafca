//! The host port (`tweed0`): a persistent multi-queue tap in the dataplane's
//! own netns through which the node's kernel reaches pods and everything
//! outside the cluster is handed to the kernel.
//!
//! Opening creates the tap or re-attaches to the one a previous dataplane
//! left behind, sets its MTU and brings it up, and returns the kernel-side
//! MAC (frames to the kernel must carry it as destination).

use super::tap::{check_name, clear_persist, delete_tap_here, lookup};
use tweed_sys::PortError;
use tweed_sys::netlink::{self as nl, current_netns_label, with_netlink_here};
use tweed_sys::tap::{self, TapQueue};

/// Opens (creating or re-attaching) the host tap `name` with `queues` queues
/// in the calling thread's netns; returns the queues and the kernel-side MAC.
/// A tap created here is removed again if a later step fails.
pub fn open_host_port(
    name: &str,
    queues: usize,
    mtu: u16,
) -> Result<(Vec<TapQueue>, [u8; 6]), PortError> {
    check_name(name)?;
    let owned = name.to_string();
    let existed = with_netlink_here(move |h| async move {
        nl::link_exists(&h, &owned)
            .await
            .map_err(|source| PortError::LinkLookup {
                netns: current_netns_label(),
                ifname: owned,
                source,
            })
    })?;
    let qs = tap::open_tap_queues(name, queues).map_err(|source| PortError::TapOpen {
        netns: current_netns_label(),
        ifname: name.to_string(),
        source,
    })?;
    match configure(name, mtu, &qs) {
        Ok(mac) => Ok((qs, mac)),
        Err(e) => {
            if !existed {
                clear_persist(&qs);
            }
            Err(e)
        }
    }
}

fn configure(name: &str, mtu: u16, qs: &[TapQueue]) -> Result<[u8; 6], PortError> {
    super::tap::make_persistent(qs, name)?;
    let name = name.to_string();
    with_netlink_here(move |h| async move {
        let netns = current_netns_label();
        let index = lookup(&h, &netns, &name).await?;
        nl::set_mtu(&h, index, u32::from(mtu))
            .await
            .map_err(|source| PortError::LinkSetMtu {
                netns: netns.clone(),
                ifname: name.clone(),
                mtu,
                source,
            })?;
        nl::set_up(&h, index)
            .await
            .map_err(|source| PortError::LinkUp {
                netns: netns.clone(),
                ifname: name.clone(),
                source,
            })?;
        let link = nl::find_link(&h, &name)
            .await
            .map_err(|source| PortError::LinkLookup {
                netns: netns.clone(),
                ifname: name.clone(),
                source,
            })?;
        link.as_ref()
            .and_then(nl::link_mac)
            .ok_or(PortError::LinkNoMac {
                netns,
                ifname: name,
            })
    })
}

/// Removes the host tap: clears persist, closes `queues` and deletes the
/// link if it is still there. Idempotent.
pub fn remove_host_port(name: &str, queues: Vec<TapQueue>) -> Result<(), PortError> {
    check_name(name)?;
    clear_persist(&queues);
    drop(queues);
    delete_tap_here(name)
}

//! Pod ports: `port_add` and `port_remove`, attaching a port's tap to the
//! tables and the workers, and restoring the ports of a previous run.
//!
//! `port_add` runs in three steps so that its slow part holds no lock:
//! 1. under `inner`, check the name and addresses against the ports and the
//!    other adds in progress, and reserve them (and the pod's interface);
//! 2. with no lock, make the tap in the pod's netns: create it, or wait for
//!    a pending removal of a tap of that name, or adopt a tap of ours that
//!    lost its port ([`crate::port::adopt`]);
//! 3. under `writes` and `inner`, attach it, then commit (save or undo).
//!
//! The reservation is dropped at step 3 or when the add fails, whichever
//! comes first.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::done::Done;
use super::plan::{Reservation, Taken};
use super::state::{Inner, PortState};
use super::{Control, REMOVAL_WAIT};
use crate::api::state::{RemovalRecord, StateFile};
use crate::daemon::shared::TapHandles;
use crate::daemon::sources::port_token;
use crate::port::tap::PodLink;
use crate::table::endpoints::Mac;
use crate::table::nexthop::{NextHop, PortId};
use crate::table::peers::Peer;
use tweed_api::dataplane::proto::{ApiError, MacAddr, PortAdd, PortInfo, PortReply, ResponseBody};
use tweed_sys::PortError;
use tweed_sys::tap::TapQueue;

/// Holds a reservation until the add attaches its port or fails.
struct Reserved<'a> {
    control: &'a Control,
    token: Option<u64>,
}

impl Reserved<'_> {
    /// Drops the reservation under a lock the caller holds.
    fn release(mut self, inner: &mut Inner) {
        if let Some(token) = self.token.take() {
            inner.reserved.remove(&token);
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take()
            && let Ok(mut inner) = self.control.lock()
        {
            inner.reserved.remove(&token);
        }
    }
}

impl Control {
    /// `port_add`: reserve, make the tap without a lock, attach and commit.
    pub(super) fn port_add_request(&self, args: PortAdd) -> Result<ResponseBody, ApiError> {
        let link = pod_link(&args, self.config.mtu)?;
        let reserved = self.reserve(&args)?;
        let (queues, adopted) = self.open_tap(&link)?;
        let handles = Arc::new(TapHandles { queues });
        let writes = self.lock_writes()?;
        let attached = {
            let mut inner = self.lock()?;
            reserved.release(&mut inner);
            let id = inner.writer.endpoints().free_port();
            let info = PortInfo {
                id,
                name: args.name,
                netns: args.netns,
                ifname: args.ifname,
                mac: MacAddr(link.mac),
                ipv4: args.ipv4,
                ipv6: args.ipv6,
                mtu: u32::from(link.mtu),
            };
            let state = PortState {
                info: info.clone(),
                ingress: Default::default(),
                egress: Default::default(),
                handles,
            };
            self.attach(&mut inner, state).map(|()| (id, info))
        };
        let (id, info) = match attached {
            Ok(attached) => attached,
            Err((e, state)) => {
                drop(writes);
                if !adopted {
                    self.destroy_tap(&state);
                }
                return Err(e);
            }
        };
        self.commit(writes, Done::PortAdded { id, adopted })?;
        if adopted {
            tracing::info!(port = %info.name, ifname = %info.ifname, netns = %info.netns, "adopted the pod's existing tap");
        }
        Ok(ResponseBody::Port(PortReply { port: info }))
    }

    /// Checks the port's name, addresses and interface against the ports
    /// and the adds in progress ([`super::plan::reservation`]), and claims them.
    fn reserve(&self, args: &PortAdd) -> Result<Reserved<'_>, ApiError> {
        let mut inner = self.lock()?;
        let reserved: Vec<&Reservation> = inner.reserved.values().collect();
        let endpoints = inner.writer.endpoints();
        let taken = Taken {
            port_names: inner.ports.values().map(|p| p.info.name.as_str()),
            owner_of: |ip| endpoints.by_ip(ip).map(|owner| owner.name.clone()),
            reserved: &reserved,
        };
        let reservation = super::plan::reservation(args, taken)?;
        let token = inner.next_reservation;
        inner.next_reservation += 1;
        inner.reserved.insert(token, reservation);
        Ok(Reserved {
            control: self,
            token: Some(token),
        })
    }

    /// Makes the pod's tap, holding no lock; true if an existing tap was
    /// adopted. If the interface name is taken while a removal of a tap of
    /// that name is pending (the pod is added again right after its removal,
    /// in the same netns), waits for the removal and tries once more. If it
    /// is taken by a tap of ours that no port holds (its port was lost: a
    /// crash between creating the tap and saving, or an old state file),
    /// adopts it.
    fn open_tap(&self, link: &PodLink) -> Result<(Vec<TapQueue>, bool), ApiError> {
        let workers = self.registrars.len();
        let mut waited = false;
        loop {
            let finished = self.reaper.finished();
            match crate::port::tap::create_pod_tap(link, workers) {
                Ok(queues) => return Ok((queues, false)),
                Err(PortError::LinkExists { .. })
                    if !waited && self.reaper.may_hold(&link.ifname, finished) =>
                {
                    if !self.reaper.wait_for(&link.ifname, REMOVAL_WAIT) {
                        tracing::warn!(ifname = %link.ifname, "a tap removal is taking long; trying the port_add anyway");
                    }
                    waited = true;
                }
                Err(e @ PortError::LinkExists { .. }) => {
                    return match crate::port::adopt::adopt_pod_tap(link, workers) {
                        Ok(queues) => Ok((queues, true)),
                        Err(PortError::LinkExists { .. }) => Err(port_error(e)),
                        Err(other) => Err(port_error(other)),
                    };
                }
                Err(e) => return Err(port_error(e)),
            }
        }
    }

    /// Puts a port with open queues into the tables, the port handles and
    /// the workers' sources, and publishes. On failure nothing changed,
    /// and the port is given back (its tap is the caller's to remove).
    pub(super) fn attach(
        &self,
        inner: &mut Inner,
        state: PortState,
    ) -> Result<(), (ApiError, Box<PortState>)> {
        let endpoint = match super::endpoint::endpoint_of(&state) {
            Ok(endpoint) => endpoint,
            Err(e) => return Err((e, Box::new(state))),
        };
        if let Err(e) = inner.writer.upsert_endpoint(endpoint) {
            return Err((ApiError::conflict(e.to_string()), Box::new(state)));
        }
        let id = state.info.id;
        inner.ports.insert(id, state.clone());
        self.publish(inner);
        for (worker, registrar) in self.registrars.iter().enumerate() {
            if let Some(queue) = state.handles.queues.get(worker)
                && let Err(e) = registrar.add(queue.as_raw_fd(), port_token(id))
            {
                let state = self.detach(inner, id).unwrap_or(state);
                let e = ApiError::io_chain("register the tap with the workers", &e);
                return Err((e, Box::new(state)));
            }
        }
        Ok(())
    }

    /// Takes port `id` out of the tables, the port handles and the workers'
    /// sources, and publishes; returns it (its tap still exists).
    pub(super) fn detach(&self, inner: &mut Inner, id: PortId) -> Option<PortState> {
        let state = inner.ports.remove(&id)?;
        let _ = inner.writer.remove_endpoint(id);
        self.publish(inner);
        // After publishing: an io_uring worker woken now sees the port gone.
        self.unregister(&state);
        Some(state)
    }

    /// `port_remove`: detaches the port and lists its tap as being removed;
    /// the reaper gets it once the change is saved.
    pub(super) fn port_remove(
        &self,
        inner: &mut Inner,
        name: &str,
    ) -> Result<(ResponseBody, Done), ApiError> {
        let id = inner.port_id(name)?;
        let Some(state) = self.detach(inner, id) else {
            return Err(ApiError::not_found(format!("no port named {name:?}")));
        };
        let removal = inner.next_removal;
        inner.next_removal += 1;
        inner.removing.insert(
            removal,
            RemovalRecord {
                name: state.info.name.clone(),
                netns: state.info.netns.clone(),
                ifname: state.info.ifname.clone(),
            },
        );
        Ok((ResponseBody::empty(), Done::PortRemoved { removal, state }))
    }

    fn unregister(&self, state: &PortState) {
        for (worker, registrar) in self.registrars.iter().enumerate() {
            if let Some(queue) = state.handles.queues.get(worker) {
                registrar.delete(queue.as_raw_fd());
            }
        }
    }

    /// Deletes a port's tap (blocks on netlink: call it without the locks).
    pub(super) fn destroy_tap(&self, state: &PortState) {
        let netns = Path::new(&state.info.netns);
        if let Err(e) =
            crate::port::tap::delete_pod_tap(netns, &state.info.ifname, &state.handles.queues)
        {
            tracing::warn!(port = %state.info.name, error = %e, "could not delete the pod's tap");
        }
    }

    /// Re-attaches the ports, peers, routes and policy of a previous run from
    /// the state file. Ports whose pod is gone are dropped (and logged).
    /// Runs before the API serves, so holding the lock across the taps'
    /// re-attachment delays nobody.
    pub fn restore(&self) -> Result<usize, ApiError> {
        let path = self.config.state_file();
        let Some(state) = crate::api::state::load(&path)
            .map_err(|e| ApiError::io_chain("read the state file", &e))?
        else {
            return Ok(0);
        };
        let mut inner = self.lock()?;
        self.finish_listed_removals(&mut inner, &state);
        for (prefix, via) in crate::daemon::persist::routes_of(&state) {
            if inner.writer.set_route(prefix, NextHop::from(via)).is_ok() {
                inner.static_routes.insert(prefix, via);
            }
        }
        for peer in crate::daemon::persist::peers_of(&state) {
            if let Err(e) = inner.writer.upsert_peer(Peer::from(peer)) {
                tracing::warn!(error = %e, "could not restore a peer");
            }
        }
        let mut restored = 0;
        for (info, ingress, egress) in crate::daemon::persist::ports_of(&state) {
            let queues = match crate::port::tap::reattach_pod_tap(
                Path::new(&info.netns),
                &info.ifname,
                self.registrars.len(),
            ) {
                Ok(queues) => queues,
                Err(e) => {
                    tracing::warn!(port = %info.name, error = %e, "the pod's tap is gone; dropping the port");
                    continue;
                }
            };
            let state = PortState {
                info,
                ingress,
                egress,
                handles: Arc::new(TapHandles { queues }),
            };
            match self.attach(&mut inner, state) {
                Ok(()) => restored += 1,
                Err((e, state)) => {
                    tracing::warn!(port = %state.info.name, error = %e, "could not restore a port; removing its tap");
                    self.destroy_tap(&state);
                }
            }
        }
        self.publish(&mut inner);
        let saved = inner.state_file();
        drop(inner);
        self.save_logged(&saved, "after restoring the previous state");
        Ok(restored)
    }

    /// Deletes the taps a previous process listed as being removed, before
    /// any port is re-attached and before the API serves: nothing can have
    /// taken their names since. A removal whose interface a listed port now
    /// has (same netns, same name) had finished before that port was added.
    /// A tap that cannot be deleted stays listed for the next start.
    fn finish_listed_removals(&self, inner: &mut Inner, state: &StateFile) {
        for removal in &state.removing {
            let reused = state.ports.iter().any(|p| {
                p.ifname == removal.ifname
                    && same_netns(Path::new(&p.netns), Path::new(&removal.netns))
            });
            if reused {
                continue;
            }
            let netns = Path::new(&removal.netns);
            match crate::port::tap::delete_pod_tap(netns, &removal.ifname, &[]) {
                Ok(()) => {
                    tracing::info!(port = %removal.name, "finished deleting the tap of a removed port")
                }
                Err(e @ PortError::NotATap { .. }) => {
                    tracing::warn!(port = %removal.name, error = %e, "the removed port's interface name now belongs to another link; leaving it")
                }
                Err(e) => {
                    tracing::error!(port = %removal.name, error = %e, "could not delete the tap of a removed port; the next start tries again");
                    let id = inner.next_removal;
                    inner.next_removal += 1;
                    inner.removing.insert(id, removal.clone());
                }
            }
        }
    }
}

/// How the pod's interface should look: the request's MAC (or one derived
/// from its address) and MTU (or the dataplane's).
fn pod_link(args: &PortAdd, default_mtu: u16) -> Result<PodLink, ApiError> {
    let mac = args
        .mac
        .map(|m| m.0)
        .unwrap_or_else(|| pod_mac(args.ipv4.map(IpAddr::V4).or(args.ipv6.map(IpAddr::V6))));
    let mtu = args.mtu.unwrap_or(u32::from(default_mtu));
    Ok(PodLink {
        netns: args.netns.clone().into(),
        ifname: args.ifname.clone(),
        mac,
        mtu: u16::try_from(mtu)
            .map_err(|_| ApiError::invalid(format!("mtu {mtu} is larger than 65535")))?,
        ipv4: args.ipv4,
        ipv6: args.ipv6,
    })
}

/// Whether two netns paths name the same namespace (same nsfs inode), e.g.
/// `/run/netns/x` and `/proc/PID/ns/net`. Paths that cannot be looked at are
/// compared as strings.
fn same_netns(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// A pod MAC derived from its address (Kubernetes' `0a:58` prefix:
/// locally administered, unicast).
fn pod_mac(ip: Option<IpAddr>) -> Mac {
    let tail = match ip {
        Some(IpAddr::V4(v4)) => v4.octets(),
        Some(IpAddr::V6(v6)) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
        None => [0, 0, 0, 1],
    };
    [0x0a, 0x58, tail[0], tail[1], tail[2], tail[3]]
}

/// The API error for a failed tap creation: the caller's mistakes (an
/// interface name already taken, a netns that does not exist) are told apart
/// from system failures.
fn port_error(e: PortError) -> ApiError {
    match e {
        PortError::LinkExists { .. } => ApiError::conflict(e.to_string()),
        PortError::NetnsOpen { .. } => ApiError::invalid(format!(
            "netns: {}",
            tweed_api::dataplane::proto::error_chain(&e)
        )),
        _ => ApiError::io_chain("create the pod's tap", &e),
    }
}

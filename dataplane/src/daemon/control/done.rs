//! What a change did, kept until its state file is written: then it is
//! finished (a removed port's tap goes to the reaper), or, when the write
//! fails, undone, so that a refused request leaves the tables as they were.
//!
//! Undo runs under the same `writes` lock as the change, so nothing else
//! changed in between and "as it was" is exact: the previous value of what
//! the change replaced.

use std::path::PathBuf;

use ipnet::IpNet;

use super::Control;
use super::state::{Inner, PortState};
use crate::daemon::reaper;
use crate::table::endpoints::Endpoint;
use crate::table::nexthop::{NextHop, PortId};
use tweed_api::dataplane::proto::{PeerSpec, RouteVia};

/// The undo (or finish) of one change.
#[derive(Debug)]
pub(super) enum Done {
    /// A port was attached, its tap created (or adopted: it existed, and
    /// stays if the change is undone).
    PortAdded { id: PortId, adopted: bool },
    /// A port was detached and its tap listed as removal `removal`; the tap
    /// still exists and its queues are open.
    PortRemoved { removal: u64, state: PortState },
    /// Peer `name` was set or removed; `previous` is what it was.
    Peer {
        name: String,
        previous: Option<PeerSpec>,
    },
    /// The route for `prefix` was set or removed.
    Route {
        prefix: IpNet,
        previous_static: Option<RouteVia>,
        previous_hop: Option<NextHop>,
    },
    /// Ports got new rule sets; these are their previous states and
    /// endpoints (compiled classifiers included, so undo compiles nothing).
    Policy {
        previous: Vec<(PortState, Endpoint)>,
    },
}

impl Control {
    /// Finishes a change whose state file was written.
    pub(super) fn finish(&self, done: Done) {
        if let Done::PortRemoved { removal, state } = done {
            self.remove_tap_later(removal, state);
        }
    }

    /// Undoes a change whose state file could not be written, and publishes
    /// the result. Returns the port whose tap must now be removed (outside
    /// the locks: that blocks on netlink).
    pub(super) fn undo(&self, inner: &mut Inner, done: Done) -> Option<PortState> {
        let leftover = match done {
            Done::PortAdded { id, adopted } => {
                let state = self.detach(inner, id);
                state.filter(|_| !adopted)
            }
            Done::PortRemoved { removal, state } => {
                inner.removing.remove(&removal);
                match self.attach(inner, state) {
                    Ok(()) => None,
                    Err((e, state)) => {
                        tracing::error!(port = %state.info.name, error = %e, "could not attach a port again while undoing its removal; removing its tap");
                        Some(*state)
                    }
                }
            }
            edit @ (Done::Peer { .. } | Done::Route { .. } | Done::Policy { .. }) => {
                inner.undo_edit(edit);
                None
            }
        };
        self.publish(inner);
        leftover
    }

    /// Hands the tap of a removed port to the reaper; without a reaper
    /// thread, deletes it now.
    fn remove_tap_later(&self, removal: u64, state: PortState) {
        let PortState { info, handles, .. } = state;
        let job = reaper::Job {
            id: removal,
            port: info.name,
            netns: PathBuf::from(info.netns),
            ifname: info.ifname,
            handles,
        };
        if let Err(job) = self.reaper.submit(job) {
            if let Ok(mut inner) = self.lock() {
                inner.removing.remove(&removal);
            }
            if let Err(e) =
                crate::port::tap::delete_pod_tap(&job.netns, &job.ifname, &job.handles.queues)
            {
                tracing::warn!(port = %job.port, error = %e, "could not delete the pod's tap");
            }
        }
    }
}

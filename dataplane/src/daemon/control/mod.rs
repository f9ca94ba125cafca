//! The control side: applies config requests to the tables and the ports,
//! publishes the result to the workers, and persists it.
//!
//! Planner and executor. The decisions are pure and tested without root:
//! [`state`] (the state in memory, the changes to peers, static routes and
//! rule sets, their undo, and the state file it implies), [`plan`] (whether a
//! `port_add`'s name, addresses and interface are free), [`services`] (the
//! Service set after a `service_set`), [`endpoint`] (a port's rule sets
//! compiled). This module and [`ports`] execute: they take the locks, run the
//! system steps (taps, the workers' sources, the reaper), publish, write the
//! state file, and undo on failure ([`done`]); [`report`] answers the queries
//! (`port_list`, `stats`, `dump`, `trace`).
//!
//! Two locks, always taken in this order, and never by the workers:
//!
//! - `writes` serializes changes, each from its first edit until its state
//!   file is written (or its edits are undone), so the file is written in
//!   the order of the changes and an undo never meets another request's
//!   edit. Reads never take it.
//! - `inner`, the state in memory, is held for in-memory work only: never
//!   across a call that can block (entering a netns, creating a tap,
//!   netlink, writing the state file). `port_list`, `stats`, `trace` and the
//!   other reads answer while a change waits on the kernel or the disk.
//!
//! A change is durable before it is acknowledged. Its edits are applied and
//! published, then the state file is written; if that fails (a full disk),
//! the edits are undone ([`done`]) and the request is refused with the
//! cause, so the file and the tables never disagree about an acknowledged
//! change. Native Services are the exception ([`services`]): their record
//! is the control daemon's store, which pushes them all again when this
//! process restarts.
//!
//! `port_add` makes the pod's tap, the slow and possibly blocking part,
//! before it takes either lock, holding a reservation of its port name,
//! addresses and interface so that no concurrent request claims them
//! meanwhile ([`ports`]). A request is checked against the current state
//! before anything changes, and a failure after a system step (a tap half
//! made) undoes that step, so a failed request leaves nothing behind.
//!
//! `port_remove` answers before the kernel has deleted the tap: the tap is
//! listed under `removing` in the state file and deleted by the reaper
//! thread ([`super::reaper`]), which then drops it from the list. A start
//! first finishes the removals its state file lists.

mod done;
mod endpoint;
mod plan;
mod ports;
mod report;
mod services;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::done::Done;
use self::state::Inner;
use super::config::Config;
use super::io::Registrar;
use super::reaper::Reaper;
use super::shared::{PortIo, Shared};
use crate::api::state::StateFile;
use crate::table::tables::TablesWriter;
use tweed_api::dataplane::proto::{
    ApiError, PeersReply, PolicySet, PortsReply, Request, ResponseBody, RoutesReply,
};

/// How long a `port_add` waits for the removal of a tap that still holds
/// its interface name.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

/// The control side of a running dataplane.
#[derive(Debug)]
pub struct Control {
    config: Config,
    shared: Arc<Shared>,
    /// Each worker's sources, by worker index.
    registrars: Vec<Registrar>,
    /// The workers' I/O back end, as shown (see [`super::io::Choice::describe`]).
    io: String,
    clock: Instant,
    writes: Mutex<()>,
    inner: Mutex<Inner>,
    reaper: Reaper,
}

impl Control {
    /// The control side over shared state, the workers' sources (their I/O
    /// back end `io`) and the tables writer the process started with.
    pub fn new(
        config: Config,
        shared: Arc<Shared>,
        registrars: Vec<Registrar>,
        io: String,
        clock: Instant,
        writer: TablesWriter,
    ) -> Self {
        let inner = Inner::new(writer);
        Self {
            config,
            shared,
            registrars,
            io,
            clock,
            writes: Mutex::new(()),
            inner: Mutex::new(inner),
            reaper: Reaper::default(),
        }
    }

    /// Starts the thread that deletes the taps of removed ports. Until it
    /// runs, `port_remove` deletes them before answering.
    pub fn start_reaper(self: &Arc<Self>) -> std::io::Result<()> {
        let control = Arc::downgrade(self);
        self.reaper.start(move |id, deleted| {
            if let Some(control) = control.upgrade() {
                control.removal_done(id, deleted);
            }
        })
    }

    /// Waits up to `timeout` for the pending tap removals (at shutdown);
    /// false if some are left, listed for the next start.
    pub fn finish_removals(&self, timeout: Duration) -> bool {
        self.reaper.wait_idle(timeout)
    }

    /// The reaper is done with removal `id`: drop it from the list and save
    /// (unless the tap could not be deleted: it stays listed, and the next
    /// start tries again), then wake a `port_add` waiting for the name. A
    /// save that fails leaves the removal listed in the file, which is
    /// harmless: the next start finds that tap gone.
    fn removal_done(&self, id: u64, deleted: bool) {
        if deleted && let Ok(_writes) = self.lock_writes() {
            let state = self.lock().map(|mut inner| {
                inner.removing.remove(&id);
                inner.state_file()
            });
            if let Ok(state) = state {
                self.save_logged(&state, "after deleting a removed port's tap");
            }
        }
        self.reaper.finish(id);
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, ApiError> {
        self.inner
            .lock()
            .map_err(|_| ApiError::io("lock the control state", "a previous request panicked"))
    }

    fn lock_writes(&self) -> Result<MutexGuard<'_, ()>, ApiError> {
        self.writes
            .lock()
            .map_err(|_| ApiError::io("lock the control state", "a previous request panicked"))
    }

    /// Handles one validated request.
    pub fn handle(&self, request: Request) -> Result<ResponseBody, ApiError> {
        match request {
            Request::PortAdd(args) => self.port_add_request(args),
            Request::PortRemove(args) => self.change(|c, inner| c.port_remove(inner, &args.name)),
            Request::PeerSet(spec) => self.edit(|inner| inner.peer_set(spec)),
            Request::PeerRemove(args) => self.edit(|inner| inner.peer_remove(&args.name)),
            Request::RouteSet(spec) => self.edit(|inner| inner.route_set(spec)),
            Request::RouteRemove(args) => self.edit(|inner| inner.route_remove(args.prefix)),
            Request::PolicySet(args) => self.policy_set_many(vec![args]),
            Request::PolicySetMany(args) => self.policy_set_many(args.sets),
            Request::ServiceSet(args) => self.service_set(args),
            Request::PortList(_) => Ok(ResponseBody::Ports(PortsReply {
                ports: report::port_infos(&*self.lock()?),
            })),
            Request::PeerList(_) => Ok(ResponseBody::Peers(PeersReply {
                peers: self.lock()?.peer_specs(),
            })),
            Request::RouteList(_) => Ok(ResponseBody::Routes(RoutesReply {
                routes: report::route_infos(&*self.lock()?),
            })),
            Request::Stats(_) => Ok(self.stats()?),
            Request::Dump(_) => Ok(self.dump()?),
            Request::Trace(args) => self.trace(args),
        }
    }

    /// Runs one change: `edit` applies it under both locks and says what it
    /// did; then [`Self::commit`] makes it durable or undoes it.
    fn change(
        &self,
        edit: impl FnOnce(&Self, &mut Inner) -> Result<(ResponseBody, Done), ApiError>,
    ) -> Result<ResponseBody, ApiError> {
        let writes = self.lock_writes()?;
        let (body, done) = {
            let mut inner = self.lock()?;
            edit(self, &mut inner)?
        };
        self.commit(writes, done)?;
        Ok(body)
    }

    /// Runs one change that touches no system state: `edit`, a step of the
    /// planner ([`state`]), under both locks; then publishes and commits.
    fn edit(
        &self,
        edit: impl FnOnce(&mut Inner) -> Result<Done, ApiError>,
    ) -> Result<ResponseBody, ApiError> {
        self.change(|c, inner| {
            let done = edit(inner)?;
            c.publish(inner);
            Ok((ResponseBody::empty(), done))
        })
    }

    /// Replaces the policy of several ports: every port is looked up and
    /// every classifier compiled before anything changes; one publish. The
    /// compiling holds `writes` but not `inner`, so reads go on meanwhile.
    fn policy_set_many(&self, sets: Vec<PolicySet>) -> Result<ResponseBody, ApiError> {
        let writes = self.lock_writes()?;
        let targets = self.lock()?.policy_targets(sets)?;
        // Nothing else changes the ports while `writes` is held.
        let compiled = state::compile_targets(targets)?;
        let done = {
            let mut inner = self.lock()?;
            let done = inner.policy_apply(compiled)?;
            self.publish(&mut inner);
            done
        };
        self.commit(writes, done)?;
        Ok(ResponseBody::empty())
    }

    /// Writes the state file with a change applied (the caller holds
    /// `writes`, and the change is published). On success the change is
    /// finished (a removed port's tap goes to the reaper); on failure it is
    /// undone and refused, naming the cause.
    fn commit(&self, writes: MutexGuard<'_, ()>, done: Done) -> Result<(), ApiError> {
        let state = self.lock()?.state_file();
        let Err(e) = crate::api::state::save(&self.config.state_file(), &state) else {
            self.finish(done);
            return Ok(());
        };
        tracing::error!(path = %self.config.state_file().display(), error = %e, "could not save the state file; undoing the change");
        let leftover = self
            .lock()
            .ok()
            .and_then(|mut inner| self.undo(&mut inner, done));
        drop(writes);
        // Removing a tap blocks on netlink: after both locks are released.
        if let Some(state) = leftover {
            self.destroy_tap(&state);
        }
        Err(ApiError::io(
            "save the state file (the change was undone: free space in the state directory, then retry)",
            e,
        ))
    }

    /// Publishes the tables and the port handles to the workers.
    fn publish(&self, inner: &mut Inner) {
        let tables = inner.writer.publish();
        let current = self.shared.ports.load();
        let pods = inner
            .ports
            .iter()
            .map(|(id, p)| (*id, p.handles.clone()))
            .collect();
        self.shared.ports.store(Arc::new(PortIo {
            pods,
            host: current.host.clone(),
        }));
        self.shared.tables.store(tables);
    }

    /// Saves `state` where nobody waits for the answer (a start, a finished
    /// removal): a failure is logged, and the next save includes it all.
    fn save_logged(&self, state: &StateFile, when: &str) {
        if let Err(e) = crate::api::state::save(&self.config.state_file(), state) {
            tracing::error!(path = %self.config.state_file().display(), error = %e, "could not save the state file {when}");
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }
}

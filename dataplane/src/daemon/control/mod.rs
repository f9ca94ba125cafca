//! The control side: applies config requests to the tables and the ports,
//! publishes the result to the workers, and persists it.
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
mod edits;
mod plan;
mod ports;
mod report;
mod services;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use self::done::Done;
use self::plan::Reservation;
use super::config::Config;
use super::io::Registrar;
use super::reaper::Reaper;
use super::shared::{PortIo, Shared, TapHandles};
use crate::api::state::{RemovalRecord, StateFile};
use crate::table::nexthop::PortId;
use crate::table::service::ServicePort;
use crate::table::tables::TablesWriter;
use tweed_api::dataplane::proto::{
    ApiError, PeersReply, PortInfo, PortsReply, Request, ResponseBody, RouteVia, RoutesReply,
    RuleSetSpec,
};

/// How long a `port_add` waits for the removal of a tap that still holds
/// its interface name.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

/// A pod port as the control side keeps it.
#[derive(Debug, Clone)]
struct PortState {
    info: PortInfo,
    ingress: RuleSetSpec,
    egress: RuleSetSpec,
    handles: Arc<TapHandles>,
}

#[derive(Debug)]
struct Inner {
    writer: TablesWriter,
    ports: BTreeMap<PortId, PortState>,
    static_routes: BTreeMap<IpNet, RouteVia>,
    /// Taps of removed ports not yet deleted, by removal id (persisted).
    removing: BTreeMap<u64, RemovalRecord>,
    next_removal: u64,
    /// What the `port_add`s in progress have claimed, by their token.
    reserved: BTreeMap<u64, Reservation>,
    next_reservation: u64,
    /// The native Services, by name (not persisted: see `services`).
    services: BTreeMap<String, Vec<ServicePort>>,
}

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
        let inner = Inner {
            writer,
            ports: BTreeMap::new(),
            static_routes: BTreeMap::new(),
            removing: BTreeMap::new(),
            next_removal: 0,
            reserved: BTreeMap::new(),
            next_reservation: 0,
            services: BTreeMap::new(),
        };
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
                state_file(&inner)
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
            Request::PeerSet(spec) => self.change(|c, inner| c.peer_set(inner, spec)),
            Request::PeerRemove(args) => self.change(|c, inner| c.peer_remove(inner, &args.name)),
            Request::RouteSet(spec) => self.change(|c, inner| c.route_set(inner, spec)),
            Request::RouteRemove(args) => {
                self.change(|c, inner| c.route_remove(inner, args.prefix))
            }
            Request::PolicySet(args) => self.policy_set_many(vec![args]),
            Request::PolicySetMany(args) => self.policy_set_many(args.sets),
            Request::ServiceSet(args) => self.service_set(args),
            Request::PortList(_) => Ok(ResponseBody::Ports(PortsReply {
                ports: report::port_infos(&*self.lock()?),
            })),
            Request::PeerList(_) => Ok(ResponseBody::Peers(PeersReply {
                peers: report::peer_specs(&*self.lock()?),
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

    /// Writes the state file with a change applied (the caller holds
    /// `writes`, and the change is published). On success the change is
    /// finished (a removed port's tap goes to the reaper); on failure it is
    /// undone and refused, naming the cause.
    fn commit(&self, writes: MutexGuard<'_, ()>, done: Done) -> Result<(), ApiError> {
        let state = state_file(&*self.lock()?);
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

/// The state file for the state in memory.
fn state_file(inner: &Inner) -> StateFile {
    super::persist::state_of(
        inner
            .ports
            .values()
            .map(|p| (&p.info, &p.ingress, &p.egress)),
        &report::peer_specs(inner),
        &inner.static_routes,
        inner.removing.values(),
    )
}

fn port_id_of(inner: &Inner, name: &str) -> Result<PortId, ApiError> {
    inner
        .ports
        .values()
        .find(|p| p.info.name == name)
        .map(|p| p.info.id)
        .ok_or_else(|| ApiError::not_found(format!("no port named {name:?}")))
}

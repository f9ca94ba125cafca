//! The control side: applies config requests to the tables and the ports,
//! publishes the result to the workers, and persists it.
//!
//! One mutex serializes requests; workers never take it. A request is checked
//! against the current state before anything changes, and a failure after a
//! system step (a tap half made) undoes that step, so a failed request leaves
//! nothing behind.
//!
//! `port_remove` answers before the kernel has deleted the tap: the tap is
//! listed under `removing` in the state file and deleted by the reaper
//! thread ([`super::reaper`]), which then drops it from the list. A start
//! first finishes the removals its state file lists.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::config::Config;
use super::reaper::{self, Reaper};
use super::shared::{PortIo, Shared, TapHandles};
use super::trace::{self, TraceFlow};
use super::worker::port_token;
use crate::api::proto::{
    ActionStats, ApiError, ConntrackStats, DumpReply, MacAddr, NodeInfo, PeerSpec, PeersReply,
    PolicySet, PortAdd, PortInfo, PortReply, PortStats, PortsReply, Request, ResponseBody,
    RouteInfo, RouteSpec, RouteVia, RoutesReply, RuleSetSpec, StatsReply, TraceFrom, TraceRequest,
    WorkerStats, drops_by_name,
};
use crate::api::state::RemovalRecord;
use crate::api::trace::{TraceReply, route_target};
use crate::port::tap::PodLink;
use crate::sys::epoll::Epoll;
use crate::table::acl::{Classifier, RuleId};
use crate::table::endpoints::{Endpoint, Mac, RuleNames};
use crate::table::nexthop::{NextHop, PeerId, PortId};
use crate::table::peers::Peer;
use crate::table::tables::TablesWriter;

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
}

/// Why a `port_add` failed: its interface name is taken in the pod's netns
/// (maybe by a tap still being removed), or anything else.
#[derive(Debug)]
enum AddError {
    IfnameTaken(ApiError),
    Other(ApiError),
}

impl From<ApiError> for AddError {
    fn from(e: ApiError) -> Self {
        AddError::Other(e)
    }
}

/// The control side of a running dataplane.
#[derive(Debug)]
pub struct Control {
    config: Config,
    shared: Arc<Shared>,
    epolls: Vec<Arc<Epoll>>,
    clock: Instant,
    inner: Mutex<Inner>,
    reaper: Reaper,
}

impl Control {
    /// The control side over shared state, the workers' epoll sets and the
    /// tables writer the process started with.
    pub fn new(
        config: Config,
        shared: Arc<Shared>,
        epolls: Vec<Arc<Epoll>>,
        clock: Instant,
        writer: TablesWriter,
    ) -> Self {
        let inner = Inner {
            writer,
            ports: BTreeMap::new(),
            static_routes: BTreeMap::new(),
            removing: BTreeMap::new(),
            next_removal: 0,
        };
        Self {
            config,
            shared,
            epolls,
            clock,
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
    /// start tries again), then wake a `port_add` waiting for the name.
    fn removal_done(&self, id: u64, deleted: bool) {
        if let Ok(mut inner) = self.lock()
            && deleted
        {
            inner.removing.remove(&id);
            self.save(&inner);
        }
        self.reaper.finish(id);
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, ApiError> {
        self.inner
            .lock()
            .map_err(|_| ApiError::io("lock the control state", "a previous request panicked"))
    }

    /// Handles one validated request.
    pub fn handle(&self, request: Request) -> Result<ResponseBody, ApiError> {
        let mut inner = self.lock()?;
        let result = match request {
            Request::PortAdd(args) => {
                drop(inner);
                return self.port_add_request(args);
            }
            Request::PortRemove(args) => self.port_remove(&mut inner, &args.name),
            Request::PortList(_) => Ok(ResponseBody::Ports(PortsReply {
                ports: port_infos(&inner),
            })),
            Request::PeerSet(spec) => self.peer_set(&mut inner, spec),
            Request::PeerRemove(args) => self.peer_remove(&mut inner, &args.name),
            Request::PeerList(_) => Ok(ResponseBody::Peers(PeersReply {
                peers: peer_specs(&inner),
            })),
            Request::RouteSet(spec) => self.route_set(&mut inner, spec),
            Request::RouteRemove(args) => self.route_remove(&mut inner, args.prefix),
            Request::RouteList(_) => Ok(ResponseBody::Routes(RoutesReply {
                routes: route_infos(&inner),
            })),
            Request::PolicySet(args) => self.policy_set(&mut inner, args),
            Request::PolicySetMany(args) => self.policy_set_many(&mut inner, args.sets),
            Request::Stats(_) => Ok(self.stats(&inner)),
            Request::Dump(_) => Ok(self.dump(&inner)),
            Request::Trace(args) => self.trace(&inner, args),
        };
        if result.is_ok() && mutates(&result) {
            self.save(&inner);
        }
        result
    }

    /// `port_add`, saved when it succeeds. If the interface name is taken
    /// while a removal of a tap of that name is pending (the pod is added
    /// again right after its removal, in the same netns), waits for the
    /// removal without holding the lock and tries once more.
    fn port_add_request(&self, args: PortAdd) -> Result<ResponseBody, ApiError> {
        let mut waited = false;
        loop {
            let mut inner = self.lock()?;
            let finished = self.reaper.finished();
            match self.port_add(&mut inner, args.clone()) {
                Ok(body) => {
                    self.save(&inner);
                    return Ok(body);
                }
                Err(AddError::IfnameTaken(_))
                    if !waited && self.reaper.may_hold(&args.ifname, finished) =>
                {
                    drop(inner);
                    if !self.reaper.wait_for(&args.ifname, REMOVAL_WAIT) {
                        tracing::warn!(ifname = %args.ifname, "a tap removal is taking long; trying the port_add anyway");
                    }
                    waited = true;
                }
                Err(AddError::IfnameTaken(e) | AddError::Other(e)) => return Err(e),
            }
        }
    }

    fn port_add(&self, inner: &mut Inner, args: PortAdd) -> Result<ResponseBody, AddError> {
        if inner.ports.values().any(|p| p.info.name == args.name) {
            return Err(
                ApiError::conflict(format!("a port named {:?} already exists", args.name)).into(),
            );
        }
        for ip in args
            .ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(args.ipv6.map(IpAddr::V6))
        {
            if let Some(owner) = inner.writer.endpoints().by_ip(ip) {
                return Err(ApiError::conflict(format!(
                    "address {ip} already belongs to port {:?}",
                    owner.name
                ))
                .into());
            }
        }
        let id = inner.writer.endpoints().free_port();
        let mac = args
            .mac
            .map(|m| m.0)
            .unwrap_or_else(|| pod_mac(args.ipv4.map(IpAddr::V4).or(args.ipv6.map(IpAddr::V6))));
        let mtu = args.mtu.unwrap_or(u32::from(self.config.mtu));
        let link = PodLink {
            netns: args.netns.clone().into(),
            ifname: args.ifname.clone(),
            mac,
            mtu: u16::try_from(mtu)
                .map_err(|_| ApiError::invalid(format!("mtu {mtu} is larger than 65535")))?,
            ipv4: args.ipv4,
            ipv6: args.ipv6,
        };
        let queues =
            crate::port::tap::create_pod_tap(&link, self.epolls.len()).map_err(|e| match e {
                crate::port::PortError::LinkExists { .. } => AddError::IfnameTaken(port_error(e)),
                e => AddError::Other(port_error(e)),
            })?;
        let info = PortInfo {
            id,
            name: args.name,
            netns: args.netns,
            ifname: args.ifname,
            mac: MacAddr(mac),
            ipv4: args.ipv4,
            ipv6: args.ipv6,
            mtu,
        };
        let state = PortState {
            info: info.clone(),
            ingress: RuleSetSpec::default(),
            egress: RuleSetSpec::default(),
            handles: Arc::new(TapHandles { queues }),
        };
        self.attach(inner, state)?;
        Ok(ResponseBody::Port(PortReply { port: info }))
    }

    /// Puts a port with open queues into the tables, the port handles and
    /// the workers' epoll sets. On failure the tap is removed again.
    fn attach(&self, inner: &mut Inner, state: PortState) -> Result<(), ApiError> {
        let endpoint = endpoint_of(&state)?;
        if let Err(e) = inner.writer.upsert_endpoint(endpoint) {
            self.destroy_tap(&state);
            return Err(ApiError::conflict(e.to_string()));
        }
        let id = state.info.id;
        inner.ports.insert(id, state.clone());
        self.publish(inner);
        for (worker, epoll) in self.epolls.iter().enumerate() {
            if let Some(queue) = state.handles.queues.get(worker)
                && let Err(e) = epoll.add(queue.as_raw_fd(), port_token(id))
            {
                inner.ports.remove(&id);
                let _ = inner.writer.remove_endpoint(id);
                self.unregister(&state);
                self.publish(inner);
                self.destroy_tap(&state);
                return Err(ApiError::io("register the tap with the workers", e));
            }
        }
        Ok(())
    }

    fn port_remove(&self, inner: &mut Inner, name: &str) -> Result<ResponseBody, ApiError> {
        let id = port_id_of(inner, name)?;
        let Some(state) = inner.ports.remove(&id) else {
            return Err(ApiError::not_found(format!("no port named {name:?}")));
        };
        self.unregister(&state);
        let _ = inner.writer.remove_endpoint(id);
        self.publish(inner);
        self.remove_tap_later(inner, state);
        Ok(ResponseBody::empty())
    }

    /// Lists the port's tap as being removed (the request's save persists
    /// that together with the port's removal) and hands it to the reaper;
    /// without a reaper thread, deletes it now.
    fn remove_tap_later(&self, inner: &mut Inner, state: PortState) {
        let id = inner.next_removal;
        inner.next_removal += 1;
        let PortState { info, handles, .. } = state;
        inner.removing.insert(
            id,
            RemovalRecord {
                name: info.name.clone(),
                netns: info.netns.clone(),
                ifname: info.ifname.clone(),
            },
        );
        let job = reaper::Job {
            id,
            port: info.name,
            netns: PathBuf::from(info.netns),
            ifname: info.ifname,
            handles,
        };
        if let Err(job) = self.reaper.submit(job) {
            inner.removing.remove(&id);
            if let Err(e) =
                crate::port::tap::delete_pod_tap(&job.netns, &job.ifname, &job.handles.queues)
            {
                tracing::warn!(port = %job.port, error = %e, "could not delete the pod's tap");
            }
        }
    }

    fn unregister(&self, state: &PortState) {
        for (worker, epoll) in self.epolls.iter().enumerate() {
            if let Some(queue) = state.handles.queues.get(worker) {
                let _ = epoll.delete(queue.as_raw_fd());
            }
        }
    }

    fn destroy_tap(&self, state: &PortState) {
        let netns = Path::new(&state.info.netns);
        if let Err(e) =
            crate::port::tap::delete_pod_tap(netns, &state.info.ifname, &state.handles.queues)
        {
            tracing::warn!(port = %state.info.name, error = %e, "could not delete the pod's tap");
        }
    }

    fn peer_set(&self, inner: &mut Inner, spec: PeerSpec) -> Result<ResponseBody, ApiError> {
        if let Some((_, other)) = inner
            .writer
            .peers()
            .iter()
            .find(|(_, p)| p.underlay_ip == spec.underlay_ip && p.name != spec.name)
        {
            return Err(ApiError::conflict(format!(
                "underlay address {} already belongs to peer {:?}",
                spec.underlay_ip, other.name
            )));
        }
        inner
            .writer
            .upsert_peer(Peer::from(spec))
            .map_err(|e| ApiError::conflict(e.to_string()))?;
        self.publish(inner);
        Ok(ResponseBody::empty())
    }

    fn peer_remove(&self, inner: &mut Inner, name: &str) -> Result<ResponseBody, ApiError> {
        inner
            .writer
            .remove_peer(name)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        self.publish(inner);
        Ok(ResponseBody::empty())
    }

    fn route_set(&self, inner: &mut Inner, spec: RouteSpec) -> Result<ResponseBody, ApiError> {
        let prefix = spec.prefix.trunc();
        match inner.writer.route(prefix) {
            Some(NextHop::Local(_)) | Some(NextHop::Remote(_)) => {
                return Err(ApiError::conflict(format!(
                    "{prefix} is a pod or peer route; change the port or peer instead"
                )));
            }
            _ => {}
        }
        let hop = NextHop::from(spec.via);
        inner
            .writer
            .set_route(prefix, hop)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        inner.static_routes.insert(prefix, spec.via);
        self.publish(inner);
        Ok(ResponseBody::empty())
    }

    fn route_remove(&self, inner: &mut Inner, prefix: IpNet) -> Result<ResponseBody, ApiError> {
        let prefix = prefix.trunc();
        if inner.static_routes.remove(&prefix).is_none() {
            return Err(ApiError::not_found(format!("no static route for {prefix}")));
        }
        inner.writer.remove_route(prefix);
        self.publish(inner);
        Ok(ResponseBody::empty())
    }

    fn policy_set(&self, inner: &mut Inner, args: PolicySet) -> Result<ResponseBody, ApiError> {
        self.policy_set_many(inner, vec![args])
    }

    /// Replaces the policy of several ports: every port is looked up and
    /// every classifier compiled before anything changes; one publish.
    fn policy_set_many(
        &self,
        inner: &mut Inner,
        sets: Vec<PolicySet>,
    ) -> Result<ResponseBody, ApiError> {
        let mut next = Vec::with_capacity(sets.len());
        for set in sets {
            let id = port_id_of(inner, &set.name)?;
            let Some(mut state) = inner.ports.get(&id).cloned() else {
                return Err(ApiError::not_found(format!("no port named {:?}", set.name)));
            };
            state.ingress = set.ingress;
            state.egress = set.egress;
            let endpoint = endpoint_of(&state)?;
            next.push((id, state, endpoint));
        }
        for (id, state, endpoint) in next {
            // The port keeps its addresses, so this cannot clash with another.
            inner
                .writer
                .upsert_endpoint(endpoint)
                .map_err(|e| ApiError::conflict(e.to_string()))?;
            inner.ports.insert(id, state);
        }
        self.publish(inner);
        Ok(ResponseBody::empty())
    }

    fn stats(&self, inner: &Inner) -> ResponseBody {
        let (total, workers) = self.shared.totals();
        let pipeline = &total.pipeline;
        let ports = inner
            .ports
            .values()
            .map(|p| {
                let c = total.ports.get(&p.info.id).copied().unwrap_or_default();
                PortStats {
                    name: p.info.name.clone(),
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                }
            })
            .collect();
        let workers = workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerStats {
                id: i as u32,
                rx: w.underlay_rx
                    + w.host.rx_packets
                    + w.ports.values().map(|p| p.rx_packets).sum::<u64>(),
                tx: w.underlay_tx
                    + w.host.tx_packets
                    + w.ports.values().map(|p| p.tx_packets).sum::<u64>(),
                underlay_rx: w.underlay_rx,
                underlay_tx: w.underlay_tx,
                io_errors: w.io_errors,
            })
            .collect();
        let conntrack = &self.shared.conntrack;
        ResponseBody::Stats(StatsReply {
            workers,
            ports,
            drops: drops_by_name(&pipeline.drops),
            actions: ActionStats {
                delivered: pipeline.delivered,
                to_host: pipeline.to_host,
                encapsulated: pipeline.encapsulated,
                replied: pipeline.replied,
            },
            conntrack: ConntrackStats {
                entries: conntrack.len() as u64,
                capacity: conntrack.capacity() as u64,
                evictions: conntrack.evictions(),
            },
            policy_drops: policy_drops(inner, &pipeline.denied_by_rule),
        })
    }

    fn dump(&self, inner: &Inner) -> ResponseBody {
        let now = self.now_ms();
        let tables = self.shared.tables.load();
        ResponseBody::Dump(DumpReply {
            node: NodeInfo::from(&tables.node),
            routes: route_infos(inner),
            ports: port_infos(inner),
            peers: peer_specs(inner),
            flows: self
                .shared
                .conntrack
                .entries(now)
                .iter()
                .map(Into::into)
                .collect(),
        })
    }

    fn trace(&self, inner: &Inner, args: TraceRequest) -> Result<ResponseBody, ApiError> {
        let from = match &args.from {
            TraceFrom::Port(name) => trace::TraceFrom::Port(port_id_of(inner, name)?),
            TraceFrom::Host(_) => trace::TraceFrom::Host,
            TraceFrom::Peer(name) => trace::TraceFrom::Peer(
                inner
                    .writer
                    .peers()
                    .id_of(name)
                    .ok_or_else(|| ApiError::not_found(format!("no peer named {name:?}")))?,
            ),
        };
        let protocol = match crate::api::validate::protocol("protocol", &args.protocol)? {
            1 if args.dst.is_ipv6() => 58,
            n => n,
        };
        let flow = TraceFlow {
            src: args.src,
            dst: args.dst,
            protocol,
            src_port: args.src_port,
            dst_port: args.dst_port,
        };
        let tables = self.shared.tables.load();
        let (stages, action) =
            trace::run(&tables, &self.shared.conntrack, self.now_ms(), from, flow)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        let names = names_of(inner);
        Ok(ResponseBody::Trace(TraceReply::new(
            &stages, &action, &names,
        )))
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
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

    fn save(&self, inner: &Inner) {
        let state = super::persist::state_of(
            inner
                .ports
                .values()
                .map(|p| (&p.info, &p.ingress, &p.egress)),
            &peer_specs(inner),
            &inner.static_routes,
            inner.removing.values(),
        );
        if let Err(e) = crate::api::state::save(&self.config.state_file(), &state) {
            tracing::error!(path = %self.config.state_file().display(), error = %e, "could not save the state file");
        }
    }

    /// Re-attaches the ports, peers, routes and policy of a previous run from
    /// the state file. Ports whose pod is gone are dropped (and logged).
    pub fn restore(&self) -> Result<usize, ApiError> {
        let path = self.config.state_file();
        let Some(state) =
            crate::api::state::load(&path).map_err(|e| ApiError::io("read the state file", e))?
        else {
            return Ok(0);
        };
        let mut inner = self.lock()?;
        self.finish_listed_removals(&mut inner, &state);
        for (prefix, via) in super::persist::routes_of(&state) {
            if inner.writer.set_route(prefix, NextHop::from(via)).is_ok() {
                inner.static_routes.insert(prefix, via);
            }
        }
        for peer in super::persist::peers_of(&state) {
            if let Err(e) = inner.writer.upsert_peer(Peer::from(peer)) {
                tracing::warn!(error = %e, "could not restore a peer");
            }
        }
        let mut restored = 0;
        for (info, ingress, egress) in super::persist::ports_of(&state) {
            let queues = match crate::port::tap::reattach_pod_tap(
                Path::new(&info.netns),
                &info.ifname,
                self.epolls.len(),
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
                Err(e) => tracing::warn!(error = %e, "could not restore a port"),
            }
        }
        self.publish(&mut inner);
        self.save(&inner);
        Ok(restored)
    }

    /// Deletes the taps a previous process listed as being removed, before
    /// any port is re-attached and before the API serves: nothing can have
    /// taken their names since. A removal whose interface a listed port now
    /// has (same netns, same name) had finished before that port was added.
    /// A tap that cannot be deleted stays listed for the next start.
    fn finish_listed_removals(&self, inner: &mut Inner, state: &crate::api::state::StateFile) {
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
                Err(e @ crate::port::PortError::NotATap { .. }) => {
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

/// Whether two netns paths name the same namespace (same nsfs inode), e.g.
/// `/run/netns/x` and `/proc/PID/ns/net`. Paths that cannot be looked at are
/// compared as strings.
fn same_netns(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

fn mutates(result: &Result<ResponseBody, ApiError>) -> bool {
    matches!(
        result,
        Ok(ResponseBody::Empty(_)) | Ok(ResponseBody::Port(_))
    )
}

fn endpoint_of(state: &PortState) -> Result<Endpoint, ApiError> {
    let name = &state.info.name;
    Ok(Endpoint {
        port: state.info.id,
        name: name.clone(),
        mac: state.info.mac.0,
        ipv4: state.info.ipv4,
        ipv6: state.info.ipv6,
        identity: state.info.id.0,
        ingress: classifier(name, "ingress", &state.ingress)?,
        egress: classifier(name, "egress", &state.egress)?,
        rule_names: Arc::new(rule_names(state)),
    })
}

/// Policy denials of the ports that exist, named, in port order.
fn policy_drops(
    inner: &Inner,
    denied: &std::collections::HashMap<crate::pipeline::counters::DeniedBy, u64>,
) -> Vec<crate::api::report::PolicyDrops> {
    let mut out: Vec<_> = denied
        .iter()
        .filter_map(|(by, &packets)| {
            let state = inner.ports.get(&by.port)?;
            Some(crate::api::report::PolicyDrops {
                port: state.info.name.clone(),
                direction: if by.ingress { "ingress" } else { "egress" }.to_owned(),
                rule: by.rule.map(|r| r.0),
                // The name the rule had when it denied, not whatever rule
                // holds its number now.
                name: by.name.as_deref().map(str::to_owned),
                packets,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.port, &a.direction, a.rule, &a.name).cmp(&(&b.port, &b.direction, b.rule, &b.name))
    });
    out
}

/// The names of a port's named rules, both directions.
fn rule_names(state: &PortState) -> RuleNames {
    let named = |ingress: bool, spec: &'_ RuleSetSpec| {
        spec.rules
            .iter()
            .filter_map(move |r| Some(((ingress, RuleId(r.id)), Arc::from(r.name.as_deref()?))))
            .collect::<Vec<_>>()
    };
    named(true, &state.ingress)
        .into_iter()
        .chain(named(false, &state.egress))
        .collect()
}

/// The compiled rule set. A pod without policy (the default, allow all) gets
/// one classifier compiled once and shared: compiling even an empty set
/// builds fresh tables, which took a millisecond of every `port_add`.
fn classifier(port: &str, which: &str, spec: &RuleSetSpec) -> Result<Arc<Classifier>, ApiError> {
    static ALLOW_ALL: OnceLock<Arc<Classifier>> = OnceLock::new();
    let default = *spec == RuleSetSpec::default();
    if default && let Some(shared) = ALLOW_ALL.get() {
        return Ok(Arc::clone(shared));
    }
    let set = crate::api::validate::rule_set(which, spec)?;
    let compiled = Classifier::compile(&set)
        .map(Arc::new)
        .map_err(|e| ApiError::invalid(format!("{which} policy of {port:?}: {e}")))?;
    if default {
        return Ok(Arc::clone(ALLOW_ALL.get_or_init(|| compiled)));
    }
    Ok(compiled)
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

fn port_id_of(inner: &Inner, name: &str) -> Result<PortId, ApiError> {
    inner
        .ports
        .values()
        .find(|p| p.info.name == name)
        .map(|p| p.info.id)
        .ok_or_else(|| ApiError::not_found(format!("no port named {name:?}")))
}

fn port_infos(inner: &Inner) -> Vec<PortInfo> {
    inner.ports.values().map(|p| p.info.clone()).collect()
}

fn peer_specs(inner: &Inner) -> Vec<PeerSpec> {
    inner
        .writer
        .peers()
        .iter()
        .map(|(_, p)| PeerSpec::from(p))
        .collect()
}

fn names_of(inner: &Inner) -> impl crate::api::trace::Names + '_ {
    let ports = move |id: PortId| inner.ports.get(&id).map(|p| p.info.name.clone());
    let peers = move |id: PeerId| inner.writer.peers().get(id).map(|p| p.name.clone());
    (ports, peers)
}

fn route_infos(inner: &Inner) -> Vec<RouteInfo> {
    let names = names_of(inner);
    inner
        .writer
        .routes()
        .into_iter()
        .map(|(prefix, hop)| RouteInfo {
            prefix,
            next_hop: route_target(hop, &names),
        })
        .collect()
}

/// The API error for a failed tap creation: the caller's mistakes (an
/// interface name already taken, a netns that does not exist) are told apart
/// from system failures.
fn port_error(e: crate::port::PortError) -> ApiError {
    use crate::port::PortError;
    match e {
        PortError::LinkExists { .. } => ApiError::conflict(e.to_string()),
        PortError::NetnsOpen { .. } => ApiError::invalid(format!("netns: {e}")),
        _ => ApiError::io("create the pod's tap", e),
    }
}

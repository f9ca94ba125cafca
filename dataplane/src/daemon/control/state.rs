//! The control side's state in memory, and the changes to it that touch no
//! system state, decided and applied without I/O: peers, static routes and
//! rule sets, each returning what it did ([`Done`]) so that it can be undone
//! should the state file not be written. The state file is a pure function
//! of this state ([`Inner::state_file`]).
//!
//! The planner half of the control side: [`super::Control`] is the executor
//! that takes the locks, runs the system steps (taps, the workers' sources),
//! publishes the tables to the workers and writes the state file. Tested
//! without root in `state_tests.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;
use tweed_api::dataplane::proto::{
    ApiError, PeerSpec, PolicySet, PortInfo, RouteSpec, RouteVia, RuleSetSpec,
};

use super::done::Done;
use super::endpoint::endpoint_of;
use super::plan::Reservation;
use crate::api::state::{RemovalRecord, StateFile};
use crate::daemon::shared::TapHandles;
use crate::table::endpoints::Endpoint;
use crate::table::nexthop::{NextHop, PortId};
use crate::table::peers::Peer;
use crate::table::service::ServicePort;
use crate::table::tables::TablesWriter;

/// A pod port as the control side keeps it.
#[derive(Debug, Clone)]
pub(super) struct PortState {
    pub(super) info: PortInfo,
    pub(super) ingress: RuleSetSpec,
    pub(super) egress: RuleSetSpec,
    pub(super) handles: Arc<TapHandles>,
}

/// Everything the control side knows, behind its `inner` lock.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) writer: TablesWriter,
    pub(super) ports: BTreeMap<PortId, PortState>,
    pub(super) static_routes: BTreeMap<IpNet, RouteVia>,
    /// Taps of removed ports not yet deleted, by removal id (persisted).
    pub(super) removing: BTreeMap<u64, RemovalRecord>,
    pub(super) next_removal: u64,
    /// What the `port_add`s in progress have claimed, by their token.
    pub(super) reserved: BTreeMap<u64, Reservation>,
    pub(super) next_reservation: u64,
    /// The native Services, by name (not persisted: see `services`).
    pub(super) services: BTreeMap<String, Vec<ServicePort>>,
}

impl Inner {
    /// The state of a dataplane that has attached nothing yet.
    pub(super) fn new(writer: TablesWriter) -> Self {
        Self {
            writer,
            ports: BTreeMap::new(),
            static_routes: BTreeMap::new(),
            removing: BTreeMap::new(),
            next_removal: 0,
            reserved: BTreeMap::new(),
            next_reservation: 0,
            services: BTreeMap::new(),
        }
    }

    /// The state file for this state.
    pub(super) fn state_file(&self) -> StateFile {
        crate::daemon::persist::state_of(
            self.ports
                .values()
                .map(|p| (&p.info, &p.ingress, &p.egress)),
            &self.peer_specs(),
            &self.static_routes,
            self.removing.values(),
        )
    }

    /// The id of the port named `name`.
    pub(super) fn port_id(&self, name: &str) -> Result<PortId, ApiError> {
        self.ports
            .values()
            .find(|p| p.info.name == name)
            .map(|p| p.info.id)
            .ok_or_else(|| ApiError::not_found(format!("no port named {name:?}")))
    }

    /// Every peer, as listed.
    pub(super) fn peer_specs(&self) -> Vec<PeerSpec> {
        self.writer
            .peers()
            .iter()
            .map(|(_, p)| PeerSpec::from(p))
            .collect()
    }

    /// The spec of peer `name`, if there is one.
    fn peer_spec(&self, name: &str) -> Option<PeerSpec> {
        let id = self.writer.peers().id_of(name)?;
        self.writer.peers().get(id).map(PeerSpec::from)
    }

    /// Adds or replaces a peer; another peer's underlay address is a conflict.
    pub(super) fn peer_set(&mut self, spec: PeerSpec) -> Result<Done, ApiError> {
        if let Some((_, other)) = self
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
        let name = spec.name.clone();
        let previous = self.peer_spec(&name);
        self.writer
            .upsert_peer(Peer::from(spec))
            .map_err(|e| ApiError::conflict(e.to_string()))?;
        Ok(Done::Peer { name, previous })
    }

    /// Removes a peer and its routes.
    pub(super) fn peer_remove(&mut self, name: &str) -> Result<Done, ApiError> {
        let previous = self.peer_spec(name);
        self.writer
            .remove_peer(name)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        Ok(Done::Peer {
            name: name.to_owned(),
            previous,
        })
    }

    /// Adds or replaces a static route; a pod's or a peer's prefix is theirs.
    pub(super) fn route_set(&mut self, spec: RouteSpec) -> Result<Done, ApiError> {
        let prefix = spec.prefix.trunc();
        let previous_hop = self.writer.route(prefix);
        if let Some(NextHop::Local(_) | NextHop::Remote(_)) = previous_hop {
            return Err(ApiError::conflict(format!(
                "{prefix} is a pod or peer route; change the port or peer instead"
            )));
        }
        self.writer
            .set_route(prefix, NextHop::from(spec.via))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let previous_static = self.static_routes.insert(prefix, spec.via);
        Ok(Done::Route {
            prefix,
            previous_static,
            previous_hop,
        })
    }

    /// Removes a static route.
    pub(super) fn route_remove(&mut self, prefix: IpNet) -> Result<Done, ApiError> {
        let prefix = prefix.trunc();
        let previous_hop = self.writer.route(prefix);
        let Some(via) = self.static_routes.remove(&prefix) else {
            return Err(ApiError::not_found(format!("no static route for {prefix}")));
        };
        self.writer.remove_route(prefix);
        Ok(Done::Route {
            prefix,
            previous_static: Some(via),
            previous_hop,
        })
    }

    /// The ports `sets` name with their new rule sets, not yet compiled;
    /// the first unknown port refuses them all.
    pub(super) fn policy_targets(&self, sets: Vec<PolicySet>) -> Result<Vec<PortState>, ApiError> {
        sets.into_iter()
            .map(|set| {
                let id = self.port_id(&set.name)?;
                let mut state =
                    self.ports.get(&id).cloned().ok_or_else(|| {
                        ApiError::not_found(format!("no port named {:?}", set.name))
                    })?;
                state.ingress = set.ingress;
                state.egress = set.egress;
                Ok(state)
            })
            .collect()
    }

    /// Installs ports' compiled rule sets (from [`Self::policy_targets`] and
    /// [`endpoint_of`]); all or nothing.
    pub(super) fn policy_apply(
        &mut self,
        compiled: Vec<(PortState, Endpoint)>,
    ) -> Result<Done, ApiError> {
        let mut previous = Vec::with_capacity(compiled.len());
        for (state, endpoint) in compiled {
            let id = state.info.id;
            if let (Some(old), Some(old_endpoint)) = (
                self.ports.get(&id).cloned(),
                self.writer.endpoints().get(id).cloned(),
            ) {
                previous.push((old, old_endpoint));
            }
            // The port keeps its addresses, so this cannot clash with another.
            if let Err(e) = self.writer.upsert_endpoint(endpoint) {
                self.undo_edit(Done::Policy { previous });
                return Err(ApiError::conflict(e.to_string()));
            }
            self.ports.insert(id, state);
        }
        Ok(Done::Policy { previous })
    }

    /// Undoes a peer, route or policy change ([`Done`]'s other variants
    /// undo system steps: [`super::Control::undo`]).
    pub(super) fn undo_edit(&mut self, done: Done) {
        match done {
            Done::Peer { name, previous } => {
                let restored = match previous {
                    Some(spec) => self.writer.upsert_peer(Peer::from(spec)).map(drop),
                    None => self.writer.remove_peer(&name).map(drop),
                };
                if let Err(e) = restored {
                    tracing::error!(peer = %name, error = %e, "could not undo a peer change");
                }
            }
            Done::Route {
                prefix,
                previous_static,
                previous_hop,
            } => {
                match previous_static {
                    Some(via) => self.static_routes.insert(prefix, via),
                    None => self.static_routes.remove(&prefix),
                };
                let restored = match previous_hop {
                    Some(hop) => self.writer.set_route(prefix, hop).map(drop),
                    None => {
                        self.writer.remove_route(prefix);
                        Ok(())
                    }
                };
                if let Err(e) = restored {
                    tracing::error!(%prefix, error = %e, "could not undo a route change");
                }
            }
            Done::Policy { previous } => {
                // Last first: a port set twice gets its first previous state.
                for (state, endpoint) in previous.into_iter().rev() {
                    // The same port with the same addresses: cannot clash.
                    if let Err(e) = self.writer.upsert_endpoint(endpoint) {
                        tracing::error!(port = %state.info.name, error = %e, "could not undo a policy change");
                    }
                    self.ports.insert(state.info.id, state);
                }
            }
            Done::PortAdded { .. } | Done::PortRemoved { .. } => {
                debug_assert!(false, "a port change is undone by the control side");
            }
        }
    }
}

/// Compiles the rule sets of [`Inner::policy_targets`]' ports (the slow
/// part, done outside the `inner` lock).
pub(super) fn compile_targets(
    targets: Vec<PortState>,
) -> Result<Vec<(PortState, Endpoint)>, ApiError> {
    targets
        .into_iter()
        .map(|state| endpoint_of(&state).map(|endpoint| (state, endpoint)))
        .collect()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

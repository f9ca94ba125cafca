//! The changes to the tables that touch no system state: peers, static
//! routes and rule sets. Each applies its edit, publishes, and says how to
//! undo it ([`Done`]) should the state file not be written.

use std::sync::{Arc, OnceLock};

use ipnet::IpNet;

use super::done::Done;
use super::{Control, Inner, PortState, port_id_of};
use crate::table::acl::{Classifier, RuleId};
use crate::table::endpoints::{Endpoint, RuleNames};
use crate::table::nexthop::NextHop;
use crate::table::peers::Peer;
use tweed_api::dataplane::proto::{
    ApiError, PeerSpec, PolicySet, ResponseBody, RouteSpec, RuleSetSpec,
};

impl Control {
    pub(super) fn peer_set(
        &self,
        inner: &mut Inner,
        spec: PeerSpec,
    ) -> Result<(ResponseBody, Done), ApiError> {
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
        let name = spec.name.clone();
        let previous = peer_spec(inner, &name);
        inner
            .writer
            .upsert_peer(Peer::from(spec))
            .map_err(|e| ApiError::conflict(e.to_string()))?;
        self.publish(inner);
        Ok((ResponseBody::empty(), Done::Peer { name, previous }))
    }

    pub(super) fn peer_remove(
        &self,
        inner: &mut Inner,
        name: &str,
    ) -> Result<(ResponseBody, Done), ApiError> {
        let previous = peer_spec(inner, name);
        inner
            .writer
            .remove_peer(name)
            .map_err(|e| ApiError::not_found(e.to_string()))?;
        self.publish(inner);
        let done = Done::Peer {
            name: name.to_owned(),
            previous,
        };
        Ok((ResponseBody::empty(), done))
    }

    pub(super) fn route_set(
        &self,
        inner: &mut Inner,
        spec: RouteSpec,
    ) -> Result<(ResponseBody, Done), ApiError> {
        let prefix = spec.prefix.trunc();
        let previous_hop = inner.writer.route(prefix);
        if let Some(NextHop::Local(_) | NextHop::Remote(_)) = previous_hop {
            return Err(ApiError::conflict(format!(
                "{prefix} is a pod or peer route; change the port or peer instead"
            )));
        }
        inner
            .writer
            .set_route(prefix, NextHop::from(spec.via))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let previous_static = inner.static_routes.insert(prefix, spec.via);
        self.publish(inner);
        let done = Done::Route {
            prefix,
            previous_static,
            previous_hop,
        };
        Ok((ResponseBody::empty(), done))
    }

    pub(super) fn route_remove(
        &self,
        inner: &mut Inner,
        prefix: IpNet,
    ) -> Result<(ResponseBody, Done), ApiError> {
        let prefix = prefix.trunc();
        let previous_hop = inner.writer.route(prefix);
        let Some(via) = inner.static_routes.remove(&prefix) else {
            return Err(ApiError::not_found(format!("no static route for {prefix}")));
        };
        inner.writer.remove_route(prefix);
        self.publish(inner);
        let done = Done::Route {
            prefix,
            previous_static: Some(via),
            previous_hop,
        };
        Ok((ResponseBody::empty(), done))
    }

    /// Replaces the policy of several ports: every port is looked up and
    /// every classifier compiled before anything changes; one publish. The
    /// compiling (the slow part: about a millisecond per port) holds
    /// `writes` but not `inner`, so reads go on meanwhile.
    pub(super) fn policy_set_many(&self, sets: Vec<PolicySet>) -> Result<ResponseBody, ApiError> {
        let writes = self.lock_writes()?;
        let mut next = Vec::with_capacity(sets.len());
        {
            let inner = self.lock()?;
            for set in sets {
                let id = port_id_of(&inner, &set.name)?;
                let Some(mut state) = inner.ports.get(&id).cloned() else {
                    return Err(ApiError::not_found(format!("no port named {:?}", set.name)));
                };
                state.ingress = set.ingress;
                state.egress = set.egress;
                next.push(state);
            }
        }
        // Nothing else changes the ports while `writes` is held.
        let compiled = next
            .into_iter()
            .map(|state| endpoint_of(&state).map(|endpoint| (state, endpoint)))
            .collect::<Result<Vec<_>, _>>()?;
        let done = {
            let mut inner = self.lock()?;
            let mut previous = Vec::with_capacity(compiled.len());
            for (state, endpoint) in compiled {
                let id = state.info.id;
                if let (Some(old), Some(old_endpoint)) = (
                    inner.ports.get(&id).cloned(),
                    inner.writer.endpoints().get(id).cloned(),
                ) {
                    previous.push((old, old_endpoint));
                }
                // The port keeps its addresses, so this cannot clash with another.
                if let Err(e) = inner.writer.upsert_endpoint(endpoint) {
                    let done = Done::Policy { previous };
                    drop(self.undo(&mut inner, done));
                    return Err(ApiError::conflict(e.to_string()));
                }
                inner.ports.insert(id, state);
            }
            self.publish(&mut inner);
            Done::Policy { previous }
        };
        self.commit(writes, done)?;
        Ok(ResponseBody::empty())
    }
}

/// The spec of peer `name`, if there is one.
fn peer_spec(inner: &Inner, name: &str) -> Option<PeerSpec> {
    let id = inner.writer.peers().id_of(name)?;
    inner.writer.peers().get(id).map(PeerSpec::from)
}

/// A port's endpoint in the tables, with its rule sets compiled.
pub(super) fn endpoint_of(state: &PortState) -> Result<Endpoint, ApiError> {
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

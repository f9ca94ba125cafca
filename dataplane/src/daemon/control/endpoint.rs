//! A port's endpoint as the tables hold it: its addresses and its rule sets
//! compiled into classifiers (pure; the slow part of a policy change, about
//! a millisecond per port, so it runs outside the `inner` lock).

use std::sync::{Arc, OnceLock};

use tweed_api::dataplane::proto::{ApiError, RuleSetSpec};

use super::state::PortState;
use crate::table::acl::{Classifier, RuleId};
use crate::table::endpoints::{Endpoint, RuleNames};

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

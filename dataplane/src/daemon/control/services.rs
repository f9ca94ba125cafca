//! `service_set`: the native Services this node balances. The next set is
//! planned without I/O ([`services_after`]), the table built outside the
//! state lock (a whole build of 10,000 Services takes about 0.1 s), then
//! published. Not saved in the state file: the control daemon pushes every
//! Service again when the dataplane restarts, as it does policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Control;
use crate::table::service::{ServicePort, ServiceTable};
use tweed_api::dataplane::proto::{ApiError, ResponseBody, ServiceSet, error_chain};

/// The Services by name after `change`: its Services replace theirs, those
/// without ports go, and with `replace` those it does not name go too.
pub(super) fn services_after(
    current: &BTreeMap<String, Vec<ServicePort>>,
    change: ServiceSet,
) -> BTreeMap<String, Vec<ServicePort>> {
    let mut next = if change.replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for service in change.services {
        if service.ports.is_empty() {
            next.remove(&service.name);
        } else {
            next.insert(service.name, service.ports);
        }
    }
    next
}

impl Control {
    /// Applies a validated `service_set`: all of it, or nothing when the
    /// Services clash (two on one frontend, a frontend and its endpoints in
    /// different families).
    pub(super) fn service_set(&self, change: ServiceSet) -> Result<ResponseBody, ApiError> {
        let _writes = self.lock_writes()?;
        let (next, previous) = {
            let inner = self.lock()?;
            let next = services_after(&inner.services, change);
            (next, Arc::clone(inner.writer.services()))
        };
        let ports: Vec<ServicePort> = next.values().flatten().cloned().collect();
        // Only the Services that changed get their Maglev tables built again.
        let table = ServiceTable::rebuild(&ports, &previous).map_err(|e| {
            ApiError::conflict(format!(
                "service_set: the Services clash: {}",
                error_chain(&e)
            ))
        })?;
        let mut inner = self.lock()?;
        inner.writer.set_services(table);
        inner.services = next;
        self.publish(&mut inner);
        Ok(ResponseBody::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweed_api::dataplane::proto::ServiceSpec;

    fn spec(name: &str, ports: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            ports: ports.iter().map(|p| ServicePort::named(*p)).collect(),
        }
    }

    fn names(services: &BTreeMap<String, Vec<ServicePort>>) -> Vec<(&str, usize)> {
        services
            .iter()
            .map(|(n, p)| (n.as_str(), p.len()))
            .collect()
    }

    #[test]
    fn services_are_replaced_by_name_and_removed_without_ports() {
        let start = services_after(
            &BTreeMap::new(),
            ServiceSet {
                replace: false,
                services: vec![spec("a/web", &["http"]), spec("a/dns", &["udp", "tcp"])],
            },
        );
        assert_eq!(names(&start), [("a/dns", 2), ("a/web", 1)]);
        let next = services_after(
            &start,
            ServiceSet {
                replace: false,
                services: vec![spec("a/web", &["http", "https"]), spec("a/dns", &[])],
            },
        );
        assert_eq!(names(&next), [("a/web", 2)]);
    }

    #[test]
    fn a_full_sync_removes_what_it_does_not_name() {
        let start = services_after(
            &BTreeMap::new(),
            ServiceSet {
                replace: false,
                services: vec![spec("a/web", &["http"]), spec("a/dns", &["udp"])],
            },
        );
        let next = services_after(
            &start,
            ServiceSet {
                replace: true,
                services: vec![spec("b/api", &["grpc"])],
            },
        );
        assert_eq!(names(&next), [("b/api", 1)]);
    }
}

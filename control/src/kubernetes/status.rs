//! How current the mirror is, per resource: whether its first listing is
//! done, how many objects it holds, the last error since its last good event
//! (the datasource is stale while any resource has one), and the objects
//! that were refused (a policy that does not validate).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::api::node::{DatasourceStatus, ResourceStatus};

use super::reflect::Reflector;

#[derive(Debug, Default, Clone)]
struct Resource {
    synced: bool,
    unserved: bool,
    objects: usize,
    error: Option<String>,
    rejected: Vec<String>,
}

/// The datasource's state, written by the watch loops.
#[derive(Debug, Default)]
pub struct SourceStatus {
    resources: Mutex<BTreeMap<&'static str, Resource>>,
}

impl SourceStatus {
    /// Registers `resource` (not synced yet).
    pub fn expect(&self, resource: &'static str) {
        self.lock().entry(resource).or_default();
    }

    /// `resource` gave an event: the state of its reflector, error cleared.
    pub fn current(&self, resource: &'static str, reflector: &Reflector) {
        let mut all = self.lock();
        let r = all.entry(resource).or_default();
        r.synced = reflector.synced();
        r.unserved = false;
        r.objects = reflector.objects();
        r.error = None;
        r.rejected = reflector
            .rejected()
            .iter()
            .map(|(id, why)| format!("{id}: {why}"))
            .collect();
    }

    /// The API server does not serve `resource` (404: its CRD is not
    /// installed): it counts as listed and empty.
    pub fn unserved(&self, resource: &'static str) {
        let mut all = self.lock();
        let r = all.entry(resource).or_default();
        *r = Resource {
            synced: true,
            unserved: true,
            ..Resource::default()
        };
    }

    /// `resource`'s watch failed (it retries with backoff).
    pub fn failed(&self, resource: &'static str, error: String) {
        self.lock().entry(resource).or_default().error = Some(error);
    }

    /// Whether every registered resource has completed a listing.
    pub fn synced(&self) -> bool {
        self.lock().values().all(|r| r.synced)
    }

    /// The state as `tweed status` shows it.
    pub fn report(&self, server: &str) -> DatasourceStatus {
        let all = self.lock();
        DatasourceStatus {
            kind: "kubernetes".into(),
            server: server.to_owned(),
            stale: all.values().any(|r| r.error.is_some() || !r.synced),
            resources: all
                .iter()
                .map(|(name, r)| ResourceStatus {
                    resource: (*name).to_owned(),
                    synced: r.synced,
                    served: !r.unserved,
                    objects: r.objects as u64,
                    error: r.error.clone(),
                    rejected: r.rejected.clone(),
                })
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Resource>> {
        self.resources.lock().expect("datasource status lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_until_listed_and_again_after_an_error() {
        let status = SourceStatus::default();
        status.expect("pods");
        assert!(status.report("s").stale);
        let mut r = Reflector::default();
        r.init();
        r.init_done();
        status.current("pods", &r);
        assert!(!status.report("s").stale);
        assert!(status.synced());
        status.failed("pods", "connection refused".into());
        let report = status.report("s");
        assert!(report.stale);
        assert_eq!(
            report.resources[0].error.as_deref(),
            Some("connection refused")
        );
    }

    #[test]
    fn an_unserved_resource_counts_as_listed_and_empty() {
        let status = SourceStatus::default();
        status.expect("globalpolicies.tweed.dev");
        status.unserved("globalpolicies.tweed.dev");
        assert!(status.synced());
        let report = status.report("s");
        assert!(!report.stale);
        assert!(!report.resources[0].served);
    }
}

//! The Kubernetes datasource (`--datasource kubernetes`): nodes, pods,
//! namespaces and policies read from the API server instead of etcd or the
//! embedded store.
//!
//! Layers, from pure to I/O:
//!
//! - [`translate`]: an object → the store entries the cluster view and the
//!   policy enforcer already read (Node → node record from `spec.podCIDRs`
//!   and tweed's annotations; Pod → labels, and a record for another node's
//!   pod; Namespace → labels; NetworkPolicy and tweed's Policy/GlobalPolicy
//!   custom resources → policies, through `tweed policy apply`'s parser;
//!   with `--native-services`, Service and EndpointSlice → themselves, as
//!   `tweed service apply` stores them).
//! - [`reflect`]: one resource's objects → which entries each gave; a relist
//!   replaces them all at once.
//! - [`mirror`]: the entries in memory, listed and watched like a store.
//! - [`layered`]: the [`Store`](crate::store::Store) the daemon runs on:
//!   the mirror for what the API server owns, the local embedded store for
//!   the node's own pod records (their IPAM leases) and static peers.
//! - [`status`]: how current the mirror is (`tweed status`).
//! - [`backoff`]: how long a failed list or watch waits.
//! - I/O: [`client`] (kubeconfig or in-cluster), [`claim`] (this node's pod
//!   CIDRs and annotations), [`watch`] (a list-and-watch loop per resource →
//!   its reflector).
//!
//! While the API server cannot be reached the mirror keeps its last state,
//! so the dataplane goes on enforcing it; `tweed status` says the datasource
//! is stale until every watch has caught up again.

pub mod backoff;
pub mod claim;
pub mod client;
pub mod error;
pub mod layered;
pub mod mirror;
pub mod reflect;
pub mod status;
pub mod translate;
pub mod watch;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};

pub use error::KubeError;

use crate::cluster::keys;
use crate::policy::Labels;
use crate::store::Store;
use mirror::Mirror;
use status::SourceStatus;
use translate::Context;

/// tweed's namespaced ordered policy, a custom resource.
pub const POLICY_CRD: (&str, &str) = ("Policy", "policies");
/// tweed's cluster-wide ordered policy, a custom resource.
pub const GLOBAL_POLICY_CRD: (&str, &str) = ("GlobalPolicy", "globalpolicies");
/// The custom resources' group and version.
pub const CRD_GROUP: (&str, &str) = ("tweed.dev", "v1");

/// A connected datasource.
#[derive(Clone)]
pub struct KubeSource {
    client: kube::Client,
    server: String,
    mirror: Arc<Mirror>,
    status: Arc<SourceStatus>,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeSource {
    /// Connects (nothing is read yet).
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Self, KubeError> {
        let (client, server) = client::connect(kubeconfig).await?;
        Ok(KubeSource {
            client,
            server,
            mirror: Arc::default(),
            status: Arc::default(),
        })
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The store node `node` runs on: `local` under the API server's entries.
    pub fn store(&self, local: Arc<dyn Store>, node: &str) -> Arc<dyn Store> {
        Arc::new(layered::Layered::new(local, self.mirror.clone(), node))
    }

    /// Starts a watch loop per resource on `tasks`; Services and
    /// EndpointSlices too when this node balances them (`services`).
    pub fn spawn(&self, node: &str, services: bool, tasks: &mut tokio::task::JoinSet<()>) {
        let sink = watch::Sink {
            mirror: self.mirror.clone(),
            status: self.status.clone(),
            context: Context {
                node: node.to_owned(),
            },
        };
        let c = &self.client;
        tasks.spawn(watch::follow(
            Api::<Node>::all(c.clone()),
            "nodes",
            sink.clone(),
        ));
        tasks.spawn(watch::follow(
            Api::<Pod>::all(c.clone()),
            "pods",
            sink.clone(),
        ));
        tasks.spawn(watch::follow(
            Api::<Namespace>::all(c.clone()),
            "namespaces",
            sink.clone(),
        ));
        tasks.spawn(watch::follow(
            Api::<NetworkPolicy>::all(c.clone()),
            "networkpolicies",
            sink.clone(),
        ));
        if services {
            tasks.spawn(watch::follow(
                Api::<Service>::all(c.clone()),
                "services",
                sink.clone(),
            ));
            tasks.spawn(watch::follow(
                Api::<EndpointSlice>::all(c.clone()),
                "endpointslices",
                sink.clone(),
            ));
        }
        for (kind, plural, resource) in [
            (POLICY_CRD.0, POLICY_CRD.1, "policies.tweed.dev"),
            (
                GLOBAL_POLICY_CRD.0,
                GLOBAL_POLICY_CRD.1,
                "globalpolicies.tweed.dev",
            ),
        ] {
            let api_resource = ApiResource {
                group: CRD_GROUP.0.into(),
                version: CRD_GROUP.1.into(),
                api_version: format!("{}/{}", CRD_GROUP.0, CRD_GROUP.1),
                kind: kind.into(),
                plural: plural.into(),
            };
            let api = Api::<DynamicObject>::all_with(c.clone(), &api_resource);
            tasks.spawn(watch::follow(api, resource, sink.clone()));
        }
    }

    /// Waits until every resource has been listed once, at most `timeout`;
    /// false if it was not.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.status.synced() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Pod `namespace/name`'s labels, once the pods' watch has seen it
    /// (waiting at most `timeout`: a CNI ADD can come before the watch event).
    pub async fn pod_labels(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Option<Labels> {
        let value = self
            .mirror
            .wait_for(&keys::pod_labels(namespace, name), timeout)
            .await?;
        serde_json::from_slice(&value).ok()
    }

    /// The datasource's state for `tweed status`.
    pub fn report(&self) -> crate::api::node::DatasourceStatus {
        self.status.report(&self.server)
    }
}

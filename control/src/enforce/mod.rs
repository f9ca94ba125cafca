//! Network policy, enforced: the cluster's policy inputs followed from the
//! store, compiled for this node's pods, and pushed to the dataplane.
//!
//! - [`world`]: the inputs (every pod of every node, labels, policies) as a
//!   pure state that listings and watch events update;
//! - [`plan`]: which ports' rule sets changed since the last push (pure);
//! - [`Enforcer`]: the I/O: it follows the store, recompiles after every
//!   change (a burst of events is one recompile) and pushes only what changed.
//!
//! Every node compiles the rule sets of its own pods from the whole cluster's
//! inputs, so a policy or label change anywhere reaches every node through
//! the store's watch (except the node's own pod records, which the daemon
//! applies itself when their ports exist). Requests that change policy on
//! this node (`policy_apply`, a pod attached here) apply the change to the
//! inputs and push before they answer: when `tweed policy apply` returns,
//! this node enforces it, and a pod's first packet already meets its policy.
//!
//! Open connections: the dataplane checks policy when a flow starts; packets
//! of a tracked flow pass without a new check. A policy that starts denying
//! a flow therefore stops its new connections at once and lets connections
//! already open run until they end or go idle past conntrack's timeout, as
//! the kernel's conntrack-based firewalls (and Calico on them) do.

pub mod plan;
pub mod world;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{Mutex, watch};

pub use world::PolicyInputs;

use crate::cluster::keys;
use crate::dataplane::{Dataplane, batch};
use crate::policy::Compiler;
use crate::store::follow::{self, Inputs as _};
use crate::store::{Store, StoreError, WatchEvent};
use plan::PortRules;

struct State {
    inputs: PolicyInputs,
    /// The rule sets the dataplane was last given, by port.
    pushed: BTreeMap<String, PortRules>,
}

/// Compiles and pushes this node's pods' policy.
pub struct Enforcer {
    store: Arc<dyn Store>,
    node: String,
    node_addrs: Vec<IpAddr>,
    dataplane: Dataplane,
    state: Mutex<State>,
}

impl std::fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enforcer")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Enforcer {
    /// An enforcer for node `node`, whose own addresses (always allowed to
    /// and from its pods) are `node_addrs`, over `inputs` (listed from the store).
    pub fn new(
        store: Arc<dyn Store>,
        node: &str,
        node_addrs: Vec<IpAddr>,
        dataplane: Dataplane,
        inputs: PolicyInputs,
    ) -> Self {
        Enforcer {
            store,
            node: node.to_owned(),
            node_addrs,
            dataplane,
            state: Mutex::new(State {
                inputs,
                pushed: BTreeMap::new(),
            }),
        }
    }

    /// Lists every input from the store.
    pub async fn list(store: &dyn Store) -> Result<PolicyInputs, StoreError> {
        follow::list(store).await
    }

    /// A copy of the inputs (for `policy_list`, `explain`, labels).
    pub async fn inputs(&self) -> PolicyInputs {
        self.state.lock().await.inputs.clone()
    }

    /// The node's own addresses.
    pub fn node_addrs(&self) -> &[IpAddr] {
        &self.node_addrs
    }

    /// Changes the inputs with `change`, then compiles and pushes.
    pub async fn update(&self, change: impl FnOnce(&mut PolicyInputs)) {
        self.update_created(&[], change).await;
    }

    /// Forgets what was pushed and pushes every port's rule sets (after the
    /// dataplane restarted or its ports were recreated).
    pub async fn resync(&self) {
        let mut state = self.state.lock().await;
        state.pushed.clear();
        self.push(&mut state).await;
    }

    /// Like [`Self::update`], after `ports` were just created: the
    /// dataplane gives a new port the allow-all rule sets, so only those of
    /// them that policy selects (and whatever else changed) get a push.
    pub async fn update_created(&self, ports: &[String], change: impl FnOnce(&mut PolicyInputs)) {
        let mut state = self.state.lock().await;
        for port in ports {
            state.pushed.insert(port.clone(), PortRules::default());
        }
        change(&mut state.inputs);
        self.push(&mut state).await;
    }

    /// Compiles every local pod's rule sets and pushes those that changed,
    /// in `policy_set_many` batches of at most [`batch::BATCH_BYTES`] (one
    /// snapshot each in the dataplane: one for all of them but on a large
    /// node); a batch that is refused (a port went away meanwhile), port by
    /// port.
    async fn push(&self, state: &mut State) {
        let wanted = self.compile(&state.inputs);
        state.pushed.retain(|port, _| wanted.contains_key(port));
        let sets = plan::changes(&wanted, &state.pushed);
        if sets.is_empty() {
            return;
        }
        let mut pushed = Vec::new();
        // Batches keep each request well under the dataplane's line limit;
        // each is one snapshot there.
        for batch in batch::batches(sets, batch::BATCH_BYTES) {
            let names: Vec<String> = batch.iter().map(|s| s.name.clone()).collect();
            match self.dataplane.policy_set_many(batch.clone()).await {
                Ok(()) => pushed.extend(names),
                Err(e) => {
                    tracing::debug!(error = %e, "pushing policy in one batch; retrying port by port");
                    for set in batch {
                        let name = set.name.clone();
                        match self.dataplane.policy_set(set).await {
                            Ok(()) => pushed.push(name),
                            // A port being created or removed right now; the
                            // next change or resync pushes it again.
                            Err(e) => {
                                tracing::warn!(port = %name, error = %e, "pushing a pod's policy")
                            }
                        }
                    }
                }
            }
        }
        for name in pushed {
            if let Some(rules) = wanted.get(&name) {
                state.pushed.insert(name, rules.clone());
            }
        }
    }

    /// Whether `event` is about a pod record of this node. Those are written
    /// only by this daemon, which applies them itself once the pod's port
    /// exists (`pod_attached`) or is gone (`pods_released`). Taken from the
    /// watch, the record of a pod being added would arrive before its port
    /// and make a push the dataplane refuses, on the ADD's critical path.
    fn is_own_pod(&self, event: &WatchEvent) -> bool {
        let key = match event {
            WatchEvent::Put { key, .. } | WatchEvent::Delete { key, .. } => key,
        };
        key.starts_with(&keys::pods(&self.node))
    }

    /// The rule sets of every pod on this node, by port.
    fn compile(&self, inputs: &PolicyInputs) -> BTreeMap<String, PortRules> {
        let (world, record_keys) = inputs.world(&self.node_addrs);
        let compiler = Compiler::new(&world);
        let local = keys::pods(&self.node);
        record_keys
            .iter()
            .enumerate()
            .filter(|(_, key)| key.starts_with(&local))
            .filter_map(|(i, key)| {
                let record = inputs.pods.get(*key)?;
                let compiled = compiler.endpoint(i);
                Some((record.port.clone(), (compiled.ingress, compiled.egress)))
            })
            .collect()
    }

    /// Follows the store until `stop`: each round watches every input prefix,
    /// lists them again (so nothing between the two is missed), and then
    /// recompiles after every burst of events (this node's own pods aside:
    /// their changes are pushed where they are made).
    pub async fn follow(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let this: &Self = &self;
        follow::follow("following the policy inputs", stop, || {
            follow::round(
                this.store.as_ref(),
                |listed| this.update(|inputs| *inputs = listed),
                |batch| async move {
                    let mut state = this.state.lock().await;
                    if state
                        .inputs
                        .apply_all(batch.iter().filter(|e| !this.is_own_pod(e)))
                    {
                        this.push(&mut state).await;
                    }
                },
            )
        })
        .await;
    }
}

//! Native Services, balanced: the cluster's Services and EndpointSlices
//! followed from the store, read for this node, and pushed to the
//! dataplane's service table (the opt-in kube-proxy replacement,
//! `--native-services`).
//!
//! - [`inputs`]: the Services and slices as a pure state that listings and
//!   watch events update, and what they make of this node's Services.
//! - [`plan`]: which Services changed since the last push (pure).
//! - [`Balancer`]: the I/O: it follows the store, reads again after every
//!   burst of changes and pushes what changed, in batches; after the
//!   dataplane restarts, everything at once (a full sync). Once the
//!   dataplane balances them, the node steers packets from outside to the
//!   NodePorts and externalIPs into it (`host::steer`), and answers the
//!   health check node ports of `Local` load balancers ([`health_ports`]).
//!
//! A Service that cannot be read is left out and logged; the others are
//! balanced. A set the dataplane refuses (two Services on one frontend) is
//! logged and tried again after the next change.

mod health_ports;
pub mod inputs;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{Mutex, watch};
use tweed_api::dataplane::proto::error_chain;
use tweed_dataplane::table::service::{ServiceKey, ServicePort};

pub use inputs::{Balanced, ServiceInputs};

use crate::dataplane::{Dataplane, batch};
use crate::host::steer::{self, SteerPlan};
use crate::services::Here;
use crate::store::follow::{self, Inputs as _};
use crate::store::{Store, StoreError};
use health_ports::HealthPorts;

struct State {
    inputs: ServiceInputs,
    /// What the dataplane was last given, by `NAMESPACE/NAME`; `None` until
    /// a full sync succeeded.
    pushed: Option<BTreeMap<String, Vec<ServicePort>>>,
    /// The frontends last steered from outside into the dataplane; `None`
    /// until the steering was installed.
    steered: Option<BTreeSet<ServiceKey>>,
    /// The health check node ports' listeners.
    health: HealthPorts,
}

/// Where packets from outside the cluster to this node's NodePorts and
/// externalIPs are steered from, and into (see `host::steer`).
#[derive(Debug, Clone)]
pub struct Steering {
    /// The nftables tables' name.
    pub table: String,
    /// The dataplane's host port.
    pub host_port: String,
    /// The devices they arrive on (the underlay's).
    pub devices: Vec<String>,
}

/// Reads and pushes this node's native Services.
pub struct Balancer {
    store: Arc<dyn Store>,
    here: Here,
    dataplane: Dataplane,
    steering: Steering,
    state: Mutex<State>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("here", &self.here)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// A balancer for this node (`here`) over `inputs` (listed from the
    /// store), steering packets from outside as `steering` says.
    pub fn new(
        store: Arc<dyn Store>,
        here: Here,
        dataplane: Dataplane,
        steering: Steering,
        inputs: ServiceInputs,
    ) -> Self {
        let health = HealthPorts::new(here.addresses.clone());
        Balancer {
            store,
            here,
            dataplane,
            steering,
            state: Mutex::new(State {
                inputs,
                pushed: None,
                steered: None,
                health,
            }),
        }
    }

    /// Lists every input from the store.
    pub async fn list(store: &dyn Store) -> Result<ServiceInputs, StoreError> {
        follow::list(store).await
    }

    /// A copy of the inputs (for `service_list`).
    pub async fn inputs(&self) -> ServiceInputs {
        self.state.lock().await.inputs.clone()
    }

    /// Changes the inputs with `change`, then pushes what changed.
    pub async fn update(&self, change: impl FnOnce(&mut ServiceInputs)) {
        let mut state = self.state.lock().await;
        change(&mut state.inputs);
        self.push(&mut state).await;
    }

    /// Pushes every Service again, replacing what the dataplane holds
    /// (after it restarted).
    pub async fn resync(&self) {
        let mut state = self.state.lock().await;
        state.pushed = None;
        self.push(&mut state).await;
    }

    /// The periodic round: pushes again if the last push failed, installs
    /// the steering again (after a failed install, or a flush of the node's
    /// nftables by something else), as the host's other tables are, and
    /// opens the health check node ports that could not be bound.
    pub async fn heal(&self) {
        let mut state = self.state.lock().await;
        // Forgotten, the steering is installed again, by the push if one is
        // due (once), else below.
        state.steered = None;
        if state.pushed.is_none() {
            self.push(&mut state).await;
        }
        if state.steered.is_none()
            && let Some(pushed) = &state.pushed
        {
            let outside = plan::outside_frontends(pushed);
            state.steered = self.steer(outside).await;
        }
        state.health.reconcile();
    }

    async fn push(&self, state: &mut State) {
        let balanced = state.inputs.balanced(&self.here);
        for refused in &balanced.refused {
            tracing::warn!(error = %error_chain(refused), "leaving a Service out of the native Services");
        }
        let (wanted, health) = (balanced.services, balanced.health);
        let batches = match &state.pushed {
            None => plan::full(&wanted, batch::BATCH_BYTES),
            Some(pushed) => plan::changes(&wanted, pushed, batch::BATCH_BYTES),
        };
        for batch in batches {
            if let Err(e) = self
                .dataplane
                .service_set(batch.services, batch.replace)
                .await
            {
                tracing::warn!(error = %e, "pushing native Services; trying again after the next change or within the periodic resync");
                state.pushed = None;
                return;
            }
        }
        let outside = plan::outside_frontends(&wanted);
        state.pushed = Some(wanted);
        if state.steered.as_ref() != Some(&outside) {
            state.steered = self.steer(outside).await;
        }
        state.health.update(&health);
    }

    /// Steers packets from outside to `frontends` into the dataplane (once
    /// it balances them); what is steered, or `None` if nft failed (tried
    /// again after the next change, or by [`Balancer::heal`]).
    async fn steer(&self, frontends: BTreeSet<ServiceKey>) -> Option<BTreeSet<ServiceKey>> {
        let plan = SteerPlan {
            host_port: self.steering.host_port.clone(),
            devices: self.steering.devices.clone(),
            frontends,
        };
        match steer::install(&self.steering.table, &plan).await {
            Ok(()) => Some(plan.frontends),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "steering NodePorts and externalIPs from outside into the dataplane; trying again after the next change or within the periodic resync");
                None
            }
        }
    }

    /// Follows the store until `stop`: each round watches both prefixes,
    /// lists them again, then pushes after every burst of events.
    pub async fn follow(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let this: &Self = &self;
        follow::follow("following the Services", stop, || {
            follow::round(
                this.store.as_ref(),
                |listed| this.update(|inputs| *inputs = listed),
                |batch| async move {
                    let mut state = this.state.lock().await;
                    if state.inputs.apply_all(&batch) {
                        this.push(&mut state).await;
                    }
                },
            )
        })
        .await;
    }
}

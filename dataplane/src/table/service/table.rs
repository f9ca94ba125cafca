//! The compiled service table: frontend address to the backends that may
//! serve it, each set behind a Maglev lookup table. Immutable once built and
//! published whole, like the other tables; a lookup is one hash-map probe and
//! one slot read, whatever the number of Services.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::error::ServiceError;
use super::maglev;
use super::model::{
    Affinity, FrontendKind, Origin, ServiceEndpoint, ServiceKey, ServicePort, TrafficPolicy,
};

/// The outcome of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The destination is no Service's frontend.
    NotService,
    /// Translate the destination to this backend.
    Backend {
        /// The backend's address and port.
        to: SocketAddr,
        /// The Service port it belongs to.
        service: Arc<str>,
        /// Whether the connection must come from this node (a client from
        /// outside the cluster under the `Cluster` traffic policy, which
        /// kube-proxy masquerades): the backend may be on another node, and
        /// its reply has to come back here to be translated back.
        masquerade: bool,
    },
    /// The Service has no usable endpoint: refuse the connection (ICMP
    /// unreachable, or a reset for TCP), as kube-proxy does.
    Reject {
        /// The Service port.
        service: Arc<str>,
    },
    /// A `Local` traffic policy and no usable endpoint on this node: drop.
    Drop {
        /// The Service port.
        service: Arc<str>,
    },
}

/// A set of backends behind its Maglev table.
#[derive(Debug, Default)]
struct Choice {
    backends: Box<[SocketAddr]>,
    slots: Box<[u32]>,
}

impl Choice {
    /// The usable endpoints of `endpoints`: the ready ones, or when none is
    /// ready the serving ones that are terminating (Kubernetes'
    /// ProxyTerminatingEndpoints), sorted so every node builds the same table.
    fn of<'a>(endpoints: impl Iterator<Item = &'a ServiceEndpoint> + Clone) -> Choice {
        let mut backends: Vec<SocketAddr> = endpoints
            .clone()
            .filter(|e| e.ready)
            .map(|e| SocketAddr::new(e.ip, e.port))
            .collect();
        if backends.is_empty() {
            backends = endpoints
                .filter(|e| e.serving && e.terminating)
                .map(|e| SocketAddr::new(e.ip, e.port))
                .collect();
        }
        backends.sort_unstable();
        backends.dedup();
        let identities: Vec<u64> = backends.iter().map(|&b| identity(b)).collect();
        Choice {
            slots: maglev::build(&identities),
            backends: backends.into_boxed_slice(),
        }
    }

    fn pick(&self, hash: u64) -> Option<SocketAddr> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.slots[(hash % self.slots.len() as u64) as usize];
        self.backends.get(slot as usize).copied()
    }
}

/// One compiled Service port.
#[derive(Debug)]
pub(super) struct Compiled {
    /// What it was compiled from: a rebuild reuses it while this is unchanged.
    source: ServicePort,
    name: Arc<str>,
    /// Every endpoint that serves (ready, or serving while terminating),
    /// sorted: open connections keep theirs while it is here, even when it
    /// takes no new ones (a pod shutting down finishes its connections).
    serving: Box<[SocketAddr]>,
    cluster: Choice,
    /// The node's own usable endpoints, when a policy is `Local`.
    local: Option<Choice>,
    internal: TrafficPolicy,
    external: TrafficPolicy,
    affinity: Affinity,
}

impl Compiled {
    fn choice(&self, policy: TrafficPolicy) -> &Choice {
        match (policy, &self.local) {
            (TrafficPolicy::Local, Some(local)) => local,
            _ => &self.cluster,
        }
    }
}

impl Compiled {
    fn of(port: &ServicePort) -> Compiled {
        let policies = [port.internal, port.external];
        let mut serving: Vec<SocketAddr> = port
            .endpoints
            .iter()
            .filter(|e| e.ready || e.serving)
            .map(|e| SocketAddr::new(e.ip, e.port))
            .collect();
        serving.sort_unstable();
        serving.dedup();
        Compiled {
            source: port.clone(),
            name: Arc::from(port.name.as_str()),
            serving: serving.into_boxed_slice(),
            cluster: Choice::of(port.endpoints.iter()),
            local: policies
                .contains(&TrafficPolicy::Local)
                .then(|| Choice::of(port.endpoints.iter().filter(|e| e.local))),
            internal: port.internal,
            external: port.external,
            affinity: port.affinity,
        }
    }
}

/// Frontend addresses to compiled Service ports.
#[derive(Debug, Default)]
pub struct ServiceTable {
    by_frontend: HashMap<ServiceKey, (FrontendKind, Arc<Compiled>)>,
    /// The same compiled ports by name, for the next rebuild to reuse.
    by_name: HashMap<Arc<str>, Arc<Compiled>>,
}

impl ServiceTable {
    /// Compiles `ports`. Refuses two Service ports on one frontend, and an
    /// endpoint whose address family differs from a frontend's.
    pub fn build(ports: &[ServicePort]) -> Result<ServiceTable, ServiceError> {
        Self::rebuild(ports, &ServiceTable::default())
    }

    /// Compiles `ports` as [`Self::build`] does, reusing `previous`'s
    /// compiled form of every port that has not changed: a change to a few
    /// Services among thousands costs their Maglev tables, not everyone's.
    pub fn rebuild(
        ports: &[ServicePort],
        previous: &ServiceTable,
    ) -> Result<ServiceTable, ServiceError> {
        let mut by_frontend = HashMap::with_capacity(ports.len());
        let mut by_name = HashMap::with_capacity(ports.len());
        for port in ports {
            check_families(port)?;
            let compiled = match previous.by_name.get(port.name.as_str()) {
                Some(same) if same.source == *port => Arc::clone(same),
                _ => Arc::new(Compiled::of(port)),
            };
            by_name.insert(Arc::clone(&compiled.name), Arc::clone(&compiled));
            for frontend in &port.frontends {
                let entry = (frontend.kind, Arc::clone(&compiled));
                if let Some((_, other)) = by_frontend.insert(frontend.key, entry) {
                    return Err(ServiceError::SharedFrontend {
                        frontend: frontend.key,
                        first: other.name.to_string(),
                        second: port.name.clone(),
                    });
                }
            }
        }
        Ok(ServiceTable {
            by_frontend,
            by_name,
        })
    }

    /// The compiled form of the port named `name` (to tell, in tests, a
    /// reused one from a recompiled one).
    #[cfg(test)]
    pub(super) fn compiled(&self, name: &str) -> Option<&Arc<Compiled>> {
        self.by_name.get(name)
    }

    /// How many frontends the table holds.
    pub fn len(&self) -> usize {
        self.by_frontend.len()
    }

    /// Whether the table holds no frontend.
    pub fn is_empty(&self) -> bool {
        self.by_frontend.is_empty()
    }

    /// Whether `backend` still serves the frontend `to`: ready, or serving
    /// while terminating. A connection keeps its backend while this holds,
    /// though a terminating one takes no new connections.
    pub fn lists(&self, to: ServiceKey, backend: SocketAddr) -> bool {
        self.by_frontend
            .get(&to)
            .is_some_and(|(_, service)| service.serving.binary_search(&backend).is_ok())
    }

    /// Chooses the backend for a new connection from `client` (with the
    /// connection's `flow_hash`) to `to`, arriving from `origin`.
    ///
    /// Pods reaching a cluster IP follow `internalTrafficPolicy`; clients
    /// outside the cluster reaching a node port or external IP follow
    /// `externalTrafficPolicy`; pods reaching an external frontend may use any
    /// endpoint (as kube-proxy short-circuits them to the cluster-wide set).
    pub fn select(
        &self,
        to: ServiceKey,
        client: IpAddr,
        flow_hash: u64,
        origin: Origin,
    ) -> Selection {
        let Some((kind, service)) = self.by_frontend.get(&to) else {
            return Selection::NotService;
        };
        let policy = match (kind, origin) {
            (FrontendKind::ClusterIp, _) => service.internal,
            (FrontendKind::External, Origin::External) => service.external,
            (FrontendKind::External, Origin::Pod) => TrafficPolicy::Cluster,
        };
        let hash = match service.affinity {
            Affinity::None => flow_hash,
            Affinity::ClientIp => maglev::mix(fold(client)),
        };
        let name = Arc::clone(&service.name);
        match service.choice(policy).pick(hash) {
            Some(to) => Selection::Backend {
                to,
                service: name,
                masquerade: origin == Origin::External && policy == TrafficPolicy::Cluster,
            },
            None if service.cluster.backends.is_empty() => Selection::Reject { service: name },
            None => Selection::Drop { service: name },
        }
    }
}

fn check_families(port: &ServicePort) -> Result<(), ServiceError> {
    for frontend in &port.frontends {
        if let Some(endpoint) = port
            .endpoints
            .iter()
            .find(|e| e.ip.is_ipv4() != frontend.key.ip.is_ipv4())
        {
            return Err(ServiceError::MixedFamilies {
                service: port.name.clone(),
                frontend: frontend.key,
                endpoint: endpoint.ip,
            });
        }
    }
    Ok(())
}

/// A backend's stable identity for Maglev: its address and port, mixed.
fn identity(backend: SocketAddr) -> u64 {
    maglev::mix(fold(backend.ip()) ^ u64::from(backend.port()).rotate_left(48))
}

/// An address folded to 64 bits.
fn fold(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            maglev::mix(bits as u64) ^ (bits >> 64) as u64
        }
    }
}

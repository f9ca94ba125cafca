//! `tweed daemon`: one node of the cluster.
//!
//! Start-up, in order: resolve the configuration; open the store; attach to or
//! start the dataplane; lease the node's subnets and publish its record; load
//! the pod records; set up the host (addresses and routes on `tweed0`,
//! masquerade); push the whole state to the dataplane; then serve
//! `control.sock` and run the background tasks (lease renewal, cluster watch →
//! peers, resync on every new dataplane, health probes, metrics) until SIGTERM
//! or SIGINT.
//!
//! A clean stop removes the host routes and masquerade and stops the
//! dataplane (pod interfaces stay), but keeps the lease: the node gets the same
//! subnets back if it returns within the TTL, and after that from its memory
//! file if they are still free.

mod handler;
mod policy_ops;
mod renew;
mod service_ops;
pub mod setup;
mod store_reply;
mod sync;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::balance::{Balancer, Steering};
use crate::cluster::lease::{self, HeldLease, LeaseRequest};
use crate::cluster::{ClusterError, ClusterView, NodeRecord};
use crate::config::{ConfigError, DaemonArgs, DaemonConfig, Datasource};
use crate::dataplane::Supervisor;
use crate::dataplane::supervisor::SupervisorError;
use crate::enforce::Enforcer;
use crate::health::HealthBook;
use crate::host::{self, HostError, HostPlan};
use crate::kubernetes::{KubeError, KubeSource, claim};
use crate::pods::{PodError, Pods};
use crate::services::Here;
use crate::store::{self, Store, StoreConfig, StoreError};

/// Why the daemon could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A directory could not be created.
    #[error("create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("open the store: {0}")]
    Store(#[from] StoreError),
    /// The dataplane could not be started.
    #[error("{0}")]
    Dataplane(#[from] SupervisorError),
    /// The node lease failed.
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The pod records could not be loaded.
    #[error("load the pods: {0}")]
    Pods(#[from] PodError),
    /// The Kubernetes datasource failed.
    #[error("kubernetes datasource")]
    Kube(#[from] KubeError),
    /// Host networking failed.
    #[error("set up the host: {0}")]
    Host(#[from] HostError),
    /// A socket could not be served.
    #[error("serve {what}: {source}")]
    Serve {
        /// Which socket.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The running node's state, shared by the tasks and the API handler.
pub struct Daemon {
    config: DaemonConfig,
    store: Arc<dyn Store>,
    store_description: String,
    supervisor: Arc<Supervisor>,
    pods: Pods,
    lease_request: LeaseRequest,
    held: RwLock<HeldLease>,
    view: watch::Receiver<ClusterView>,
    health: Arc<Mutex<HealthBook>>,
    enforcer: Arc<Enforcer>,
    /// Native Services, with `--native-services`.
    balancer: Option<Arc<Balancer>>,
    /// The API server, with `--datasource kubernetes`.
    kube: Option<KubeSource>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("node", &self.config.node_name)
            .finish_non_exhaustive()
    }
}

/// Where this node reads Services: its name marks local endpoints, its
/// underlay address is the frontend of node ports.
fn here(config: &DaemonConfig, record: &NodeRecord) -> Here {
    Here {
        node: config.node_name.clone(),
        addresses: vec![record.underlay_ip],
    }
}

impl Daemon {
    fn lease(&self) -> HeldLease {
        self.held.read().expect("lease lock").clone()
    }

    fn set_lease(&self, held: HeldLease) {
        *self.held.write().expect("lease lock") = held;
    }

    /// This node's published record.
    fn record(&self) -> NodeRecord {
        self.lease().record
    }

    fn host_plan(&self) -> HostPlan {
        HostPlan {
            device: "tweed0".into(),
            node_addrs: self.record().node_addrs(),
            cluster_cidrs: self.config.cluster_cidrs(),
            service_cidrs: if self.config.native_services {
                self.config.service_cidrs.clone()
            } else {
                Vec::new()
            },
        }
    }

    async fn install_host(&self) -> Result<(), HostError> {
        let ipv6 = self
            .config
            .cluster_cidrs()
            .iter()
            .any(|c| matches!(c, ipnet::IpNet::V6(_)));
        host::forwarding::enable(ipv6)?;
        host::routes::install(&self.host_plan()).await?;
        if self.config.masquerade {
            host::masquerade::install(MASQUERADE_TABLE, &self.config.cluster_cidrs()).await?;
        }
        host::filter::install(FILTER_TABLE, &self.filter_plan()).await?;
        if self.config.native_services {
            // Replies to clients outside leave the host port from the node's
            // own address (see `host::steer`).
            host::forwarding::accept_local("tweed0")?;
        }
        Ok(())
    }

    /// At start without native Services: removes what a run with them left
    /// (after a crash, or a change of the flag), so the node keeps no
    /// steering and its own processes' packets to ClusterIPs go to
    /// kube-proxy's rules, not to the dataplane. Once: nothing puts them
    /// back while this daemon runs.
    async fn remove_native_leftovers(&self) -> Result<(), HostError> {
        if self.config.native_services {
            return Ok(());
        }
        host::steer::remove(STEER_TABLE).await?;
        let service_routes = HostPlan {
            cluster_cidrs: Vec::new(),
            service_cidrs: self.config.service_cidrs.clone(),
            ..self.host_plan()
        };
        host::routes::remove_routes(&service_routes).await
    }

    /// The filter table: cluster sources only from tweed0 (when pods'
    /// traffic to other nodes is masqueraded, so none arrives otherwise), and
    /// untranslated Service traffic dropped.
    fn filter_plan(&self) -> host::filter::FilterPlan {
        host::filter::FilterPlan {
            host_port: "tweed0".into(),
            cluster_cidrs: if self.config.masquerade {
                self.config.cluster_cidrs()
            } else {
                Vec::new()
            },
            service_cidrs: self.config.service_cidrs.clone(),
        }
    }
}

/// Where packets from outside to native Services' NodePorts and externalIPs
/// are steered from: the underlay's device (none if it cannot be found:
/// then they are not steered, and the log says why).
async fn steering(config: &DaemonConfig) -> Steering {
    let devices = match host::interface_of(config.underlay_ip).await {
        Ok(underlay) => vec![underlay.ifname],
        Err(e) => {
            tracing::warn!(error = %tweed_api::dataplane::proto::error_chain(&e), underlay = %config.underlay_ip, "no underlay device found: NodePorts and externalIPs are not reachable from outside");
            Vec::new()
        }
    };
    Steering {
        table: STEER_TABLE.to_owned(),
        host_port: "tweed0".to_owned(),
        devices,
    }
}

/// How long start-up waits for the API server's first listings.
const KUBE_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// The nftables table that holds the masquerade rule.
pub const MASQUERADE_TABLE: &str = "tweed";
/// The nftables table that holds the node's filter rules.
pub const FILTER_TABLE: &str = "tweed_filter";
/// The nftables tables (`netdev` and `inet`) that steer packets from outside
/// to native Services into the dataplane.
pub const STEER_TABLE: &str = "tweed_steer";

/// Runs the node until SIGTERM or SIGINT.
pub async fn run(run_dir: std::path::PathBuf, flags: DaemonArgs) -> Result<(), DaemonError> {
    let config = setup::configure(run_dir, flags).await?;
    for dir in [&config.state_dir, &config.run_dir] {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    tracing::info!(node = %config.node_name, underlay = %config.underlay_ip, mtu = config.mtu, backend = ?config.backend, "starting");
    let store_config = StoreConfig {
        state_dir: config.state_dir.clone(),
        etcd_endpoints: config.etcd_endpoints.clone(),
        etcd_auth: config.etcd_auth.clone(),
        etcd_timeout: Duration::from_secs(5),
    };
    let local = store::open(&store_config).await?;
    let embedded = config.state_dir.join(store::EMBEDDED_FILE);
    let (kube, store, store_description) = match &config.datasource {
        Datasource::Kubernetes { kubeconfig } => {
            let source = KubeSource::connect(kubeconfig.as_deref()).await?;
            let description = format!(
                "kubernetes {} (this node's pods: embedded {})",
                source.server(),
                embedded.display()
            );
            let store = source.store(local, &config.node_name);
            (Some(source), store, description)
        }
        Datasource::Etcd(endpoints) => (None, local, format!("etcd {}", endpoints.join(","))),
        Datasource::Embedded => (None, local, format!("embedded {}", embedded.display())),
    };

    let supervisor = Arc::new(Supervisor::new(&config));
    supervisor.start().await?;

    let memory = setup::recall(&config);
    let lease_request = LeaseRequest {
        record: NodeRecord {
            name: config.node_name.clone(),
            subnets: Vec::new(),
            underlay_ip: config.underlay_ip,
            vtep_mac: tweed_api::dataplane::proto::MacAddr(
                tweed_dataplane::daemon::config::vtep_mac_for(config.underlay_ip),
            ),
            backend: config.backend,
            vxlan_source_ports: Some(config.vxlan_source_ports),
            // Only VXLAN has a header to say so in.
            partial_checksums: config.backend == crate::config::Backend::Vxlan,
        },
        plans: config.plans.clone(),
        previous: memory.subnets,
        ttl: config.lease_ttl,
    };
    // The watches start before the claim: other nodes' records and the
    // policies are being listed while this node waits for its pod CIDR.
    let mut kube_tasks = tokio::task::JoinSet::new();
    let held = match &kube {
        Some(source) => {
            source.spawn(&config.node_name, config.native_services, &mut kube_tasks);
            let record = claim::claim(
                source.client(),
                lease_request.record.clone(),
                &config.cluster_cidrs(),
            )
            .await?;
            tracing::info!(subnets = ?record.subnets, "the node's subnets, from its Node's spec.podCIDRs");
            if !source.wait_synced(KUBE_SYNC_TIMEOUT).await {
                tracing::warn!(
                    "not every resource is listed from the API server yet; starting with what is (tweed status shows which)"
                );
            }
            HeldLease {
                lease: None,
                record,
            }
        }
        None => {
            let held = lease::acquire(&store, &lease_request).await?;
            tracing::info!(subnets = ?held.record.subnets, lease = ?held.lease, "leased the node's subnets");
            held
        }
    };
    let memory = setup::Memory {
        node: config.node_name.clone(),
        subnets: held.record.subnets.clone(),
    };
    if let Err(e) = setup::remember(&config, &memory) {
        tracing::warn!(error = %e, "remembering the node's subnets");
    }
    let pods = Pods::load(
        store.clone(),
        &config.node_name,
        &held.record.subnets,
        supervisor.dataplane().clone(),
        config.mtu,
        &config.run_dir.join("netns"),
    )
    .await?;

    // The view starts from a listing, so the first resync does not take an
    // empty view for "no peers" and remove the ones a running dataplane has.
    let initial = ClusterView::from_lists(
        &store.list(crate::cluster::keys::NODES).await?,
        &store.list(crate::cluster::keys::STATIC_PEERS).await?,
    );
    let (view_tx, view_rx) = watch::channel(initial);
    let mut policy_addrs = held.record.node_addrs();
    policy_addrs.push(held.record.underlay_ip);
    let enforcer = Arc::new(Enforcer::new(
        store.clone(),
        &config.node_name,
        policy_addrs,
        supervisor.dataplane().clone(),
        Enforcer::list(store.as_ref()).await?,
    ));
    let balancer = if config.native_services {
        Some(Arc::new(Balancer::new(
            store.clone(),
            here(&config, &held.record),
            supervisor.dataplane().clone(),
            steering(&config).await,
            Balancer::list(store.as_ref()).await?,
        )))
    } else {
        None
    };
    let daemon = Arc::new(Daemon {
        config,
        store: store.clone(),
        store_description,
        supervisor: supervisor.clone(),
        pods,
        lease_request,
        held: RwLock::new(held),
        view: view_rx,
        health: Arc::new(Mutex::new(HealthBook::default())),
        enforcer: enforcer.clone(),
        balancer: balancer.clone(),
        kube,
    });
    host::routes::wait_for_link("tweed0", Duration::from_secs(10)).await?;
    daemon.install_host().await?;
    daemon.remove_native_leftovers().await?;
    sync::resync(&daemon, sync::Reason::NewDataplane).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::cluster::watch::follow(store.clone(), view_tx));
    tasks.spawn(supervisor.clone().monitor(stop_rx.clone()));
    tasks.spawn(sync::follow(daemon.clone(), stop_rx.clone()));
    if daemon.lease().lease.is_some() {
        tasks.spawn(renew::run(daemon.clone(), stop_rx.clone()));
    }
    tasks.spawn(enforcer.follow(stop_rx.clone()));
    if let Some(balancer) = balancer {
        tasks.spawn(balancer.follow(stop_rx.clone()));
    }
    spawn_health(&daemon, &mut tasks, &stop_rx).await;
    spawn_metrics(&daemon, &mut tasks, &stop_rx).await?;
    let server = handler::serve(daemon.clone()).await?;
    tracing::info!(socket = %daemon.config.control_socket().display(), "ready");

    wait_for_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    drop(server);
    tasks.abort_all();
    kube_tasks.abort_all();
    let plan = daemon.host_plan();
    if let Err(e) = host::routes::remove(&plan).await {
        tracing::warn!(error = %e, "removing the host routes");
    }
    if daemon.config.masquerade
        && let Err(e) = host::masquerade::remove(MASQUERADE_TABLE).await
    {
        tracing::warn!(error = %e, "removing the masquerade table");
    }
    if let Err(e) = host::filter::remove(FILTER_TABLE).await {
        tracing::warn!(error = %e, "removing the filter table");
    }
    if daemon.config.native_services
        && let Err(e) = host::steer::remove(STEER_TABLE).await
    {
        tracing::warn!(error = %e, "removing the steering tables");
    }
    supervisor.stop().await;
    tracing::info!("stopped");
    Ok(())
}

async fn spawn_health(
    daemon: &Arc<Daemon>,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &watch::Receiver<bool>,
) {
    let port = daemon.config.health_port;
    for addr in daemon.record().node_addrs() {
        let bind = std::net::SocketAddr::new(addr, port);
        match tokio::net::TcpListener::bind(bind).await {
            Ok(listener) => {
                tasks.spawn(crate::health::responder::serve(
                    listener,
                    daemon.config.node_name.clone(),
                    stopped(stop.clone()),
                ));
            }
            Err(e) => tracing::warn!(%bind, error = %e, "serving the health endpoint"),
        }
    }
    tasks.spawn(crate::health::prober::run(
        daemon.health.clone(),
        Duration::from_secs(2),
        Duration::from_secs(1),
        stopped(stop.clone()),
    ));
}

async fn spawn_metrics(
    daemon: &Arc<Daemon>,
    tasks: &mut tokio::task::JoinSet<()>,
    stop: &watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let Some(addr) = daemon.config.metrics_addr else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Serve {
            what: format!("metrics on {addr}"),
            source,
        })?;
    let source_daemon = daemon.clone();
    let source: crate::metrics::MetricsSource = Arc::new(move || {
        let daemon = source_daemon.clone();
        Box::pin(async move { crate::metrics::render(handler::metrics_snapshot(&daemon).await) })
    });
    tasks.spawn(crate::metrics::serve(
        listener,
        source,
        stopped(stop.clone()),
    ));
    tracing::info!(%addr, "serving metrics");
    Ok(())
}

/// Resolves once `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for signals; stop the daemon with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

//! `control.sock`: the daemon's answers to the CLI and the CNI plugin.

use std::sync::Arc;

use futures::future::BoxFuture;
use ipnet::IpNet;

use super::store_reply::store_error;
use super::{Daemon, policy_ops, service_ops};
use crate::api::node::{
    DataplaneStatus, NodeInfo, NodeKind, NodesReply, PeerAdd, PeerStatus, PeersReply, StatusReply,
    StoreStatus,
};
use crate::api::pod::{PodInfo, PodsReply, ReleasedReply};
use crate::api::proto::RoutesReply;
use crate::api::{ApiError, ErrorKind, Handler, Peer, Request, ResponseBody, ServerHandle};
use crate::cluster::record::SubnetClaim;
use crate::cluster::{NodeRecord, keys};
use crate::dataplane::DataplaneError;
use crate::dataplane::supervisor::PROBE_TIMEOUT;
use crate::ipam::{Attachment, IpamError};
use crate::metrics::{MetricsSnapshot, PoolUsage};
use crate::pods::{PodError, PodRecord, PodRequest};

/// Serves `control.sock` until the handle is dropped.
pub async fn serve(daemon: Arc<Daemon>) -> Result<ServerHandle, super::DaemonError> {
    let path = daemon.config.control_socket();
    crate::api::serve(&path, Arc::new(Api(daemon)))
        .await
        .map_err(|e| super::DaemonError::Serve {
            what: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })
}

struct Api(Arc<Daemon>);

impl Handler for Api {
    fn handle(&self, request: Request) -> BoxFuture<'_, Result<ResponseBody, ApiError>> {
        Box::pin(handle(&self.0, request, Peer { pid: None }))
    }

    fn handle_from(
        &self,
        request: Request,
        peer: Peer,
    ) -> BoxFuture<'_, Result<ResponseBody, ApiError>> {
        Box::pin(handle(&self.0, request, peer))
    }
}

async fn handle(daemon: &Daemon, request: Request, peer: Peer) -> Result<ResponseBody, ApiError> {
    let dp = daemon.supervisor.dataplane();
    Ok(match request {
        Request::Status(_) => ResponseBody::Status(status(daemon).await),
        Request::PodAdd(mut add) => {
            if let Some(labels) = kube_labels(daemon, &add).await? {
                add.labels = labels;
            }
            let netns_handle = crate::pods::netns::resolve(&add.netns, peer.pid, add.netns_fd)
                .map_err(|e| netns_error(&e))?;
            let (record, port_created) = daemon
                .pods
                .add(PodRequest {
                    container_id: add.container_id,
                    netns: add.netns,
                    ifname: add.ifname,
                    namespace: add.namespace,
                    name: add.name,
                    labels: add.labels,
                    mtu: add.mtu,
                    ips: add.ips,
                    mac: add.mac,
                    netns_handle,
                })
                .await
                .map_err(pod_error)?;
            policy_ops::pod_attached(daemon, &record, port_created).await;
            ResponseBody::Pod(pod_info(daemon, record))
        }
        Request::PodDel(del) => {
            let released = daemon
                .pods
                .del(&del.container_id, del.ifname.as_deref())
                .await
                .map_err(pod_error)?;
            policy_ops::pods_released(daemon, &released).await;
            released_reply(daemon, released)
        }
        Request::PodGet(key) => match daemon.pods.get(&key.container_id, &key.ifname).await {
            Some(record) => ResponseBody::Pod(pod_info(daemon, record)),
            None => {
                return Err(ApiError::not_found(format!(
                    "no pod attachment {}/{} on node {}",
                    key.container_id, key.ifname, daemon.config.node_name
                )));
            }
        },
        Request::PodList(_) => ResponseBody::Pods(PodsReply {
            pods: daemon
                .pods
                .list()
                .await
                .into_iter()
                .map(|r| pod_info(daemon, r))
                .collect(),
        }),
        Request::Gc(args) => {
            let valid: Vec<Attachment> = args
                .valid
                .into_iter()
                .map(|k| Attachment {
                    container_id: k.container_id,
                    ifname: k.ifname,
                })
                .collect();
            let released = daemon.pods.gc(&valid).await.map_err(pod_error)?;
            policy_ops::pods_released(daemon, &released).await;
            released_reply(daemon, released)
        }
        Request::NodeList(_) => ResponseBody::Nodes(NodesReply {
            nodes: nodes(daemon),
        }),
        Request::RouteList(_) => ResponseBody::Routes(RoutesReply {
            routes: dp.routes().await.map_err(dataplane_error)?,
        }),
        Request::PeerAdd(add) => {
            peer_add(daemon, add).await?;
            ResponseBody::empty()
        }
        Request::PeerRemove(args) => {
            peer_remove(daemon, &args.name).await?;
            ResponseBody::empty()
        }
        Request::PeerList(_) => {
            // From the store, not the view, so a peer just added is listed.
            let listed = daemon
                .store
                .list(keys::STATIC_PEERS)
                .await
                .map_err(store_error)?;
            ResponseBody::Peers(PeersReply {
                peers: listed
                    .iter()
                    .filter_map(|kv| NodeRecord::decode(&kv.value).ok())
                    .map(|r| node_info(&r, NodeKind::Static))
                    .collect(),
            })
        }
        Request::Stats(_) => ResponseBody::Stats(dp.stats().await.map_err(dataplane_error)?),
        Request::Trace(trace) => {
            ResponseBody::Trace(dp.trace(trace).await.map_err(dataplane_error)?)
        }
        Request::PolicyApply(args) => {
            ResponseBody::Applied(policy_ops::apply(daemon, &args.text).await?)
        }
        Request::PolicyDelete(key) => {
            policy_ops::delete(daemon, &key).await?;
            ResponseBody::empty()
        }
        Request::PolicyList(_) => ResponseBody::Policies(policy_ops::list(daemon).await),
        Request::PolicyExplain(args) => {
            ResponseBody::Explain(policy_ops::explain(daemon, &args).await?)
        }
        Request::LabelPod(args) => {
            ResponseBody::Labels(policy_ops::label_pod(daemon, &args).await?)
        }
        Request::LabelNamespace(args) => {
            ResponseBody::Labels(policy_ops::label_namespace(daemon, &args).await?)
        }
        Request::ServiceApply(args) => {
            ResponseBody::ServicesApplied(service_ops::apply(daemon, &args.text).await?)
        }
        Request::ServiceDelete(args) => {
            service_ops::delete(daemon, &args).await?;
            ResponseBody::empty()
        }
        Request::ServiceList(_) => ResponseBody::Services(service_ops::list(daemon).await?),
    })
}

fn released_reply(daemon: &Daemon, released: Vec<PodRecord>) -> ResponseBody {
    ResponseBody::Released(ReleasedReply {
        released: released.into_iter().map(|r| pod_info(daemon, r)).collect(),
    })
}

fn pod_info(daemon: &Daemon, record: PodRecord) -> PodInfo {
    PodInfo {
        gateway_v4: record
            .ipv4
            .map(|_| tweed_dataplane::table::tables::GATEWAY_V4),
        gateway_v6: record
            .ipv6
            .map(|_| tweed_dataplane::table::tables::GATEWAY_V6),
        container_id: record.container_id,
        ifname: record.ifname,
        namespace: record.namespace,
        name: record.name,
        netns: record.netns,
        ipv4: record.ipv4,
        ipv6: record.ipv6,
        mac: record.mac,
        mtu: record.mtu,
        labels: record.labels,
        node: daemon.config.node_name.clone(),
    }
}

fn node_info(record: &NodeRecord, kind: NodeKind) -> NodeInfo {
    NodeInfo {
        name: record.name.clone(),
        subnets: record.subnets.clone(),
        underlay_ip: record.underlay_ip,
        vtep_mac: record.vtep_mac,
        backend: record.backend,
        kind,
        node_addrs: if kind == NodeKind::Static {
            Vec::new()
        } else {
            record.node_addrs()
        },
    }
}

/// This node first, then the other nodes, then static peers.
fn nodes(daemon: &Daemon) -> Vec<NodeInfo> {
    let this = daemon.record();
    let view = daemon.view.borrow();
    let mut out = vec![node_info(&this, NodeKind::This)];
    out.extend(
        view.nodes
            .values()
            .filter(|n| n.name != this.name)
            .map(|n| node_info(n, NodeKind::Node)),
    );
    out.extend(
        view.statics
            .values()
            .map(|n| node_info(n, NodeKind::Static)),
    );
    out
}

async fn status(daemon: &Daemon) -> StatusReply {
    let state = daemon.supervisor.state();
    // Answers at once while the supervisor knows the dataplane is down, and
    // within the health check's timeout otherwise.
    let (ports, io) = if state.up {
        let dataplane = daemon.supervisor.dataplane().within(PROBE_TIMEOUT);
        let ports = dataplane.ports().await;
        let io = match &ports {
            Ok(_) => dataplane.stats().await.ok().and_then(|s| s.io),
            Err(_) => None,
        };
        (ports, io)
    } else {
        (Err(DataplaneError::Down), None)
    };
    let health = daemon.health.lock().expect("health lock").peers();
    let peers = nodes(daemon)
        .into_iter()
        .filter(|n| n.kind != NodeKind::This)
        .map(|node| {
            let probe = health.iter().find(|h| h.name == node.name);
            PeerStatus {
                reachable: probe.and_then(|h| h.reachable),
                rtt_ms: probe.and_then(|h| h.rtt).map(|d| d.as_secs_f64() * 1e3),
                last_error: probe.and_then(|h| h.last_error.clone()),
                node,
            }
        })
        .collect();
    StatusReply {
        node: node_info(&daemon.record(), NodeKind::This),
        datasource: daemon.kube.as_ref().map(|k| k.report()),
        native_services: daemon.balancer.is_some(),
        store: daemon.store_description.clone(),
        store_health: {
            let health = daemon.store.health();
            StoreStatus {
                up: !health.failing,
                error: health.error,
                failures: health.failures,
            }
        },
        dataplane: DataplaneStatus {
            up: state.up && ports.is_ok(),
            pid: state.pid,
            restarts: state.restarts,
            socket: daemon.supervisor.dataplane().socket().display().to_string(),
            ports: ports.as_ref().map_or(0, Vec::len),
            error: state.error.or(ports.err().map(|e| e.to_string())),
            io,
        },
        peers,
    }
}

/// The metrics of this node now.
pub async fn metrics_snapshot(daemon: &Daemon) -> MetricsSnapshot {
    let dataplane = if daemon.supervisor.state().up {
        let dp = daemon.supervisor.dataplane().within(PROBE_TIMEOUT);
        dp.stats().await.ok()
    } else {
        None
    };
    let peers = daemon.health.lock().expect("health lock").peers();
    MetricsSnapshot {
        node: daemon.config.node_name.clone(),
        dataplane,
        dataplane_restarts: daemon.supervisor.state().restarts,
        store: daemon.store.health(),
        peers,
        ipam: daemon
            .pods
            .usage()
            .await
            .into_iter()
            .map(|u| PoolUsage {
                subnet: u.subnet.to_string(),
                capacity: u.capacity,
                used: u.used,
            })
            .collect(),
        datasource: daemon
            .kube
            .as_ref()
            .map(|k| k.report().resources)
            .unwrap_or_default(),
    }
}

/// Records a static peer; its subnets are claimed like a node's (without a
/// lease), so no node leases them.
async fn peer_add(daemon: &Daemon, add: PeerAdd) -> Result<(), ApiError> {
    if add.name == daemon.config.node_name || daemon.view.borrow().nodes.contains_key(&add.name) {
        return Err(ApiError::conflict(format!(
            "peer_add.name: {:?} is a tweed node; static peers are for hosts that run no tweed",
            add.name
        )));
    }
    let claims = daemon
        .store
        .list(keys::SUBNETS)
        .await
        .map_err(store_error)?;
    for subnet in &add.subnets {
        for kv in &claims {
            let (Some(net), Ok(claim)) = (
                keys::subnet_of(&kv.key),
                serde_json::from_slice::<SubnetClaim>(&kv.value),
            ) else {
                continue;
            };
            if claim.node != add.name && overlaps(&net, subnet) {
                return Err(ApiError::conflict(format!(
                    "peer_add.subnets: {subnet} overlaps {net}, held by {}",
                    claim.node
                )));
            }
        }
    }
    let claim = serde_json::to_vec(&SubnetClaim {
        node: add.name.clone(),
    })
    .expect("a claim always serializes");
    for subnet in &add.subnets {
        let created = daemon
            .store
            .create(&keys::subnet(subnet), claim.clone(), None)
            .await
            .map_err(store_error)?;
        if created.is_none() {
            let existing = daemon
                .store
                .get(&keys::subnet(subnet))
                .await
                .map_err(store_error)?;
            let ours = existing
                .and_then(|kv| serde_json::from_slice::<SubnetClaim>(&kv.value).ok())
                .is_some_and(|c| c.node == add.name);
            if !ours {
                return Err(ApiError::conflict(format!(
                    "peer_add.subnets: {subnet} was just claimed by another node"
                )));
            }
        }
    }
    let record = NodeRecord {
        name: add.name.clone(),
        subnets: add.subnets,
        underlay_ip: add.underlay_ip,
        vtep_mac: add.vtep_mac,
        backend: add.backend,
        // A kernel vxlan device sends from any port of its ephemeral range.
        vxlan_source_ports: None,
        partial_checksums: false,
    };
    // Subnets the peer no longer has are released.
    let old = daemon.view.borrow().statics.get(&add.name).cloned();
    if let Some(old) = old {
        for subnet in old.subnets.iter().filter(|s| !record.subnets.contains(s)) {
            let _ = daemon.store.delete(&keys::subnet(subnet)).await;
        }
    }
    daemon
        .store
        .put(&keys::static_peer(&add.name), record.encode(), None)
        .await
        .map_err(store_error)?;
    Ok(())
}

async fn peer_remove(daemon: &Daemon, name: &str) -> Result<(), ApiError> {
    let Some(kv) = daemon
        .store
        .get(&keys::static_peer(name))
        .await
        .map_err(store_error)?
    else {
        return Err(ApiError::not_found(format!(
            "peer_remove.name: no static peer {name:?}"
        )));
    };
    daemon.store.delete(&kv.key).await.map_err(store_error)?;
    if let Ok(record) = NodeRecord::decode(&kv.value) {
        for subnet in &record.subnets {
            let _ = daemon.store.delete(&keys::subnet(subnet)).await;
        }
    }
    Ok(())
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// How long a pod ADD waits for the API server's watch to show the pod.
const POD_WATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// With the Kubernetes datasource, the labels of the pod being added, from
/// the API server (kubelet passes none to the CNI). The ADD can come before
/// the watch has seen the pod: it waits [`POD_WATCH_WAIT`] for it.
async fn kube_labels(
    daemon: &Daemon,
    add: &crate::api::pod::PodAdd,
) -> Result<Option<crate::policy::Labels>, ApiError> {
    let (Some(source), Some(namespace), Some(name)) = (&daemon.kube, &add.namespace, &add.name)
    else {
        return Ok(None);
    };
    match source.pod_labels(namespace, name, POD_WATCH_WAIT).await {
        Some(labels) => Ok(Some(labels)),
        None => Err(ApiError::unavailable(
            "the Kubernetes API server",
            format!(
                "pod {namespace}/{name} was not seen in {}s of watching pods (does it exist, and may tweed list pods?)",
                POD_WATCH_WAIT.as_secs()
            ),
        )),
    }
}

fn dataplane_error(e: DataplaneError) -> ApiError {
    match e {
        DataplaneError::Refused { error, .. } => {
            // What the caller could have got wrong passes through; the rest
            // (a dataplane refusing the daemon's own lines) is the node's fault.
            let kind = match error.kind {
                kind @ (ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::NotFound) => kind,
                _ => ErrorKind::Io,
            };
            ApiError::new(kind, error.message)
        }
        other => ApiError::unavailable("the dataplane", other),
    }
}

fn pod_error(e: PodError) -> ApiError {
    match e {
        PodError::Ipam(e @ IpamError::PoolExhausted { .. }) => ApiError::exhausted(e.to_string()),
        PodError::Ipam(e) => ApiError::invalid(e.to_string()),
        PodError::Store { step, source } => {
            ApiError::unavailable(step, crate::store::error_chain(&source))
        }
        PodError::Dataplane { step, source } => {
            let inner = dataplane_error(source);
            ApiError::new(inner.kind, format!("{step}: {}", inner.message))
        }
        PodError::Invalid(message) => ApiError::invalid(message),
        PodError::Conflict { .. } => ApiError::conflict(e.to_string()),
        PodError::Netns(e) => netns_error(&e),
        PodError::MacDiffers { .. } => ApiError::invalid(e.to_string()),
    }
}

/// `invalid` naming `pod_add.netns`, so the plugin answers CNI code 4, with
/// every cause (ENOENT, "not a network namespace", ...).
fn netns_error(e: &crate::pods::netns::NetnsError) -> ApiError {
    let mut msg = format!("pod_add.netns: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::invalid(msg)
}

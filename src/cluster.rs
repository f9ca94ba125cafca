//! A cluster of control daemons for multi-node tests: daemons started at the
//! same moment, pods attached through a daemon's `control.sock`, and the
//! daemon's answers read back as typed values.
//!
//! [`start_together`] starts every daemon from its own thread, so their
//! start-ups (lease races included) overlap as they do when a cluster boots;
//! it returns once every control socket accepts. [`ClusterPod::add`] makes a
//! pod namespace and asks the daemon for an attachment (`pod_add`), as the CNI
//! plugin does, then waits until the address is usable; its drop releases
//! the attachment (`pod_del`, best effort: the daemon may be gone) before the
//! namespace is deleted.
//!
//! The typed views ([`status`], [`node_names`], [`routed_prefixes`]) go
//! through the `tweed` CLI with `-o json`, so the tests also exercise what an
//! operator types.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use tweed_control::api::node::StatusReply;
use tweed_control::api::pod::{PodAdd, PodDel, PodInfo};
use tweed_control::api::{Client, ClientError, Request, ResponseBody};

use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::poll;

/// The interface name pods get.
pub const IFNAME: &str = "eth0";
/// The Kubernetes namespace test pods are recorded in.
pub const POD_NAMESPACE: &str = "default";
/// How long a pod's address may take to appear on its interface.
const ADDRESS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a drop-time `pod_del` may wait for the daemon.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// One daemon to start: its namespace, node name and extra flags.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec<'a> {
    /// The node's namespace (outlives the daemon).
    pub netns: &'a Netns,
    /// The node's name.
    pub name: &'a str,
    /// Flags after the harness's own (see [`Daemon::start`]).
    pub args: &'a [String],
}

/// Starts one daemon per spec, each from its own thread at the same moment,
/// and returns them in spec order once every one accepts on its control
/// socket. If one fails to start, the others are stopped (dropped) and its
/// panic is passed on.
pub fn start_together(specs: &[NodeSpec<'_>]) -> Vec<Daemon> {
    let results: Vec<std::thread::Result<Daemon>> = std::thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || Daemon::start(spec.netns, spec.name, spec.args)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut daemons = Vec::with_capacity(results.len());
    let mut failure = None;
    for result in results {
        match result {
            Ok(daemon) => daemons.push(daemon),
            Err(panic) => failure = failure.or(Some(panic)),
        }
    }
    if let Some(panic) = failure {
        drop(daemons);
        std::panic::resume_unwind(panic);
    }
    daemons
}

/// Makes one call on `daemon`'s control socket.
pub fn call(daemon: &Daemon, request: Request) -> Result<ResponseBody, ClientError> {
    tweed_control::api::client::call(&daemon.control_socket(), request)
}

/// `tweed status -o json` on `daemon`, parsed.
pub fn status(daemon: &Daemon) -> StatusReply {
    let json = daemon.cli_json(&["status"]);
    serde_json::from_value(json.clone()).unwrap_or_else(|e| {
        panic!(
            "`tweed status` on {} is no status ({e}): {json}",
            daemon.name()
        )
    })
}

/// The node's first IPv4 subnet, from `tweed status`.
pub fn subnet_v4(daemon: &Daemon) -> IpNet {
    let status = status(daemon);
    status
        .node
        .subnets
        .iter()
        .copied()
        .find(|s| matches!(s, IpNet::V4(_)))
        .unwrap_or_else(|| panic!("{} holds no IPv4 subnet: {:?}", daemon.name(), status.node))
}

/// The node names `tweed nodes -o json` lists, in its order.
pub fn node_names(daemon: &Daemon) -> Vec<String> {
    let json = daemon.cli_json(&["nodes"]);
    json["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("`tweed nodes` on {} lists no nodes: {json}", daemon.name()))
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The prefixes `tweed routes -o json` lists, with their next hops.
pub fn routes(daemon: &Daemon) -> Vec<(IpNet, String)> {
    let json = daemon.cli_json(&["routes"]);
    json["routes"]
        .as_array()
        .unwrap_or_else(|| {
            panic!(
                "`tweed routes` on {} lists no routes: {json}",
                daemon.name()
            )
        })
        .iter()
        .map(|r| {
            let prefix = r["prefix"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("a route without a prefix: {r}"));
            (
                prefix,
                r["next_hop"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Whether `daemon`'s dataplane has a route for exactly `prefix`.
pub fn routes_prefix(daemon: &Daemon, prefix: IpNet) -> bool {
    routes(daemon).iter().any(|(p, _)| *p == prefix)
}

/// A pod namespace attached through a daemon's `pod_add`.
#[derive(Debug)]
pub struct ClusterPod {
    /// The attachment as `pod_add` answered it.
    pub info: PodInfo,
    /// The pod's namespace.
    pub netns: Netns,
    socket: PathBuf,
}

impl ClusterPod {
    /// Creates namespace `tw-<prefix>-<role>-<pid>` and attaches it to
    /// `daemon` as pod `default/<role>` (container id `<prefix>-<role>`);
    /// returns once its IPv4 address is usable. Panics with the API error if
    /// `pod_add` fails.
    pub fn add(daemon: &Daemon, prefix: &str, role: &str) -> Self {
        Self::add_labelled(daemon, prefix, role, &[])
    }

    /// [`ClusterPod::add`] with these labels on the pod.
    pub fn add_labelled(
        daemon: &Daemon,
        prefix: &str,
        role: &str,
        labels: &[(&str, &str)],
    ) -> Self {
        let netns = Netns::new(prefix, role);
        let request = Request::PodAdd(PodAdd {
            container_id: format!("{prefix}-{role}"),
            netns: netns.path(),
            ifname: IFNAME.into(),
            namespace: Some(POD_NAMESPACE.into()),
            name: Some(role.into()),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            mtu: None,
            ips: Vec::new(),
            mac: None,
            netns_fd: None,
        });
        let info = match call(daemon, request) {
            Ok(ResponseBody::Pod(info)) => info,
            other => panic!("pod_add {role} on {}: {other:?}", daemon.name()),
        };
        let pod = Self {
            info,
            netns,
            socket: daemon.control_socket(),
        };
        pod.wait_address();
        pod
    }

    /// The pod's IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.info
            .ipv4
            .unwrap_or_else(|| panic!("pod {} has no IPv4 address", self.info.name))
    }

    /// The pod's IPv4 address as an [`IpAddr`].
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.ipv4())
    }

    /// Waits until the pod's IPv4 address is on its interface.
    fn wait_address(&self) {
        let wanted = format!("{}/32", self.ipv4());
        let mut last = Vec::new();
        let ready = poll::wait(ADDRESS_TIMEOUT, || {
            last = self.netns.addresses(IFNAME);
            last.iter()
                .any(|(addr, flags)| *addr == wanted && flags.is_empty())
        });
        assert!(
            ready,
            "pod {}: {IFNAME} should carry {wanted}; it has {last:?}",
            self.info.name
        );
    }
}

impl Drop for ClusterPod {
    fn drop(&mut self) {
        // Best effort: the daemon may already be stopped; its store (and the
        // pod's namespace, just below) go with the test anyway.
        let Ok(mut client) = Client::connect(&self.socket) else {
            return;
        };
        let _ = client.set_timeout(Some(RELEASE_TIMEOUT));
        let _ = client.call(Request::PodDel(PodDel {
            container_id: self.info.container_id.clone(),
            ifname: Some(self.info.ifname.clone()),
        }));
    }
}

//! The control daemon from a test: one node running `tweed daemon` with its
//! embedded store, calls on its `control.sock`, and pod namespaces attached
//! through `pod_add`.
//!
//! [`SingleNode`] is an [`Underlay`] of one node namespace with a
//! [`Daemon`] on it; its fields drop daemon first (its dataplane with it),
//! then the namespaces. Calls go through `tweed_control`'s own blocking
//! [`Client`], so a test speaks exactly what the CNI plugin and the CLI
//! speak. The typed helpers return the daemon's refusal as
//! [`ClientError::Api`] and panic only where a test has no use for a
//! failure (listing calls); a daemon that died mid-call is a
//! [`ClientError::Io`] the caller can tell apart.
//!
//! A [`ControlPod`] is a pod namespace plus the [`PodInfo`] `pod_add`
//! answered; its namespace (and the tap inside) is deleted on drop, after
//! the pod was released when the test asked for it.

use std::net::IpAddr;
use std::time::Duration;

use tweed_control::api::node::StatusReply;
use tweed_control::api::pod::{GcArgs, PodAdd, PodDel, PodInfo, PodKey};
use tweed_control::api::proto::{Empty, RouteInfo, StatsReply};
use tweed_control::api::{ApiError, Client, ClientError, Request, ResponseBody};

use crate::api::Api;
use crate::daemon::Daemon;
use crate::netns::Netns;
use crate::poll;
use crate::underlay::Underlay;

/// The interface name pods get.
pub const IFNAME: &str = "eth0";
/// The Kubernetes namespace the helpers give pods.
pub const POD_NAMESPACE: &str = "default";
/// How long a pod's addresses may take to become usable (IPv6 DAD).
const ADDR_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a released pod's tap may take to disappear: the dataplane
/// deletes it after `pod_del` (CNI DEL, GC) has answered.
pub const TAP_GONE: Duration = Duration::from_secs(10);

/// One node: a single-node underlay with `tweed daemon` on node 0.
#[derive(Debug)]
pub struct SingleNode {
    // Dropped first: the daemon and its dataplane leave before the netns.
    daemon: Daemon,
    underlay: Underlay,
}

impl SingleNode {
    /// Builds an underlay `base` (e.g. `10.97.1`) with one node and starts
    /// `tweed daemon --node-name node0 ARGS` on it.
    pub fn start(prefix: &str, base: &str, args: &[&str]) -> Self {
        let underlay = Underlay::new(prefix, base, 1);
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let daemon = Daemon::start(underlay.node(0), "node0", &args);
        Self { daemon, underlay }
    }

    /// [`SingleNode::start`] with the daemon's state directory at `state`
    /// (e.g. a small tmpfs).
    pub fn start_with_state(
        prefix: &str,
        base: &str,
        state: &std::path::Path,
        args: &[&str],
    ) -> Self {
        let underlay = Underlay::new(prefix, base, 1);
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let daemon = Daemon::start_with_state(underlay.node(0), "node0", state, &args);
        Self { daemon, underlay }
    }

    /// The daemon.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The daemon, to kill or restart it.
    pub fn daemon_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }

    /// The node's namespace.
    pub fn node(&self) -> &Netns {
        self.underlay.node(0)
    }

    /// The node's address on the underlay.
    pub fn underlay_ip(&self) -> IpAddr {
        self.underlay.node_ip(0)
    }

    /// The underlay's switch namespace: a host outside the cluster, which
    /// pods reach through the node (routed and masqueraded).
    pub fn switch(&self) -> &Netns {
        self.underlay.switch()
    }

    /// The switch's address on the underlay.
    pub fn switch_ip(&self) -> IpAddr {
        self.underlay.switch_ip()
    }

    /// A fresh connection to the daemon's control socket.
    pub fn client(&self) -> Client {
        connect(&self.daemon)
    }

    /// A client of the daemon's dataplane (`RUN/dataplane.sock`).
    pub fn dataplane(&self) -> Api {
        Api::new(self.daemon.run_dir().join("dataplane.sock"))
    }
}

/// Connects to `daemon`'s control socket; panics if nothing answers.
pub fn connect(daemon: &Daemon) -> Client {
    let path = daemon.control_socket();
    Client::connect(&path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()))
}

/// The `pod_add` of interface [`IFNAME`] in `netns` for container
/// `container_id`, named `default/<name>`.
pub fn add_request(container_id: &str, netns: &Netns, name: &str) -> PodAdd {
    PodAdd {
        container_id: container_id.to_owned(),
        netns: netns.path(),
        ifname: IFNAME.to_owned(),
        namespace: Some(POD_NAMESPACE.to_owned()),
        name: Some(name.to_owned()),
        labels: Default::default(),
        mtu: None,
        ips: Vec::new(),
        mac: None,
        netns_fd: None,
    }
}

/// The `pod_add` of interface [`IFNAME`] in `netns` for container
/// `container_id`, named `namespace/name` and labelled `labels`.
pub fn add_request_in(
    container_id: &str,
    netns: &Netns,
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> PodAdd {
    PodAdd {
        namespace: Some(namespace.to_owned()),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..add_request(container_id, netns, name)
    }
}

/// `pod_add`.
pub fn pod_add(client: &mut Client, add: &PodAdd) -> Result<PodInfo, ClientError> {
    match client.call(Request::PodAdd(add.clone()))? {
        ResponseBody::Pod(pod) => Ok(pod),
        other => panic!("pod_add answered {other:?}"),
    }
}

/// `pod_get`.
pub fn pod_get(
    client: &mut Client,
    container_id: &str,
    ifname: &str,
) -> Result<PodInfo, ClientError> {
    let key = PodKey {
        container_id: container_id.to_owned(),
        ifname: ifname.to_owned(),
    };
    match client.call(Request::PodGet(key))? {
        ResponseBody::Pod(pod) => Ok(pod),
        other => panic!("pod_get answered {other:?}"),
    }
}

/// `pod_del` (every interface of the container when `ifname` is none);
/// returns what was released, panics if the daemon refuses.
pub fn pod_del(client: &mut Client, container_id: &str, ifname: Option<&str>) -> Vec<PodInfo> {
    let del = PodDel {
        container_id: container_id.to_owned(),
        ifname: ifname.map(str::to_owned),
    };
    match client.call(Request::PodDel(del)) {
        Ok(ResponseBody::Released(reply)) => reply.released,
        other => panic!("pod_del {container_id}: {other:?}"),
    }
}

/// `gc` keeping `valid`; returns what was released, panics if refused.
pub fn gc(client: &mut Client, valid: &[PodKey]) -> Vec<PodInfo> {
    let args = GcArgs {
        valid: valid.to_vec(),
    };
    match client.call(Request::Gc(args)) {
        Ok(ResponseBody::Released(reply)) => reply.released,
        other => panic!("gc: {other:?}"),
    }
}

/// `pod_list`; panics if it fails.
pub fn pod_list(client: &mut Client) -> Vec<PodInfo> {
    match client.call(Request::PodList(Empty {})) {
        Ok(ResponseBody::Pods(reply)) => reply.pods,
        other => panic!("pod_list: {other:?}"),
    }
}

/// `status`; panics if it fails.
pub fn status(client: &mut Client) -> StatusReply {
    match client.call(Request::Status(Empty {})) {
        Ok(ResponseBody::Status(reply)) => reply,
        other => panic!("status: {other:?}"),
    }
}

/// `route_list`; panics if it fails.
pub fn routes(client: &mut Client) -> Vec<RouteInfo> {
    match client.call(Request::RouteList(Empty {})) {
        Ok(ResponseBody::Routes(reply)) => reply.routes,
        other => panic!("route_list: {other:?}"),
    }
}

/// `stats`; panics if it fails.
pub fn stats(client: &mut Client) -> StatsReply {
    match client.call(Request::Stats(Empty {})) {
        Ok(ResponseBody::Stats(reply)) => reply,
        other => panic!("stats: {other:?}"),
    }
}

/// The daemon's refusal inside `result`; panics if the call succeeded or
/// failed for another reason (the daemon not answering).
pub fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ApiError {
    match result {
        Err(ClientError::Api(e)) => e,
        other => panic!("expected the daemon to refuse, got {other:?}"),
    }
}

/// The names of the links in `netns` other than `lo`.
pub fn links(netns: &Netns) -> Vec<String> {
    let json = netns.ip_json(&["link", "show"]);
    json.as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link["ifname"].as_str())
        .filter(|name| *name != "lo")
        .map(str::to_owned)
        .collect()
}

/// The links of `netns` (as [`links`]) once they are `want`, or as they are
/// after [`TAP_GONE`]: a released pod's tap goes after the release answered.
pub fn settled_links(netns: &Netns, want: &[&str]) -> Vec<String> {
    let mut last = links(netns);
    poll::wait(TAP_GONE, || {
        last = links(netns);
        last == want
    });
    last
}

/// A pod namespace attached through the daemon.
#[derive(Debug)]
pub struct ControlPod {
    /// What `pod_add` answered.
    pub info: PodInfo,
    /// The pod's namespace.
    pub netns: Netns,
}

impl ControlPod {
    /// Creates namespace `tw-<prefix>-<role>-<pid>`, attaches it as
    /// container `<prefix>-<role>` (pod `default/<role>`) and waits until
    /// its addresses are usable; panics if `pod_add` fails.
    pub fn attach(client: &mut Client, prefix: &str, role: &str) -> Self {
        let netns = Netns::new(prefix, role);
        let add = add_request(&format!("{prefix}-{role}"), &netns, role);
        let info = pod_add(client, &add).unwrap_or_else(|e| panic!("pod_add {role}: {e:?}"));
        let pod = Self { info, netns };
        pod.wait_addresses();
        pod
    }

    /// Creates namespace `tw-<prefix>-<namespace>-<name>-<pid>`, attaches
    /// it as container `<prefix>-<namespace>-<name>` (pod `namespace/name`
    /// with `labels`) and waits until its addresses are usable; panics if
    /// `pod_add` fails.
    pub fn attach_in(
        client: &mut Client,
        prefix: &str,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Self {
        let role = format!("{namespace}-{name}");
        let netns = Netns::new(prefix, &role);
        let add = add_request_in(&format!("{prefix}-{role}"), &netns, namespace, name, labels);
        let info =
            pod_add(client, &add).unwrap_or_else(|e| panic!("pod_add {namespace}/{name}: {e:?}"));
        let pod = Self { info, netns };
        pod.wait_addresses();
        pod
    }

    /// Its IPv4 address (panics if it has none).
    pub fn ipv4(&self) -> IpAddr {
        IpAddr::V4(self.info.ipv4.expect("the pod has an IPv4 address"))
    }

    /// Its IPv6 address (panics if it has none).
    pub fn ipv6(&self) -> IpAddr {
        IpAddr::V6(self.info.ipv6.expect("the pod has an IPv6 address"))
    }

    /// Its attachment key.
    pub fn key(&self) -> PodKey {
        self.info.key()
    }

    /// Waits until every address of the pod is on its interface and none is
    /// tentative.
    pub fn wait_addresses(&self) {
        wait_addresses(&self.netns, &self.info);
    }
}

/// Waits until `pod`'s addresses are on its interface in `netns`, usable
/// (IPv6 out of duplicate address detection); panics after 10 s.
pub fn wait_addresses(netns: &Netns, pod: &PodInfo) {
    let wanted: Vec<String> = [
        pod.ipv4.map(|a| format!("{a}/32")),
        pod.ipv6.map(|a| format!("{a}/128")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut last = Vec::new();
    let ready = poll::wait(ADDR_TIMEOUT, || {
        last = netns.addresses(&pod.ifname);
        wanted.iter().all(|w| {
            last.iter()
                .any(|(addr, flags)| addr == w && flags.is_empty())
        })
    });
    assert!(
        ready,
        "pod {}: {} should carry {wanted:?}, usable; it has {last:?}",
        pod.container_id, pod.ifname
    );
}

/// The node's own address in `subnet`: its first address (e.g. 10.244.0.1
/// in 10.244.0.0/24), which the daemon puts on `tweed0`.
pub fn node_address(subnet: &ipnet::IpNet) -> IpAddr {
    match subnet {
        ipnet::IpNet::V4(net) => IpAddr::V4((u32::from(net.network()) + 1).into()),
        ipnet::IpNet::V6(net) => IpAddr::V6((u128::from(net.network()) + 1).into()),
    }
}

/// The values of every sample of metric `name` in a Prometheus text
/// exposition (`name 1` or `name{labels} 1`); comments are skipped.
pub fn metric_values(exposition: &str, name: &str) -> Vec<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.rsplit_once('}')?.1
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None;
            };
            value.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{metric_values, node_address};

    #[test]
    fn node_address_is_the_subnets_first_address() {
        let v4 = "10.244.3.0/24".parse().unwrap();
        assert_eq!(node_address(&v4).to_string(), "10.244.3.1");
        let v6 = "fd44:0:0:2::/64".parse().unwrap();
        assert_eq!(node_address(&v6).to_string(), "fd44:0:0:2::1");
    }

    #[test]
    fn metric_values_read_plain_and_labelled_samples_only_of_that_name() {
        let text = "# HELP tweed_up x\n# TYPE tweed_up gauge\ntweed_up 1\n\
                    tweed_up_total 7\ntweed_used{subnet=\"10.0.0.0/24\"} 2\n\
                    tweed_used{subnet=\"fd00::/64\"} 3\n";
        assert_eq!(metric_values(text, "tweed_up"), vec![1.0]);
        assert_eq!(metric_values(text, "tweed_used"), vec![2.0, 3.0]);
        assert!(metric_values(text, "tweed_none").is_empty());
    }
}

//! tweed's path: a `tweed-dataplane` per node namespace, driven through its
//! API as the control daemon drives it (`port_add`, `peer_set`,
//! `policy_set`, `service_set`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use tweed_api::dataplane::client::Client;
use tweed_api::dataplane::proto::{
    Empty, MacAddr, PeerSpec, PolicySet, PortAdd, Request, ResponseBody, RuleSetSpec, ServiceSet,
    ServiceSpec,
};
use tweed_dataplane::table::peers::Backend;

use super::rules;
use crate::netns;
use crate::procs::{self, Proc};

/// How long a dataplane may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one API call may take (a 10,000-rule policy is compiled in it).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// How the dataplanes run.
#[derive(Debug, Clone)]
pub struct DataplaneOptions {
    /// The `tweed-dataplane` binary.
    pub binary: PathBuf,
    /// `--io`.
    pub io: String,
    /// `--workers`.
    pub workers: u32,
    /// `--busy-poll`.
    pub busy_poll: bool,
    /// `--linger-us`, when given.
    pub linger_us: Option<u32>,
    /// `--mtu`: the pods' MTU.
    pub mtu: u32,
}

/// Starts a dataplane in node namespace `node`, its files in `dir`, and
/// waits until its API answers. Returns the process and its socket.
pub fn start(
    node: &str,
    underlay_ip: Ipv4Addr,
    dir: &Path,
    opts: &DataplaneOptions,
    interrupted: &dyn Fn() -> bool,
) -> Result<(Proc, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let socket = dir.join("dp.sock");
    let mut args: Vec<String> = vec![
        "--socket".into(),
        socket.display().to_string(),
        "--state-dir".into(),
        dir.display().to_string(),
        "--underlay-ip".into(),
        underlay_ip.to_string(),
        "--workers".into(),
        opts.workers.to_string(),
        "--io".into(),
        opts.io.clone(),
        "--mtu".into(),
        opts.mtu.to_string(),
        "--no-host-port".into(),
    ];
    if opts.busy_poll {
        args.push("--busy-poll".into());
    }
    if let Some(us) = opts.linger_us {
        args.extend(["--linger-us".into(), us.to_string()]);
    }
    let mut proc = Proc::spawn(
        &format!("tweed-dataplane in {node}"),
        &netns::path(node),
        &opts.binary,
        &args,
        &dir.join("dataplane.log"),
    )?;
    procs::wait_ready(&mut proc, START_TIMEOUT, interrupted, || {
        Ok(socket.exists() && call(&socket, Request::Stats(Empty {})).is_ok())
    })?;
    Ok((proc, socket))
}

fn call(socket: &Path, request: Request) -> Result<ResponseBody, String> {
    let op = request.op().name();
    let mut client = Client::connect(socket).map_err(|e| format!("{op}: {e}"))?;
    client
        .set_timeout(Some(CALL_TIMEOUT))
        .map_err(|e| format!("{op}: {e}"))?;
    client.call(request).map_err(|e| format!("{op}: {e}"))
}

/// Attaches namespace `pod` as port `name` with address `ip`.
pub fn port_add(
    socket: &Path,
    name: &str,
    pod: &str,
    ip: Ipv4Addr,
    mtu: u32,
) -> Result<(), String> {
    call(
        socket,
        Request::PortAdd(PortAdd {
            name: name.to_owned(),
            netns: netns::path(pod).display().to_string(),
            ifname: "eth0".to_owned(),
            ipv4: Some(ip),
            ipv6: None,
            mac: None,
            mtu: Some(mtu),
        }),
    )
    .map(|_| ())
}

/// The node's VTEP MAC.
pub fn vtep_mac(socket: &Path) -> Result<MacAddr, String> {
    match call(socket, Request::Dump(Empty {}))? {
        ResponseBody::Dump(d) => Ok(d.node.vtep_mac),
        other => Err(format!("dump answered {other:?}")),
    }
}

/// Tells the dataplane at `socket` about peer `name`: `subnet` behind
/// `underlay_ip`, VXLAN to `vtep_mac`.
pub fn peer_set(
    socket: &Path,
    name: &str,
    subnet: Ipv4Net,
    underlay_ip: Ipv4Addr,
    vtep_mac: MacAddr,
) -> Result<(), String> {
    call(
        socket,
        Request::PeerSet(PeerSpec {
            name: name.to_owned(),
            subnets: vec![IpNet::V4(subnet)],
            underlay_ip: IpAddr::V4(underlay_ip),
            vtep_mac,
            backend: Backend::Vxlan,
            source_ports: None,
            partial_checksums: true,
        }),
    )
    .map(|_| ())
}

/// Puts `n` ingress rules on port `name` (see [`rules`]).
pub fn policy(
    socket: &Path,
    name: &str,
    n: usize,
    client: Ipv4Addr,
    port: u16,
) -> Result<(), String> {
    call(
        socket,
        Request::PolicySet(PolicySet {
            name: name.to_owned(),
            ingress: rules::tweed_ingress(n, client, port),
            egress: RuleSetSpec::default(),
        }),
    )
    .map(|_| ())
}

/// Replaces the dataplane's native Services with `services`, as the
/// daemon's full sync does (batches under the API's line limit, the first
/// replacing).
pub fn services(socket: &Path, services: Vec<ServiceSpec>) -> Result<(), String> {
    for batch in tweed_control::balance::plan::full_sync(
        services,
        tweed_control::dataplane::batch::BATCH_BYTES,
    ) {
        call(
            socket,
            Request::ServiceSet(ServiceSet {
                replace: batch.replace,
                services: batch.services,
            }),
        )?;
    }
    Ok(())
}

//! The daemon's configuration: flags, an optional TOML file, and defaults,
//! resolved into one [`DaemonConfig`] before anything starts.
//!
//! Precedence: a flag on the command line, then the file's key of the same
//! name, then the default. Defaults that depend on the machine (the underlay
//! address and MTU, the hostname, the core count) are looked up by the caller
//! and passed in as [`Machine`], so resolving stays pure and testable.

mod args;
pub mod datasource;
mod resolve;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use tweed_api::dataplane::proto::PortRange;

pub use args::DaemonArgs;
pub use datasource::{Datasource, DatasourceKind};
pub use resolve::{ConfigError, Machine, load_file, merge, resolve};
pub use tweed_dataplane::table::peers::Backend;

use crate::ipam::SubnetPlan;

/// Bytes an encapsulation adds (outer IPv4 + UDP [+ VXLAN + inner Ethernet]).
pub fn overhead(backend: Backend) -> u32 {
    match backend {
        Backend::Vxlan => crate::host::detect::VXLAN_OVERHEAD,
        Backend::Udp => crate::host::detect::UDP_OVERHEAD,
    }
}

/// Parses `vxlan` or `udp` (the flag's value parser).
pub fn parse_backend(text: &str) -> Result<Backend, String> {
    match text {
        "vxlan" => Ok(Backend::Vxlan),
        "udp" => Ok(Backend::Udp),
        _ => Err(format!("{text:?} is not a backend (vxlan or udp)")),
    }
}

/// The file key `vxlan-source-ports`: `"FIRST-LAST"`, as the flag takes it.
fn port_range<'de, D>(deserializer: D) -> Result<Option<PortRange>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// The default `vxlan-source-ports`: above Linux's default ephemeral range
/// (32768-60999), so no outgoing connection holds them when the dataplane starts.
pub const DEFAULT_VXLAN_SOURCE_PORTS: PortRange = PortRange {
    first: 61000,
    last: 61007,
};

/// Everything the daemon runs with, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// This node's name.
    pub node_name: String,
    /// How each family's cluster CIDR is cut into node subnets (IPv4 first).
    pub plans: Vec<SubnetPlan>,
    /// The overlay's underlay address.
    pub underlay_ip: IpAddr,
    /// The encapsulation.
    pub backend: Backend,
    /// VXLAN port.
    pub vxlan_port: u16,
    /// The ports VXLAN leaves from (published in the node record).
    pub vxlan_source_ports: PortRange,
    /// The cluster's Service ranges (kube-proxy's), if given.
    pub service_cidrs: Vec<IpNet>,
    /// UDP backend port.
    pub udp_port: u16,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Pod MTU.
    pub mtu: u16,
    /// Dataplane workers.
    pub workers: usize,
    /// State directory.
    pub state_dir: PathBuf,
    /// Run directory (sockets, pid file): the global `--run-dir`.
    pub run_dir: PathBuf,
    /// etcd endpoints; empty: embedded store.
    pub etcd_endpoints: Vec<String>,
    /// Where the cluster's state comes from.
    pub datasource: Datasource,
    /// etcd's TLS and user settings.
    pub etcd_auth: crate::store::EtcdAuth,
    /// Prometheus endpoint, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// Subnet lease TTL.
    pub lease_ttl: Duration,
    /// Health endpoint port.
    pub health_port: u16,
    /// Whether to masquerade traffic leaving the cluster.
    pub masquerade: bool,
    /// Whether the dataplane balances Services (`--native-services`).
    pub native_services: bool,
    /// The dataplane executable.
    pub dataplane_bin: PathBuf,
}

impl DaemonConfig {
    /// The control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.run_dir.join("control.sock")
    }

    /// The dataplane's API socket.
    pub fn dataplane_socket(&self) -> PathBuf {
        self.run_dir.join("dataplane.sock")
    }

    /// The dataplane's pid file.
    pub fn dataplane_pid_file(&self) -> PathBuf {
        self.run_dir.join("dataplane.pid")
    }

    /// The cluster CIDRs, IPv4 first.
    pub fn cluster_cidrs(&self) -> Vec<IpNet> {
        self.plans.iter().map(SubnetPlan::cluster).collect()
    }
}

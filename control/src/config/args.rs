//! The flags of `tweed daemon`. Every one is optional here: a flag given on
//! the command line wins over the config file, which wins over the default
//! (see [`super::resolve`]).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;
use ipnet::IpNet;
use serde::Deserialize;

use tweed_api::dataplane::proto::PortRange;

use super::Backend;

/// `tweed daemon` flags, also the keys of the config file (kebab-case).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonArgs {
    /// A TOML file with any of these settings (keys as the flags, e.g. `cluster-cidr = ["10.244.0.0/16"]`).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This node's name in the cluster [default: the hostname].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The pod network, cut into node subnets; give it twice (IPv4 and IPv6) for dual-stack [default: 10.244.0.0/16].
    #[arg(long, value_name = "CIDR")]
    pub cluster_cidr: Option<Vec<IpNet>>,
    /// The cluster's Service range, as kube-proxy's --service-cluster-ip-range
    /// (once per family): pods' egress policy then applies to a Service's
    /// backend after kube-proxy's translation, and untranslated traffic to it
    /// is dropped [default: none: policy judges the Service address].
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<Vec<IpNet>>,
    /// The length of each node's IPv4 subnet [default: 24].
    #[arg(long, value_name = "LEN")]
    pub subnet_len: Option<u8>,
    /// The length of each node's IPv6 subnet [default: 64].
    #[arg(long, value_name = "LEN")]
    pub subnet_len_v6: Option<u8>,
    /// The address peers send overlay traffic to [default: the address of the default route's interface].
    #[arg(long, value_name = "IP")]
    pub underlay_ip: Option<IpAddr>,
    /// The encapsulation between nodes [default: vxlan].
    #[arg(long, value_parser = super::parse_backend)]
    pub backend: Option<Backend>,
    /// The VXLAN UDP port (8472 speaks flannel's) [default: 4789].
    #[arg(long, value_name = "PORT")]
    pub vxlan_port: Option<u16>,
    /// The UDP ports this node sends VXLAN from, FIRST-LAST (1 to 64 ports);
    /// published to the other nodes, which drop VXLAN from this node's address
    /// from any other port [default: 61000-61007].
    #[arg(long, value_name = "FIRST-LAST")]
    #[serde(default, deserialize_with = "super::port_range")]
    pub vxlan_source_ports: Option<PortRange>,
    /// The UDP backend's port [default: 8285].
    #[arg(long, value_name = "PORT")]
    pub udp_port: Option<u16>,
    /// The VXLAN network identifier [default: 1].
    #[arg(long, value_name = "VNI")]
    pub vni: Option<u32>,
    /// The pod MTU [default: the underlay interface's MTU minus the encapsulation overhead].
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u16>,
    /// Dataplane worker threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Where the embedded store and the dataplane's state live [default: /var/lib/tweed].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// etcd v3 client URLs, comma-separated; without them the embedded store is used.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    pub etcd_endpoints: Option<Vec<String>>,
    /// Where the cluster's state comes from: embedded (one node), etcd, or
    /// kubernetes (nodes, pods, namespaces and policies from the API server)
    /// [default: etcd with --etcd-endpoints, else embedded].
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub datasource: Option<super::DatasourceKind>,
    /// The kubeconfig of --datasource kubernetes [default: in-cluster: the pod's
    /// service account and KUBERNETES_SERVICE_HOST].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The CA that signed etcd's server certificate (PEM); needed by https://
    /// endpoints (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// A client certificate for etcd (PEM), for an etcd that requires one
    /// (--client-cert-auth, as kubeadm's does); with --etcd-key.
    #[arg(long, value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// The private key of --etcd-cert (PEM, unencrypted).
    #[arg(long, value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    /// The etcd user to authenticate as, for an etcd with authentication
    /// enabled; with --etcd-password-file.
    #[arg(long, value_name = "NAME")]
    pub etcd_username: Option<String>,
    /// A file holding the etcd user's password (one trailing newline is
    /// dropped). There is no flag for the password itself: on a command line
    /// it would show in `ps`, /proc/PID/cmdline, shell history and unit files.
    #[arg(long, value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. 0.0.0.0:9101) [default: off].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Seconds a node's subnet lease lives without renewal [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub lease_ttl: Option<u64>,
    /// The TCP port of the node's health endpoint on its overlay address [default: 9098].
    #[arg(long, value_name = "PORT")]
    pub health_port: Option<u16>,
    /// Do not masquerade pod traffic that leaves the cluster.
    #[arg(long)]
    #[serde(default)]
    pub no_masquerade: bool,
    /// Balance Services in the dataplane (a kube-proxy replacement): a pod's
    /// connection to a Service goes straight to a backend. Services come from
    /// `tweed service apply` or, with `--datasource kubernetes`, the API server.
    #[arg(long)]
    #[serde(default)]
    pub native_services: bool,
    /// The `tweed-dataplane` executable [default: next to `tweed`, else on PATH].
    #[arg(long, value_name = "FILE")]
    pub dataplane_bin: Option<PathBuf>,
}

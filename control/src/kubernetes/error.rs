//! Why the Kubernetes datasource could not start; each variant names the step.

use std::path::PathBuf;

use ipnet::IpNet;

/// A failure of the Kubernetes datasource.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig file could not be read or used.
    #[error("read the kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No kubeconfig was given and the daemon does not run in a pod.
    #[error(
        "find the API server in-cluster (no --kubeconfig given; KUBERNETES_SERVICE_HOST and the service account token are needed)"
    )]
    InCluster {
        /// Why.
        #[source]
        source: kube::config::InClusterError,
    },
    /// The client could not be built from the configuration.
    #[error("build the Kubernetes client")]
    Client {
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Reading or annotating this node's Node object failed.
    #[error("{step} node {node}")]
    Node {
        /// What was being done (`read`, `annotate`).
        step: &'static str,
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The node's pod CIDR is not inside the configured cluster CIDRs.
    #[error(
        "node {node}: spec.podCIDRs {subnet} is outside --cluster-cidr {cluster:?}; set --cluster-cidr to kube-controller-manager's --cluster-cidr"
    )]
    OutsideCluster {
        /// The node.
        node: String,
        /// Its pod CIDR.
        subnet: IpNet,
        /// The configured cluster CIDRs.
        cluster: Vec<IpNet>,
    },
}

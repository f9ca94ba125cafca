//! A Kubernetes client: from `--kubeconfig FILE`, or in-cluster (the
//! service account token and CA mounted into the pod, `KUBERNETES_SERVICE_HOST`).
//! TLS through rustls; no OpenSSL.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::KubeError;

/// The client and the API server's URL (for `tweed status` and logs).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<(kube::Client, String), KubeError> {
    let config = match kubeconfig {
        Some(path) => {
            let at = |source| KubeError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(at)?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(at)?
        }
        None => kube::Config::incluster().map_err(|source| KubeError::InCluster { source })?,
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|source| KubeError::Client { source })?;
    Ok((client, server))
}

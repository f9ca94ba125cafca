//! Where the cluster's state comes from: `--datasource embedded|etcd|kubernetes`,
//! defaulting to etcd when endpoints are given and to the embedded store
//! otherwise. Pure.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// The flag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatasourceKind {
    /// One node, its state in a file.
    Embedded,
    /// Many nodes sharing etcd.
    Etcd,
    /// Nodes, pods, namespaces and policies from the Kubernetes API server.
    Kubernetes,
}

/// The resolved datasource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datasource {
    /// The embedded store in the state directory.
    Embedded,
    /// etcd at these endpoints.
    Etcd(Vec<String>),
    /// The API server: from this kubeconfig, or in-cluster without one.
    /// The node's own state (its pods' addresses) stays in the embedded store.
    Kubernetes {
        /// `--kubeconfig`.
        kubeconfig: Option<PathBuf>,
    },
}

/// Resolves the flags; a combination that cannot mean one thing is refused.
pub fn resolve(
    kind: Option<DatasourceKind>,
    etcd_endpoints: Vec<String>,
    kubeconfig: Option<PathBuf>,
) -> Result<Datasource, ConfigError> {
    let invalid = |flag, reason: &str| {
        Err(ConfigError::Invalid {
            flag,
            reason: reason.to_owned(),
        })
    };
    let kind = kind.unwrap_or(if etcd_endpoints.is_empty() {
        DatasourceKind::Embedded
    } else {
        DatasourceKind::Etcd
    });
    if kubeconfig.is_some() && kind != DatasourceKind::Kubernetes {
        return invalid("kubeconfig", "is read with --datasource kubernetes only");
    }
    match kind {
        DatasourceKind::Embedded if !etcd_endpoints.is_empty() => invalid(
            "datasource",
            "embedded ignores --etcd-endpoints; drop one of them",
        ),
        DatasourceKind::Embedded => Ok(Datasource::Embedded),
        DatasourceKind::Etcd if etcd_endpoints.is_empty() => {
            invalid("datasource", "etcd needs --etcd-endpoints")
        }
        DatasourceKind::Etcd => Ok(Datasource::Etcd(etcd_endpoints)),
        DatasourceKind::Kubernetes if !etcd_endpoints.is_empty() => invalid(
            "datasource",
            "kubernetes reads the cluster from the API server and keeps the node's own state in the embedded store; drop --etcd-endpoints",
        ),
        DatasourceKind::Kubernetes => Ok(Datasource::Kubernetes { kubeconfig }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_follows_the_etcd_endpoints() {
        assert_eq!(resolve(None, vec![], None).unwrap(), Datasource::Embedded);
        let e = vec!["http://e:2379".to_owned()];
        assert_eq!(resolve(None, e.clone(), None).unwrap(), Datasource::Etcd(e));
    }

    #[test]
    fn kubernetes_takes_a_kubeconfig_or_none() {
        let k = Some(PathBuf::from("/etc/kubeconfig"));
        assert_eq!(
            resolve(Some(DatasourceKind::Kubernetes), vec![], k.clone()).unwrap(),
            Datasource::Kubernetes { kubeconfig: k }
        );
        assert_eq!(
            resolve(Some(DatasourceKind::Kubernetes), vec![], None).unwrap(),
            Datasource::Kubernetes { kubeconfig: None }
        );
    }

    #[test]
    fn contradictions_name_the_flag() {
        let e = vec!["http://e:2379".to_owned()];
        let cases = [
            (
                Some(DatasourceKind::Kubernetes),
                e.clone(),
                None,
                "datasource",
            ),
            (
                Some(DatasourceKind::Embedded),
                e.clone(),
                None,
                "datasource",
            ),
            (Some(DatasourceKind::Etcd), vec![], None, "datasource"),
            (None, vec![], Some(PathBuf::from("k")), "kubeconfig"),
        ];
        for (kind, endpoints, kubeconfig, flag) in cases {
            match resolve(kind, endpoints, kubeconfig) {
                Err(ConfigError::Invalid { flag: f, .. }) => assert_eq!(f, flag),
                other => panic!("{other:?}"),
            }
        }
    }
}

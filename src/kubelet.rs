//! Pods attached as kubelet attaches them: a network namespace, then the
//! real CNI plugin run with the `CNI_ARGS` kubelet passes
//! (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID`, and no
//! labels), the addresses read from the plugin's result. Writing them into
//! the Pod's status, as kubelet then does, is the caller's step (on whatever
//! API server the test runs). Drop runs DEL, then deletes the namespace.

use std::net::IpAddr;

use crate::cni::{Outcome, Plugin, Vars};
use crate::netns::Netns;

/// The CNI version kubelet's runtimes speak to the stock conflist.
const VERSION: &str = "1.0.0";

/// A pod attached through the plugin.
#[derive(Debug)]
pub struct KubeletPod {
    plugin: Plugin,
    container_id: String,
    args: String,
    /// The pod's namespace (dropped after DEL).
    pub netns: Netns,
    /// `NAMESPACE/NAME`.
    pub name: String,
    /// Its addresses, from the ADD's result.
    pub ips: Vec<IpAddr>,
}

impl KubeletPod {
    /// Runs ADD for pod `namespace/name` in a new netns; the outcome of a
    /// failed ADD is returned with the namespace (deleted when dropped).
    pub fn try_add(
        plugin: &Plugin,
        prefix: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Self, (Outcome, Netns)> {
        let netns = Netns::new(prefix, &format!("{namespace}-{name}"));
        let container_id = format!("{prefix}-{namespace}-{name}-{}", std::process::id());
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={container_id}"
        );
        let path = netns.path();
        let outcome = plugin.run(
            Vars {
                command: "ADD",
                container_id: Some(&container_id),
                netns: Some(&path),
                ifname: Some("eth0"),
                args: Some(&args),
            },
            plugin.config(VERSION).to_string().as_bytes(),
        );
        if !outcome.success() {
            return Err((outcome, netns));
        }
        let ips = outcome.json()["ips"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip["address"].as_str()?.split('/').next()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Ok(KubeletPod {
            plugin: plugin.clone(),
            container_id,
            args,
            netns,
            name: format!("{namespace}/{name}"),
            ips,
        })
    }

    /// [`Self::try_add`], panicking with the plugin's error if ADD fails.
    pub fn add(plugin: &Plugin, prefix: &str, namespace: &str, name: &str) -> Self {
        Self::try_add(plugin, prefix, namespace, name)
            .unwrap_or_else(|(outcome, _)| panic!("CNI ADD {namespace}/{name}: {}", outcome.stdout))
    }

    /// Its IPv4 address (panics if it has none).
    pub fn ipv4(&self) -> IpAddr {
        *self
            .ips
            .iter()
            .find(|ip| ip.is_ipv4())
            .expect("the pod has an IPv4 address")
    }
}

impl Drop for KubeletPod {
    fn drop(&mut self) {
        let path = self.netns.path();
        // Best effort: the daemon may already be gone.
        let _ = self.plugin.run(
            Vars {
                command: "DEL",
                container_id: Some(&self.container_id),
                netns: Some(&path),
                ifname: Some("eth0"),
                args: Some(&self.args),
            },
            self.plugin.config(VERSION).to_string().as_bytes(),
        );
    }
}

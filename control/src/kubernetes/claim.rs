//! This node's place in the cluster, taken from its Node object instead of a
//! subnet lease: the subnets are the Node's `spec.podCIDRs` (waited for,
//! with a log line saying what is missing, while they are unset), and the
//! node publishes its underlay address, VTEP MAC, backend and VXLAN source
//! ports as annotations on it (a merge patch), which the other nodes read.

use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::error::KubeError;
use super::translate::node::{annotations, pod_cidrs};
use crate::cluster::NodeRecord;

/// How often the Node is read again while it lacks pod CIDRs.
const RETRY: Duration = Duration::from_secs(2);

/// Waits for the Node's pod CIDRs, checks them against `cluster`,
/// publishes `record`'s annotations, and returns the record with the
/// subnets. Failures of the API server are logged and retried; only CIDRs
/// outside the cluster's end it.
pub async fn claim(
    client: &kube::Client,
    mut record: NodeRecord,
    cluster: &[IpNet],
) -> Result<NodeRecord, KubeError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = record.name.clone();
    let at = |step| {
        let node = name.clone();
        move |source| KubeError::Node { step, node, source }
    };
    let mut said = String::new();
    let mut note = |gap: String| {
        if gap != said {
            tracing::warn!(reason = %gap, "waiting for this node's pod CIDR; retrying");
            said = gap;
        }
    };
    // Every failure is waited out: the API server may be starting, the
    // RBAC not applied yet, the Node not registered or its CIDR not
    // allocated; the log says which.
    let subnets = loop {
        match nodes.get_opt(&name).await {
            Ok(Some(node)) => match pod_cidrs(&node) {
                Ok(subnets) => break subnets,
                Err(gap) => note(gap.to_string()),
            },
            Ok(None) => note(format!(
                "node {name} is not registered with the API server yet (is --node-name kubelet's node name?)"
            )),
            Err(source) => note(crate::store::error_chain(&at("read")(source))),
        }
        tokio::time::sleep(RETRY).await;
    };
    for subnet in &subnets {
        if !cluster.iter().any(|c| c.contains(subnet)) {
            return Err(KubeError::OutsideCluster {
                node: name.clone(),
                subnet: *subnet,
                cluster: cluster.to_vec(),
            });
        }
    }
    record.subnets = subnets;
    let patch = serde_json::json!({"metadata": {"annotations": annotations(&record)}});
    loop {
        match nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(record),
            Err(source) => {
                let e = at("annotate")(source);
                tracing::warn!(error = %crate::store::error_chain(&e), "publishing this node's annotations; retrying");
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

//! `control.sock`'s policy and label ops: they write the store, apply the
//! same change to the enforcer's inputs (so this node enforces it before the
//! answer), and explain decisions from the cluster's inputs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::Daemon;
use super::store_reply::store_error;
use crate::api::ApiError;
use crate::api::policy::{
    AppliedReply, ExplainReply, ExplainStepInfo, LabelNamespace, LabelPod, LabelsReply,
    PoliciesReply, PolicyExplain, PolicyInfo,
};
use crate::cluster::keys;
use crate::policy::{self, Decision, Direction, Labels, PolicyKey, Target};
use crate::store::follow::Inputs as _;

/// The label every namespace has, set to its name (as Kubernetes sets it).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `policy_apply`: every document is parsed and checked before any is stored.
pub async fn apply(daemon: &Daemon, text: &str) -> Result<AppliedReply, ApiError> {
    let policies = policy::parse_documents(text)
        .map_err(|e| ApiError::invalid(format!("policy_apply.text: {e}")))?;
    if policies.is_empty() {
        return Err(ApiError::invalid(
            "policy_apply.text: no policy in it; give a NetworkPolicy, Policy or GlobalPolicy document",
        ));
    }
    let mut writes = Vec::with_capacity(policies.len());
    let mut reply = AppliedReply {
        applied: Vec::new(),
        warnings: Vec::new(),
    };
    for p in &policies {
        let key = p.key();
        reply.warnings.extend(
            crate::policy::validate::warnings(p)
                .into_iter()
                .map(|w| format!("{key}: {w}")),
        );
        let value = serde_json::to_vec(p).expect("a policy always serializes");
        writes.push((keys::policy(&key), value));
        reply.applied.push(key);
    }
    store_and_enforce(daemon, &writes).await?;
    Ok(reply)
}

/// Writes `writes` to the store, then applies them to the enforcer's inputs
/// and pushes (the watch brings the same values later, which changes nothing).
async fn store_and_enforce(daemon: &Daemon, writes: &[(String, Vec<u8>)]) -> Result<(), ApiError> {
    for (key, value) in writes {
        daemon
            .store
            .put(key, value.clone(), None)
            .await
            .map_err(store_error)?;
    }
    daemon
        .enforcer
        .update(|inputs| {
            for (key, value) in writes {
                inputs.put(key, value);
            }
        })
        .await;
    Ok(())
}

/// `policy_delete`.
pub async fn delete(daemon: &Daemon, key: &PolicyKey) -> Result<(), ApiError> {
    let store_key = keys::policy(key);
    if !daemon.store.delete(&store_key).await.map_err(store_error)? {
        return Err(ApiError::not_found(format!("policy_delete: no {key}")));
    }
    daemon
        .enforcer
        .update(|inputs| {
            inputs.delete(&store_key);
        })
        .await;
    Ok(())
}

/// `policy_list`.
pub async fn list(daemon: &Daemon) -> PoliciesReply {
    let inputs = daemon.enforcer.inputs().await;
    let (world, _) = inputs.world(daemon.enforcer.node_addrs());
    let compiler = policy::Compiler::new(&world);
    let mut policies: Vec<PolicyInfo> = world
        .policies
        .iter()
        .enumerate()
        .map(|(i, p)| (p, compiler.selected_pods(i)))
        .map(|(p, selected_pods)| PolicyInfo {
            key: p.key(),
            order: p.order(),
            directions: p
                .directions()
                .into_iter()
                .map(|d| direction_name(d).to_owned())
                .collect(),
            selected_pods,
            policy: serde_json::to_value(p).unwrap_or(serde_json::Value::Null),
        })
        .collect();
    policies.sort_by(|a, b| a.key.cmp(&b.key));
    PoliciesReply { policies }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// `policy_explain`.
pub async fn explain(daemon: &Daemon, args: &PolicyExplain) -> Result<ExplainReply, ApiError> {
    let inputs = daemon.enforcer.inputs().await;
    let (world, _) = inputs.world(daemon.enforcer.node_addrs());
    let find = |field: &str, text: &str| -> Result<usize, ApiError> {
        let (ns, name) = text.split_once('/').ok_or_else(|| {
            ApiError::invalid(format!(
                "policy_explain.{field}: {text:?} is not NAMESPACE/POD"
            ))
        })?;
        pod_index(&world, ns, name).ok_or_else(|| {
            ApiError::not_found(format!(
                "policy_explain.{field}: no pod {text} in the cluster"
            ))
        })
    };
    let from = find("from", &args.from)?;
    let to = match args.to.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Pod(find("to", &args.to)?),
    };
    let explanation = policy::explain(&world, from, to, args.protocol, args.port);
    Ok(ExplainReply {
        allowed: explanation.allowed,
        steps: explanation
            .steps
            .into_iter()
            .map(|step| {
                let (policy, rule, reason) = match &step.decision {
                    Decision::Rule(origin) => (
                        origin.policy.clone(),
                        origin
                            .rule
                            .map(|i| format!("{}[{i}]", direction_name(origin.direction))),
                        origin.to_string(),
                    ),
                    Decision::NotIsolated => (
                        None,
                        None,
                        format!(
                            "no policy selects it for {}: open",
                            direction_name(step.direction)
                        ),
                    ),
                    Decision::NoAddress => (
                        None,
                        None,
                        "the pod has no address of the destination's IP version".to_owned(),
                    ),
                    Decision::Inconsistent(why) => (None, None, format!("internal error: {why}")),
                    Decision::Isolated { by } => (
                        by.first().cloned(),
                        None,
                        format!(
                            "isolated for {} by {}; no rule allows it",
                            direction_name(step.direction),
                            by.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                };
                ExplainStepInfo {
                    endpoint: step.endpoint,
                    direction: direction_name(step.direction).to_owned(),
                    allowed: step.allowed,
                    policy,
                    rule,
                    reason,
                }
            })
            .collect(),
    })
}

/// The index of pod `namespace/name` in `world` (its `eth0` record first).
fn pod_index(world: &policy::World, namespace: &str, name: &str) -> Option<usize> {
    world
        .pods
        .iter()
        .position(|p| p.namespace == namespace && p.name == name)
}

/// Sets and removes labels, kubectl-style.
fn relabel(mut labels: Labels, set: &BTreeMap<String, String>, remove: &[String]) -> Labels {
    for key in remove {
        labels.remove(key);
    }
    labels.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// `label_pod`.
pub async fn label_pod(daemon: &Daemon, args: &LabelPod) -> Result<LabelsReply, ApiError> {
    let inputs = daemon.enforcer.inputs().await;
    let Some(record) = inputs.pod(&args.namespace, &args.name) else {
        return Err(ApiError::not_found(format!(
            "label_pod: no pod {}/{} in the cluster",
            args.namespace, args.name
        )));
    };
    let labels = relabel(inputs.labels_of(record), &args.labels, &args.remove);
    let value = serde_json::to_vec(&labels).expect("labels always serialize");
    store_and_enforce(
        daemon,
        &[(keys::pod_labels(&args.namespace, &args.name), value)],
    )
    .await?;
    Ok(LabelsReply { labels })
}

/// `label_namespace`; its name label cannot be changed.
pub async fn label_namespace(
    daemon: &Daemon,
    args: &LabelNamespace,
) -> Result<LabelsReply, ApiError> {
    if args.labels.contains_key(NAMESPACE_NAME_LABEL)
        || args.remove.iter().any(|k| k == NAMESPACE_NAME_LABEL)
    {
        return Err(ApiError::invalid(format!(
            "label_namespace: {NAMESPACE_NAME_LABEL} is always the namespace's name and cannot be changed"
        )));
    }
    let inputs = daemon.enforcer.inputs().await;
    let current = inputs
        .namespaces
        .get(&args.namespace)
        .cloned()
        .unwrap_or_default();
    let mut labels = relabel(current, &args.labels, &args.remove);
    labels.remove(NAMESPACE_NAME_LABEL);
    let value = serde_json::to_vec(&labels).expect("labels always serialize");
    store_and_enforce(daemon, &[(keys::namespace(&args.namespace), value)]).await?;
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), args.namespace.clone());
    Ok(LabelsReply { labels })
}

/// After a pod was attached on this node: its record joins the inputs and
/// its policy is pushed before the CNI plugin hears back (`port_created`:
/// its port was just made, with the allow-all rule sets).
pub async fn pod_attached(daemon: &Daemon, record: &crate::pods::PodRecord, port_created: bool) {
    let key = keys::pod(
        &daemon.config.node_name,
        &record.container_id,
        &record.ifname,
    );
    let value = record.encode();
    let created: &[String] = if port_created {
        std::slice::from_ref(&record.port)
    } else {
        &[]
    };
    daemon
        .enforcer
        .update_created(created, |inputs| {
            inputs.put(&key, &value);
        })
        .await;
}

/// After pods were released on this node: their records leave the inputs,
/// and the labels set on a pod with no attachment left are forgotten (a pod
/// created again under the same name starts with the labels it is given).
/// With the Kubernetes datasource the labels are the Pod object's, which
/// the API server removes with the Pod.
pub async fn pods_released(daemon: &Daemon, released: &[crate::pods::PodRecord]) {
    if released.is_empty() {
        return;
    }
    let forget_labels = daemon.kube.is_none();
    let node = daemon.config.node_name.clone();
    let mut orphaned = Vec::new();
    daemon
        .enforcer
        .update(|inputs| {
            for r in released {
                inputs.delete(&keys::pod(&node, &r.container_id, &r.ifname));
            }
            for r in released.iter().filter(|_| forget_labels) {
                if inputs.pod(&r.namespace, &r.name).is_none() {
                    let key = keys::pod_labels(&r.namespace, &r.name);
                    if inputs.delete(&key) {
                        orphaned.push(key);
                    }
                }
            }
        })
        .await;
    for key in orphaned {
        if let Err(e) = daemon.store.delete(&key).await {
            tracing::warn!(%key, error = %e, "forgetting a deleted pod's labels");
        }
    }
}

//! `control.sock`'s Service ops (native Services): they write the store and,
//! on a node that balances Services, apply the same change to the
//! balancer's inputs, so this node balances it before the answer.

use k8s_openapi::api::core::v1::Service;

use super::Daemon;
use super::store_reply::store_error;
use crate::api::ApiError;
use crate::api::service::{ServiceDelete, ServicePortInfo, ServicesApplied, ServicesReply};
use crate::balance::{Balancer, ServiceInputs};
use crate::cluster::keys;
use crate::services::documents::{Manifest, parse_documents};
use crate::services::{Here, service_ports};
use crate::store::follow::Inputs as _;
use tweed_api::dataplane::proto::error_chain;
use tweed_dataplane::table::service::{FrontendKind, ServicePort};
use tweed_dataplane::wire::transport::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};

/// Where the daemon reads Services: this node, as its balancer does.
fn here(daemon: &Daemon) -> Here {
    super::here(&daemon.config, &daemon.lease().record)
}

/// `service_apply`: every document is read and every Service checked before
/// any is stored.
pub async fn apply(daemon: &Daemon, text: &str) -> Result<ServicesApplied, ApiError> {
    let manifests = parse_documents(text)
        .map_err(|e| ApiError::invalid(format!("service_apply.text: {}", error_chain(&e))))?;
    if manifests.is_empty() {
        return Err(ApiError::invalid(
            "service_apply.text: no Service or EndpointSlice in it",
        ));
    }
    let here = here(daemon);
    let mut writes = Vec::with_capacity(manifests.len());
    let mut applied = Vec::with_capacity(manifests.len());
    for manifest in &manifests {
        let full = manifest.full_name();
        let (namespace, name) = full.split_once('/').unwrap_or(("default", &full));
        let (key, value, kind) = match manifest {
            Manifest::Service(service) => {
                check(service, &here)?;
                (keys::service(namespace, name), to_json(service), "service")
            }
            Manifest::Slice(slice) => (
                keys::endpoint_slice(namespace, name),
                to_json(slice),
                "endpointslice",
            ),
        };
        writes.push((key, value));
        applied.push(format!("{kind} {full}"));
    }
    for (key, value) in &writes {
        daemon
            .store
            .put(key, value.clone(), None)
            .await
            .map_err(store_error)?;
    }
    if let Some(balancer) = &daemon.balancer {
        balancer
            .update(|inputs| {
                for (key, value) in &writes {
                    inputs.put(key, value);
                }
            })
            .await;
    }
    Ok(ServicesApplied {
        applied,
        native: daemon.balancer.is_some(),
    })
}

/// A Service this node could not balance is refused before it is stored.
fn check(service: &Service, here: &Here) -> Result<(), ApiError> {
    service_ports(service, &[], here)
        .map(drop)
        .map_err(|e| ApiError::invalid(format!("service_apply.text: {}", error_chain(&e))))
}

fn to_json<T: serde::Serialize>(object: &T) -> Vec<u8> {
    serde_json::to_vec(object).expect("a Kubernetes object always serializes")
}

/// `service_delete`: the Service and the EndpointSlices labelled with it.
pub async fn delete(daemon: &Daemon, args: &ServiceDelete) -> Result<(), ApiError> {
    let inputs = inputs(daemon).await?;
    let slices: Vec<String> = inputs
        .slices_of(&args.namespace, &args.name)
        .map(|(key, _)| key.to_owned())
        .collect();
    let key = keys::service(&args.namespace, &args.name);
    if !daemon.store.delete(&key).await.map_err(store_error)? {
        return Err(ApiError::not_found(format!(
            "service_delete: no Service {}/{}",
            args.namespace, args.name
        )));
    }
    for slice in &slices {
        daemon.store.delete(slice).await.map_err(store_error)?;
    }
    if let Some(balancer) = &daemon.balancer {
        balancer
            .update(|inputs| {
                for key in slices.iter().chain([&key]) {
                    inputs.delete(key);
                }
            })
            .await;
    }
    Ok(())
}

async fn inputs(daemon: &Daemon) -> Result<ServiceInputs, ApiError> {
    match &daemon.balancer {
        Some(balancer) => Ok(balancer.inputs().await),
        None => Balancer::list(daemon.store.as_ref())
            .await
            .map_err(store_error),
    }
}

/// `service_list`: every Service port as this node reads it.
pub async fn list(daemon: &Daemon) -> Result<ServicesReply, ApiError> {
    let balanced = inputs(daemon).await?.balanced(&here(daemon));
    Ok(ServicesReply {
        native: daemon.balancer.is_some(),
        ports: balanced
            .services
            .values()
            .flatten()
            .map(port_info)
            .collect(),
        refused: balanced.refused.iter().map(|e| error_chain(e)).collect(),
    })
}

fn port_info(port: &ServicePort) -> ServicePortInfo {
    let protocol = |p: u8| match p {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_SCTP => "sctp",
        _ => "?",
    };
    ServicePortInfo {
        name: port.name.clone(),
        frontends: port
            .frontends
            .iter()
            .map(|f| {
                let at = std::net::SocketAddr::new(f.key.ip, f.key.port);
                let kind = match f.kind {
                    FrontendKind::ClusterIp => "",
                    FrontendKind::External => " (external)",
                };
                format!("{at}/{}{kind}", protocol(f.key.protocol))
            })
            .collect(),
        endpoints: port
            .endpoints
            .iter()
            .map(|e| {
                let mut text = std::net::SocketAddr::new(e.ip, e.port).to_string();
                if e.local {
                    text.push_str(" (local)");
                }
                if e.terminating {
                    text.push_str(" (terminating)");
                } else if !e.ready {
                    text.push_str(" (not ready)");
                }
                text
            })
            .collect(),
    }
}

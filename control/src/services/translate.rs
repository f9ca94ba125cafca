//! A Service and its EndpointSlices → the Service ports this node's dataplane
//! balances, as kube-proxy reads them:
//!
//! - frontends: each cluster IP (`clusterIPs`, both families), each
//!   `externalIPs` and load-balancer ingress IP on the Service port, and for
//!   `NodePort` and `LoadBalancer` Services each of this node's addresses on
//!   the node port; headless (`clusterIP: None`) and `ExternalName` Services
//!   give none;
//! - endpoints: the first address of each endpoint of the slices labelled
//!   with the Service's name and of the frontend's family, on the slice port
//!   named like the Service port; `ready` absent means ready, `serving` absent
//!   means as ready, `terminating` absent means not; local when its
//!   `nodeName` is this node;
//! - one dataplane Service port per (Service port, address family).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort as K8sPort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tweed_dataplane::table::service::{
    Affinity, Frontend, FrontendKind, ServiceEndpoint, ServiceKey, ServicePort, TrafficPolicy,
};
use tweed_dataplane::wire::transport::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};

use super::error::ServiceSpecError;

/// The label an EndpointSlice names its Service by.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where the translation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Here {
    /// This node's name, which marks local endpoints.
    pub node: String,
    /// This node's addresses, the frontends of node ports.
    pub addresses: Vec<IpAddr>,
}

/// The dataplane Service ports of `service`, with endpoints from those of
/// `slices` that belong to it (others are skipped).
pub fn service_ports(
    service: &Service,
    slices: &[EndpointSlice],
    here: &Here,
) -> Result<Vec<ServicePort>, ServiceSpecError> {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let full = format!("{namespace}/{name}");
    let Some(spec) = &service.spec else {
        return Ok(Vec::new());
    };
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return Ok(Vec::new());
    }
    let cluster_ips = cluster_ips(
        &full,
        spec.cluster_ips.as_deref(),
        spec.cluster_ip.as_deref(),
    )?;
    let external_ips = addresses(&full, "externalIPs", spec.external_ips.iter().flatten())?;
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let lb_ips = addresses(
        &full,
        "status.loadBalancer.ingress",
        ingress.into_iter().flatten().filter_map(|i| i.ip.as_ref()),
    )?;
    let node_ports = matches!(kind, "NodePort" | "LoadBalancer");
    let internal = policy(
        &full,
        "internalTrafficPolicy",
        spec.internal_traffic_policy.as_deref(),
    )?;
    let external = policy(
        &full,
        "externalTrafficPolicy",
        spec.external_traffic_policy.as_deref(),
    )?;
    let affinity = match spec.session_affinity.as_deref() {
        None | Some("None") => Affinity::None,
        Some("ClientIP") => Affinity::ClientIp,
        Some(other) => {
            return Err(ServiceSpecError::Unknown {
                service: full,
                field: "sessionAffinity",
                value: other.into(),
            });
        }
    };
    let own: Vec<&EndpointSlice> = slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref().unwrap_or("default") == namespace
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str)
                    == Some(name)
        })
        .collect();

    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = protocol(&full, port)?;
        let number = port_number(&full, "port", port.port)?;
        for v4 in [true, false] {
            let mut frontends = Vec::new();
            let mut add = |ips: &[IpAddr], port: u16, kind: FrontendKind| {
                for &ip in ips.iter().filter(|ip| ip.is_ipv4() == v4) {
                    frontends.push(Frontend {
                        key: ServiceKey { ip, protocol, port },
                        kind,
                    });
                }
            };
            add(&cluster_ips, number, FrontendKind::ClusterIp);
            add(&external_ips, number, FrontendKind::External);
            add(&lb_ips, number, FrontendKind::External);
            if node_ports && let Some(node_port) = port.node_port {
                add(
                    &here.addresses,
                    port_number(&full, "nodePort", node_port)?,
                    FrontendKind::External,
                );
            }
            if frontends.is_empty() {
                continue;
            }
            let port_name = port.name.as_deref().unwrap_or_default();
            out.push(ServicePort {
                name: format!("{full}:{port_name}{}", if v4 { "" } else { "/v6" }),
                frontends,
                endpoints: endpoints(&full, &own, port_name, protocol, v4, &here.node)?,
                internal,
                external,
                affinity,
            });
        }
    }
    Ok(out)
}

/// The endpoints of `slices` of one family serving the port named `port_name`.
fn endpoints(
    service: &str,
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: u8,
    v4: bool,
    node: &str,
) -> Result<Vec<ServiceEndpoint>, ServiceSpecError> {
    let family = if v4 { "IPv4" } else { "IPv6" };
    let mut out = Vec::new();
    for slice in slices.iter().filter(|s| s.address_type == family) {
        let target = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && p.protocol
                    .as_deref()
                    .map_or(Ok(PROTO_TCP), |name| protocol_number(service, name))
                    == Ok(protocol)
        });
        let Some(port) = target.and_then(|p| p.port) else {
            continue;
        };
        let port = port_number(service, "EndpointSlice port", port)?;
        for endpoint in &slice.endpoints {
            let Some(first) = endpoint.addresses.first() else {
                continue;
            };
            let ip = parse(service, "EndpointSlice address", first)?;
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            out.push(ServiceEndpoint {
                ip,
                port,
                local: endpoint.node_name.as_deref() == Some(node),
                ready,
                serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
            });
        }
    }
    Ok(out)
}

fn cluster_ips(
    service: &str,
    many: Option<&[String]>,
    one: Option<&str>,
) -> Result<Vec<IpAddr>, ServiceSpecError> {
    // `clusterIPs` when given, else the older single `clusterIP`.
    let texts: Vec<&str> = match many {
        Some(list) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        _ => one.into_iter().collect(),
    };
    // Headless: no cluster IP to answer on.
    addresses(
        service,
        "clusterIPs",
        texts.into_iter().filter(|t| !t.is_empty() && *t != "None"),
    )
}

fn addresses(
    service: &str,
    field: &'static str,
    texts: impl Iterator<Item = impl AsRef<str>>,
) -> Result<Vec<IpAddr>, ServiceSpecError> {
    texts.map(|t| parse(service, field, t.as_ref())).collect()
}

fn parse(service: &str, field: &'static str, text: &str) -> Result<IpAddr, ServiceSpecError> {
    text.parse().map_err(|source| ServiceSpecError::Address {
        service: service.to_owned(),
        field,
        value: text.to_owned(),
        source,
    })
}

fn policy(
    service: &str,
    field: &'static str,
    value: Option<&str>,
) -> Result<TrafficPolicy, ServiceSpecError> {
    match value {
        None | Some("Cluster") => Ok(TrafficPolicy::Cluster),
        Some("Local") => Ok(TrafficPolicy::Local),
        Some(other) => Err(ServiceSpecError::Unknown {
            service: service.to_owned(),
            field,
            value: other.to_owned(),
        }),
    }
}

fn protocol(service: &str, port: &K8sPort) -> Result<u8, ServiceSpecError> {
    port.protocol
        .as_deref()
        .map_or(Ok(PROTO_TCP), |name| protocol_number(service, name))
}

fn protocol_number(service: &str, name: &str) -> Result<u8, ServiceSpecError> {
    match name {
        "TCP" => Ok(PROTO_TCP),
        "UDP" => Ok(PROTO_UDP),
        "SCTP" => Ok(PROTO_SCTP),
        other => Err(ServiceSpecError::Unknown {
            service: service.to_owned(),
            field: "protocol",
            value: other.to_owned(),
        }),
    }
}

fn port_number(service: &str, field: &'static str, value: i32) -> Result<u16, ServiceSpecError> {
    u16::try_from(value)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(ServiceSpecError::Port {
            service: service.to_owned(),
            field,
            value,
        })
}

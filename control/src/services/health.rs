//! Health check node ports (pure). A `LoadBalancer` Service with
//! `externalTrafficPolicy: Local` sends outside traffic only to endpoints on
//! the node it arrives at, so the cloud's load balancer must know which nodes
//! have one: the API server gives such a Service a `healthCheckNodePort`,
//! and every node answers HTTP on it, as kube-proxy does: 200 with the
//! number of its ready local endpoints, or 503 when it has none.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use tweed_dataplane::table::service::{ServicePort, TrafficPolicy};

use super::error::ServiceSpecError;

/// One Service's health check on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The node port it is answered on.
    pub port: u16,
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// Its ready endpoints on this node (distinct addresses).
    pub local_endpoints: usize,
}

/// The health check of `service`, whose Service ports on this node are
/// `ports` (from [`super::service_ports`]): `None` unless it is a
/// `LoadBalancer` with the `Local` external policy and a
/// `healthCheckNodePort`; an error if that port is no port.
pub fn health_check(
    service: &Service,
    ports: &[ServicePort],
) -> Result<Option<HealthCheck>, ServiceSpecError> {
    let Some(spec) = &service.spec else {
        return Ok(None);
    };
    let (Some("LoadBalancer"), Some(port)) = (spec.type_.as_deref(), spec.health_check_node_port)
    else {
        return Ok(None);
    };
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let name = service.metadata.name.as_deref().unwrap_or_default();
    if !ports.iter().all(|p| p.external == TrafficPolicy::Local) || ports.is_empty() {
        return Ok(None);
    }
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| ServiceSpecError::Port {
            service: format!("{namespace}/{name}"),
            field: "healthCheckNodePort",
            value: port,
        })?;
    let local: BTreeSet<_> = ports
        .iter()
        .flat_map(|p| &p.endpoints)
        .filter(|e| e.local && e.ready)
        .map(|e| e.ip)
        .collect();
    Ok(Some(HealthCheck {
        port,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        local_endpoints: local.len(),
    }))
}

impl HealthCheck {
    /// The HTTP status and JSON body this node answers with (kube-proxy's).
    pub fn answer(&self) -> (u16, String) {
        let status = if self.local_endpoints > 0 { 200 } else { 503 };
        let body = serde_json::json!({
            "service": { "namespace": self.namespace, "name": self.name },
            "localEndpoints": self.local_endpoints,
            "serviceProxyHealthy": true,
        });
        (status, format!("{body}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::service_ports;
    use crate::services::tests::here;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    fn service(spec: &str) -> Service {
        serde_yaml_ng::from_str(&format!(
            "metadata: {{namespace: shop, name: web}}\nspec: {{clusterIP: 10.96.0.11, ports: [{{name: http, port: 80, nodePort: 30080}}], {spec}}}"
        ))
        .unwrap()
    }

    /// A slice of web with endpoints on `(address, node, ready)`.
    fn slice(endpoints: &[(&str, &str, bool)]) -> EndpointSlice {
        let list: String = endpoints
            .iter()
            .map(|(ip, node, ready)| {
                format!(
                    "{{addresses: [\"{ip}\"], nodeName: {node}, conditions: {{ready: {ready}}}}},"
                )
            })
            .collect();
        serde_yaml_ng::from_str(&format!(
            "metadata: {{namespace: shop, name: web-1, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nports: [{{name: http, port: 80}}]\nendpoints: [{list}]"
        ))
        .unwrap()
    }

    fn check(spec: &str, slices: &[EndpointSlice]) -> Option<HealthCheck> {
        let service = service(spec);
        let ports = service_ports(&service, slices, &here()).unwrap();
        health_check(&service, &ports).unwrap()
    }

    const LB_LOCAL: &str =
        "type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 32000";

    #[test]
    fn a_local_load_balancer_counts_this_nodes_ready_endpoints() {
        let slices = [slice(&[
            ("10.244.1.5", "node-a", true),
            ("10.244.1.6", "node-a", false),
            ("10.244.2.5", "node-b", true),
        ])];
        let check = check(LB_LOCAL, &slices).expect("a health check");
        assert_eq!(check.port, 32000);
        assert_eq!(check.local_endpoints, 1);
        let (status, body) = check.answer();
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({
                "service": {"namespace": "shop", "name": "web"},
                "localEndpoints": 1,
                "serviceProxyHealthy": true,
            })
        );
    }

    #[test]
    fn without_a_ready_local_endpoint_the_node_answers_503() {
        let slices = [slice(&[("10.244.2.5", "node-b", true)])];
        let check = check(LB_LOCAL, &slices).expect("a health check");
        assert_eq!(check.local_endpoints, 0);
        assert_eq!(check.answer().0, 503);
    }

    #[test]
    fn only_local_load_balancers_with_a_port_have_one() {
        for spec in [
            "type: LoadBalancer, externalTrafficPolicy: Cluster, healthCheckNodePort: 32000",
            "type: LoadBalancer, externalTrafficPolicy: Local",
            "type: NodePort, externalTrafficPolicy: Local, healthCheckNodePort: 32000",
        ] {
            assert_eq!(check(spec, &[]), None, "{spec}");
        }
    }

    #[test]
    fn a_health_check_port_out_of_range_names_the_field() {
        let service =
            service("type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 70000");
        let ports = service_ports(&service, &[], &here()).unwrap();
        let e = health_check(&service, &ports).unwrap_err();
        assert!(
            e.to_string()
                .contains("shop/web: healthCheckNodePort 70000 is not a port"),
            "{e}"
        );
    }
}

//! The Kubernetes documents the Service tests apply with `tweed service
//! apply`: a Service with one port and its EndpointSlice, as `kubectl get
//! -o yaml` would print them (the fields tweed reads).

use std::net::{IpAddr, Ipv4Addr};

/// One Service port on a ClusterIP and the endpoints behind it.
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// `metadata.name` (namespace `default`).
    pub name: &'a str,
    /// `spec.clusterIP`.
    pub vip: Ipv4Addr,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: &'a str,
    /// The Service's port.
    pub port: u16,
    /// The endpoints' port (`targetPort`).
    pub target: u16,
    /// `spec.type`, `sessionAffinity`, `externalTrafficPolicy` and the like,
    /// one `key: value` each.
    pub spec: &'a [&'a str],
    /// The port's `nodePort`, for a NodePort Service.
    pub node_port: Option<u16>,
    /// The endpoints: address and node.
    pub backends: &'a [(IpAddr, &'a str)],
}

impl Service<'_> {
    /// The Service and its EndpointSlice, each document ended by `---`.
    pub fn manifest(&self) -> String {
        let Service {
            name,
            vip,
            protocol,
            port,
            target,
            ..
        } = *self;
        let spec: String = self.spec.iter().map(|l| format!("\n  {l}")).collect();
        let node_port = self
            .node_port
            .map_or_else(String::new, |p| format!(", nodePort: {p}"));
        let endpoints = if self.backends.is_empty() {
            "endpoints: []".to_owned()
        } else {
            let list: String = self
                .backends
                .iter()
                .map(|(ip, node)| format!("\n- addresses: [\"{ip}\"]\n  nodeName: {node}"))
                .collect();
            format!("endpoints:{list}")
        };
        format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{namespace: default, name: {name}}}
spec:
  clusterIP: {vip}{spec}
  ports: [{{name: p, protocol: {protocol}, port: {port}, targetPort: {target}{node_port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: default
  name: {name}-1
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: p, protocol: {protocol}, port: {target}}}]
{endpoints}
---"#
        )
    }
}

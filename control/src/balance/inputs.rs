//! The Services and EndpointSlices of the cluster, as listed and watched
//! from the store, and what they make of this node's native Services. Pure.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tweed_dataplane::table::service::ServicePort;

use crate::cluster::keys;
use crate::services::{
    HealthCheck, Here, SERVICE_NAME_LABEL, ServiceSpecError, health_check, service_ports,
};
use crate::store::follow::{Inputs, decoded};

/// Every Service and EndpointSlice, by store key.
#[derive(Debug, Clone, Default)]
pub struct ServiceInputs {
    services: BTreeMap<String, Service>,
    slices: BTreeMap<String, EndpointSlice>,
}

/// This node's native Services: ports by `NAMESPACE/NAME`, and the Services
/// that could not be read (left out, the others still balanced).
#[derive(Debug, Default)]
pub struct Balanced {
    /// Every readable Service's ports (none for a headless one).
    pub services: BTreeMap<String, Vec<ServicePort>>,
    /// The Services left out (or, for a health check port another holds,
    /// balanced without one), and why.
    pub refused: Vec<ServiceSpecError>,
    /// The health check node ports this node answers, by port.
    pub health: BTreeMap<u16, HealthCheck>,
}

impl ServiceInputs {
    /// The Services, by store key.
    pub fn services(&self) -> impl Iterator<Item = (&str, &Service)> {
        self.services.iter().map(|(k, s)| (k.as_str(), s))
    }

    /// The slices of the Service `namespace/name`, by store key.
    pub fn slices_of<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a EndpointSlice)> {
        self.slices
            .iter()
            .filter(move |(_, s)| owner(s) == Some((namespace, name)))
            .map(|(k, s)| (k.as_str(), s))
    }

    /// What the Services make of this node's native Services.
    pub fn balanced(&self, here: &Here) -> Balanced {
        let mut by_service: HashMap<(&str, &str), Vec<EndpointSlice>> = HashMap::new();
        for slice in self.slices.values() {
            if let Some(owner) = owner(slice) {
                by_service.entry(owner).or_default().push(slice.clone());
            }
        }
        let mut balanced = Balanced::default();
        for service in self.services.values() {
            let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
            let name = service.metadata.name.as_deref().unwrap_or_default();
            let slices = by_service
                .get(&(namespace, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let read = service_ports(service, slices, here)
                .and_then(|ports| Ok((health_check(service, &ports)?, ports)));
            let (check, ports) = match read {
                Ok(read) => read,
                Err(e) => {
                    balanced.refused.push(e);
                    continue;
                }
            };
            let full = format!("{namespace}/{name}");
            if let Some(check) = check {
                match balanced.health.get(&check.port) {
                    Some(other) => balanced.refused.push(ServiceSpecError::HealthPortTaken {
                        service: full.clone(),
                        port: check.port,
                        other: format!("{}/{}", other.namespace, other.name),
                    }),
                    None => {
                        balanced.health.insert(check.port, check);
                    }
                }
            }
            balanced.services.insert(full, ports);
        }
        balanced
    }
}

/// The Service a slice belongs to: its namespace and service-name label.
fn owner(slice: &EndpointSlice) -> Option<(&str, &str)> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((
        slice.metadata.namespace.as_deref().unwrap_or("default"),
        name.as_str(),
    ))
}

impl Inputs for ServiceInputs {
    const PREFIXES: &'static [&'static str] = &[keys::SERVICES, keys::ENDPOINT_SLICES];

    fn put(&mut self, key: &str, value: &[u8]) -> bool {
        if key.starts_with(keys::SERVICES) {
            match decoded::<Service>(key, value) {
                Some(s) => self.services.insert(key.to_owned(), s.clone()) != Some(s),
                None => self.services.remove(key).is_some(),
            }
        } else if key.starts_with(keys::ENDPOINT_SLICES) {
            match decoded::<EndpointSlice>(key, value) {
                Some(s) => self.slices.insert(key.to_owned(), s.clone()) != Some(s),
                None => self.slices.remove(key).is_some(),
            }
        } else {
            false
        }
    }

    fn delete(&mut self, key: &str) -> bool {
        self.services.remove(key).is_some() || self.slices.remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> Here {
        Here {
            node: "node-a".into(),
            addresses: vec!["192.168.50.1".parse().unwrap()],
        }
    }

    fn put(inputs: &mut ServiceInputs, key: &str, yaml: &str) -> bool {
        let value: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        inputs.put(key, &serde_json::to_vec(&value).unwrap())
    }

    const WEB: &str = "metadata: {namespace: shop, name: web}
spec: {clusterIP: 10.96.0.11, ports: [{name: http, port: 80, targetPort: 8080}]}";
    const BAD: &str = "metadata: {namespace: shop, name: bad}
spec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}";

    fn slice(namespace: &str, service: &str, ip: &str) -> String {
        format!(
            "metadata: {{namespace: {namespace}, name: {service}-x, labels: {{kubernetes.io/service-name: {service}}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: [{ip}], nodeName: node-b}}]"
        )
    }

    #[test]
    fn a_service_gets_the_endpoints_of_its_own_slices_only() {
        let mut inputs = ServiceInputs::default();
        assert!(put(&mut inputs, &keys::service("shop", "web"), WEB));
        assert!(
            !put(&mut inputs, &keys::service("shop", "web"), WEB),
            "same again"
        );
        put(
            &mut inputs,
            &keys::endpoint_slice("shop", "web-x"),
            &slice("shop", "web", "10.244.1.5"),
        );
        put(
            &mut inputs,
            &keys::endpoint_slice("other", "web-x"),
            &slice("other", "web", "10.244.1.9"),
        );
        let balanced = inputs.balanced(&here());
        let ports = &balanced.services["shop/web"];
        assert_eq!(ports.len(), 1);
        let ips: Vec<_> = ports[0]
            .endpoints
            .iter()
            .map(|e| e.ip.to_string())
            .collect();
        assert_eq!(ips, ["10.244.1.5"]);
        assert_eq!(inputs.slices_of("shop", "web").count(), 1);

        assert!(inputs.delete(&keys::endpoint_slice("shop", "web-x")));
        assert!(
            inputs.balanced(&here()).services["shop/web"][0]
                .endpoints
                .is_empty()
        );
    }

    #[test]
    fn an_unreadable_service_is_refused_and_the_others_still_balanced() {
        let mut inputs = ServiceInputs::default();
        put(&mut inputs, &keys::service("shop", "web"), WEB);
        put(&mut inputs, &keys::service("shop", "bad"), BAD);
        assert!(!inputs.put(&keys::service("shop", "junk"), b"{not json"));
        let balanced = inputs.balanced(&here());
        assert_eq!(balanced.services.keys().collect::<Vec<_>>(), ["shop/web"]);
        assert_eq!(balanced.refused.len(), 1);
        assert!(balanced.refused[0].to_string().contains("shop/bad"));
    }

    #[test]
    fn a_health_check_port_is_answered_for_one_service_only() {
        let lb = |name: &str| {
            format!(
                "metadata: {{namespace: shop, name: {name}}}
spec: {{type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: 32000, clusterIP: 10.96.0.12, ports: [{{name: http, port: 80, nodePort: 30080}}]}}"
            )
        };
        let mut inputs = ServiceInputs::default();
        put(&mut inputs, &keys::service("shop", "a"), &lb("a"));
        put(&mut inputs, &keys::service("shop", "b"), &lb("b"));
        let balanced = inputs.balanced(&here());
        assert_eq!(balanced.health.len(), 1);
        assert_eq!(balanced.health[&32000].name, "a");
        assert_eq!(
            balanced
                .refused
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["service shop/b: healthCheckNodePort 32000 is already shop/a's"]
        );
        assert_eq!(
            balanced.services.keys().collect::<Vec<_>>(),
            ["shop/a", "shop/b"],
            "both are balanced"
        );
    }
}

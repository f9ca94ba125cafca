//! Service and EndpointSlice → themselves under `services/NS/NAME` and
//! `endpointslices/NS/NAME`, for the native Services' balancer (which reads
//! them as `tweed service apply` stores them). `managedFields` are dropped:
//! they are most of an object's size and nothing here reads them.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Context, Entry, Translate, encode};
use crate::cluster::keys;

fn names(meta: &ObjectMeta, kind: &str) -> Result<(String, String), String> {
    match (&meta.namespace, &meta.name) {
        (Some(namespace), Some(name)) => Ok((namespace.clone(), name.clone())),
        _ => Err(format!("a {kind} without a namespace or name")),
    }
}

impl Translate for Service {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        let (namespace, name) = names(&self.metadata, "Service")?;
        let mut service = self.clone();
        service.metadata.managed_fields = None;
        Ok(vec![(keys::service(&namespace, &name), encode(&service))])
    }
}

impl Translate for EndpointSlice {
    fn entries(&self, _: &Context) -> Result<Vec<Entry>, String> {
        let (namespace, name) = names(&self.metadata, "EndpointSlice")?;
        let mut slice = self.clone();
        slice.metadata.managed_fields = None;
        Ok(vec![(
            keys::endpoint_slice(&namespace, &name),
            encode(&slice),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context { node: "a".into() }
    }

    #[test]
    fn services_and_slices_are_stored_whole_without_managed_fields() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "web",
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 80}]}
        }))
        .unwrap();
        let entries = service.entries(&context()).unwrap();
        assert_eq!(entries[0].0, keys::service("shop", "web"));
        let stored: Service = serde_json::from_slice(&entries[0].1).unwrap();
        assert_eq!(stored.spec, service.spec);
        assert!(stored.metadata.managed_fields.is_none());

        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "shop", "name": "web-1"},
            "addressType": "IPv4", "endpoints": []
        }))
        .unwrap();
        let entries = slice.entries(&context()).unwrap();
        assert_eq!(entries[0].0, keys::endpoint_slice("shop", "web-1"));
    }

    #[test]
    fn an_unnamed_object_gives_nothing_and_says_so() {
        let service = Service::default();
        assert!(service.entries(&context()).unwrap_err().contains("Service"));
    }
}

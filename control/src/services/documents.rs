//! `tweed service apply`'s text → the Services and EndpointSlices in it:
//! YAML documents or a stream of JSON values, each a Service, an
//! EndpointSlice, or a List of them, as `kubectl get -o yaml` prints them.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::error::DocumentError;

/// One object of the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A Service.
    Service(Box<Service>),
    /// An EndpointSlice.
    Slice(Box<EndpointSlice>),
}

impl Manifest {
    /// `NAMESPACE/NAME` (the namespace `default` when none is given).
    pub fn full_name(&self) -> String {
        let meta = match self {
            Manifest::Service(s) => &s.metadata,
            Manifest::Slice(s) => &s.metadata,
        };
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default()
        )
    }
}

/// Every Service and EndpointSlice in `text`, in order; the first document
/// that is neither, or does not read as its kind, is the error.
pub fn parse_documents(text: &str) -> Result<Vec<Manifest>, DocumentError> {
    let mut out = Vec::new();
    for (document, value) in documents(text)? {
        let items = match value {
            Value::Null => continue,
            Value::Sequence(items) => items,
            Value::Mapping(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.ends_with("List")) =>
            {
                match map.get("items") {
                    Some(Value::Sequence(items)) => items.clone(),
                    _ => return Err(DocumentError::ListWithoutItems { document }),
                }
            }
            value => vec![value],
        };
        for item in items {
            out.push(manifest(item, document)?);
        }
    }
    Ok(out)
}

fn manifest(value: Value, document: usize) -> Result<Manifest, DocumentError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let read = |source| DocumentError::Invalid {
        document,
        kind: kind.clone(),
        source,
    };
    let manifest = match kind.as_str() {
        "Service" => {
            Manifest::Service(Box::new(Service::deserialize(value.clone()).map_err(read)?))
        }
        "EndpointSlice" => Manifest::Slice(Box::new(
            EndpointSlice::deserialize(value.clone()).map_err(read)?,
        )),
        _ => return Err(DocumentError::Kind { document, kind }),
    };
    let named = match &manifest {
        Manifest::Service(s) => s.metadata.name.as_deref(),
        Manifest::Slice(s) => s.metadata.name.as_deref(),
    };
    if named.is_none_or(str::is_empty) {
        return Err(DocumentError::Unnamed { document, kind });
    }
    Ok(manifest)
}

/// Splits `text` into documents, numbered from 1.
fn documents(text: &str) -> Result<Vec<(usize, Value)>, DocumentError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with(['{', '[']) {
        // One JSON value after another, as `kubectl get -o json` prints them.
        return serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
            .map(|(i, value)| {
                value
                    .map(|value| (i + 1, value))
                    .map_err(|e| DocumentError::Json {
                        document: i + 1,
                        source: e.into(),
                    })
            })
            .collect();
    }
    serde_yaml_ng::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, doc)| {
            Value::deserialize(doc)
                .map(|value| (i + 1, value))
                .map_err(|source| DocumentError::Yaml {
                    document: i + 1,
                    source: source.into(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.11
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: shop, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.5]}]
"#;

    #[test]
    fn services_and_slices_are_read_from_yaml_documents() {
        let manifests = parse_documents(TWO).unwrap();
        assert_eq!(manifests.len(), 2);
        assert!(matches!(manifests[0], Manifest::Service(_)));
        assert_eq!(manifests[0].full_name(), "default/web");
        assert!(matches!(manifests[1], Manifest::Slice(_)));
        assert_eq!(manifests[1].full_name(), "shop/web-1");
    }

    #[test]
    fn lists_and_json_streams_are_read_too() {
        let list = r#"{"kind": "List", "items": [
            {"kind": "Service", "metadata": {"name": "a"}},
            {"kind": "Service", "metadata": {"name": "b"}}]}
            {"kind": "Service", "metadata": {"name": "c"}}"#;
        let names: Vec<String> = parse_documents(list)
            .unwrap()
            .iter()
            .map(Manifest::full_name)
            .collect();
        assert_eq!(names, ["default/a", "default/b", "default/c"]);
    }

    #[test]
    fn other_kinds_bad_fields_and_bad_syntax_name_their_document() {
        let pod = "kind: Service\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: p}\n";
        let err = parse_documents(pod).unwrap_err();
        assert!(
            matches!(err, DocumentError::Kind { document: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("Pod"), "{err}");

        let bad = "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: eighty}]}\n";
        let err = parse_documents(bad).unwrap_err();
        assert!(
            matches!(err, DocumentError::Invalid { document: 1, .. }),
            "{err}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is chained"
        );

        let unnamed = "kind: EndpointSlice\naddressType: IPv4\nendpoints: []\n";
        assert!(matches!(
            parse_documents(unnamed).unwrap_err(),
            DocumentError::Unnamed { document: 1, .. }
        ));
        assert!(matches!(
            parse_documents("kind: Service\n  bad: [").unwrap_err(),
            DocumentError::Yaml { document: 1, .. }
        ));
        assert!(matches!(
            parse_documents("{\"kind\": ").unwrap_err(),
            DocumentError::Json { document: 1, .. }
        ));
    }
}

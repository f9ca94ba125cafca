//! Policy manifests from text: one or many YAML documents (`---`), JSON (one
//! value or several in a row), a top-level sequence, or a `kind: List` with
//! `items` (kubectl's list form). Every policy is validated before any is
//! returned, so a file is taken whole or not at all.
//!
//! Unknown fields are errors at the top level and in `spec` (they are
//! usually typos that would silently change what a policy allows); unknown
//! `metadata` fields (labels, annotations, uid, resourceVersion, ...) and a
//! `status` are ignored.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use super::error::{Invalid, PolicyError};
use super::model::{NetworkPolicy, NetworkPolicySpec, OrderedPolicy, OrderedSpec, Policy, Scope};
use super::validate;

/// The `apiVersion` of Kubernetes NetworkPolicy.
pub const K8S_API_VERSION: &str = "networking.k8s.io/v1";
/// The `apiVersion` of tweed's ordered policies.
pub const TWEED_API_VERSION: &str = "tweed.dev/v1";
/// The namespace of a namespaced policy that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Reads every policy in `text`; see the module documentation for the forms.
pub fn parse_documents(text: &str) -> Result<Vec<Policy>, PolicyError> {
    let mut policies = Vec::new();
    for (document, value) in documents(text)? {
        match value {
            Value::Null => {}
            Value::Sequence(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    policies.push(object(item, document, &format!("[{i}]"))?);
                }
            }
            Value::Mapping(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.ends_with("List")) =>
            {
                let Some(Value::Sequence(items)) = map.get("items") else {
                    return Err(invalid(
                        document,
                        None,
                        "",
                        Invalid::new("items", "a List needs `items`, a sequence of policies"),
                    ));
                };
                for (i, item) in items.iter().enumerate() {
                    policies.push(object(item.clone(), document, &format!("items[{i}]"))?);
                }
            }
            value => policies.push(object(value, document, "")?),
        }
    }
    Ok(policies)
}

/// Reads one policy manifest (as [`Policy`]'s `Deserialize` does); `document`
/// numbers it in errors.
pub(crate) fn policy_from_value(value: Value, document: usize) -> Result<Policy, PolicyError> {
    object(value, document, "")
}

/// Splits `text` into documents, numbered from 1.
fn documents(text: &str) -> Result<Vec<(usize, Value)>, PolicyError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with(['{', '[']) {
        let mut out = Vec::new();
        // One JSON value after another, as `kubectl get -o json` prints them.
        let stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        for (i, value) in stream.enumerate() {
            let value = value.map_err(|e| PolicyError::Syntax {
                document: i + 1,
                reason: e.to_string(),
            })?;
            out.push((i + 1, value));
        }
        return Ok(out);
    }
    serde_yaml_ng::Deserializer::from_str(text)
        .enumerate()
        .map(|(i, doc)| {
            Value::deserialize(doc)
                .map(|value| (i + 1, value))
                .map_err(|e| PolicyError::Syntax {
                    document: i + 1,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// A manifest as read: the spec type depends on the kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManifestIn<S> {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default)]
    metadata: MetadataIn,
    #[serde(default)]
    spec: S,
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
}

/// The metadata fields tweed reads; the rest are ignored.
#[derive(Default, Deserialize)]
struct MetadataIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// A manifest as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: MetadataOut<'a>,
    spec: SpecOut<'a>,
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SpecOut<'a> {
    Kubernetes(&'a NetworkPolicySpec),
    Ordered(&'a OrderedSpec),
}

/// The manifest `policy` serializes as.
pub(crate) fn manifest(policy: &Policy) -> ManifestOut<'_> {
    match policy {
        Policy::Kubernetes(p) => ManifestOut {
            api_version: K8S_API_VERSION,
            kind: "NetworkPolicy",
            metadata: MetadataOut {
                name: &p.name,
                namespace: Some(&p.namespace),
            },
            spec: SpecOut::Kubernetes(&p.spec),
        },
        Policy::Ordered(p) => ManifestOut {
            api_version: TWEED_API_VERSION,
            kind: match p.scope {
                Scope::Namespace(_) => "Policy",
                Scope::Global => "GlobalPolicy",
            },
            metadata: MetadataOut {
                name: &p.name,
                namespace: match &p.scope {
                    Scope::Namespace(ns) => Some(ns),
                    Scope::Global => None,
                },
            },
            spec: SpecOut::Ordered(&p.spec),
        },
    }
}

fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty() || field == ".") {
        (true, true) => "(document)".to_owned(),
        (true, false) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

fn invalid(document: usize, object: Option<String>, prefix: &str, e: Invalid) -> PolicyError {
    PolicyError::Invalid {
        document,
        object,
        field: join(prefix, &e.field),
        problem: e.problem,
    }
}

/// Reads, checks and returns one manifest found at `prefix` of a document.
fn object(value: Value, document: usize, prefix: &str) -> Result<Policy, PolicyError> {
    let Value::Mapping(map) = &value else {
        return Err(invalid(
            document,
            None,
            prefix,
            Invalid::new(
                "",
                "expected a mapping with apiVersion, kind, metadata and spec",
            ),
        ));
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let api_version = text("apiVersion");
    let kind = text("kind");
    let meta = |key: &str| {
        map.get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let object_name = match (&kind, meta("name")) {
        (Some(kind), Some(name)) => Some(match (kind.as_str(), meta("namespace")) {
            ("GlobalPolicy", _) => format!("{kind} {name}"),
            (_, ns) => format!(
                "{kind} {}/{name}",
                ns.as_deref().unwrap_or(DEFAULT_NAMESPACE)
            ),
        }),
        _ => None,
    };
    let fail = |e: Invalid| invalid(document, object_name.clone(), prefix, e);
    let Some(kind) = kind else {
        return Err(fail(Invalid::new(
            "kind",
            "missing; give NetworkPolicy (apiVersion networking.k8s.io/v1), \
             or Policy or GlobalPolicy (apiVersion tweed.dev/v1)",
        )));
    };
    let want = match kind.as_str() {
        "NetworkPolicy" => K8S_API_VERSION,
        "Policy" | "GlobalPolicy" => TWEED_API_VERSION,
        other => {
            return Err(fail(Invalid::new(
                "kind",
                format!(
                    "{other:?} is not a policy kind tweed reads; use NetworkPolicy \
                     (networking.k8s.io/v1), Policy or GlobalPolicy (tweed.dev/v1), or a List of them"
                ),
            )));
        }
    };
    if api_version.as_deref() != Some(want) {
        return Err(fail(Invalid::new(
            "apiVersion",
            format!(
                "{} for kind {kind}; it must be {want}",
                api_version.map_or_else(|| "missing".to_owned(), |v| format!("{v:?}"))
            ),
        )));
    }
    let policy = match kind.as_str() {
        "NetworkPolicy" => {
            let m: ManifestIn<NetworkPolicySpec> = typed(value).map_err(&fail)?;
            let (name, namespace) = names(m.metadata, true).map_err(&fail)?;
            Policy::Kubernetes(NetworkPolicy {
                namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
                name,
                spec: m.spec,
            })
        }
        kind => {
            let global = kind == "GlobalPolicy";
            let m: ManifestIn<OrderedSpec> = typed(value).map_err(&fail)?;
            let (name, namespace) = names(m.metadata, !global).map_err(&fail)?;
            Policy::Ordered(OrderedPolicy {
                scope: if global {
                    Scope::Global
                } else {
                    Scope::Namespace(namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()))
                },
                name,
                spec: m.spec,
            })
        }
    };
    validate::policy(&policy).map_err(fail)?;
    Ok(policy)
}

/// Deserializes with the path of the failing field.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        Invalid::new(field, e.into_inner().to_string())
    })
}

/// The name and (for namespaced kinds) namespace from `metadata`.
fn names(meta: MetadataIn, namespaced: bool) -> Result<(String, Option<String>), Invalid> {
    let Some(name) = meta.name else {
        return Err(Invalid::new(
            "metadata.name",
            "missing; every policy needs a name",
        ));
    };
    if !namespaced && meta.namespace.is_some() {
        return Err(Invalid::new(
            "metadata.namespace",
            "a GlobalPolicy is cluster-wide and has no namespace; remove it, \
             or use kind: Policy",
        ));
    }
    Ok((name, meta.namespace))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

/// A policy (de)serializes as its manifest: what `tweed policy list -o yaml`
/// prints and the store holds.
impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        manifest(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml_ng::Value::deserialize(deserializer)?;
        policy_from_value(value, 1).map_err(serde::de::Error::custom)
    }
}

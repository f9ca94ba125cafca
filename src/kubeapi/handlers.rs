//! Resource requests other than watch: list, get, create, replace, patch,
//! delete (of one object or of a selection).

use serde_json::{Value, json};

use super::patch;
use super::resources::RESOURCES;
use super::route::{Query, Target};
use super::select::{FieldSelector, Filter, LabelSelector};
use super::server::Server;
use super::stamp::Stamp;
use super::stats::Stats;
use super::status::ApiError;
use super::store::Part;
use super::wire::Request;

/// A handler's answer: HTTP code and body.
type Answer = Result<(u16, Value), ApiError>;

/// The selection a list, watch or deletecollection asks for.
pub fn filter(namespace: Option<String>, query: &Query) -> Result<Filter, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse field selector: {e}")))?;
    Ok(Filter {
        namespace,
        labels,
        fields,
    })
}

/// The body as JSON (or YAML, when the content type says so).
fn body(req: &Request) -> Result<Value, ApiError> {
    let content_type = req.header("content-type").unwrap_or("");
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::unsupported_media(content_type));
    }
    let yaml = content_type.contains("yaml");
    let parsed = if yaml {
        serde_yaml_ng::from_slice::<Value>(&req.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&req.body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::bad_request(format!("the request body does not parse: {e}")))
}

/// Dispatches a resource request by method and target.
pub fn resource(
    server: &Server,
    req: &Request,
    res: usize,
    namespace: Option<String>,
    target: Target,
    query: &Query,
) -> Answer {
    let ns = namespace.as_deref();
    let method = req.method.as_str();
    let answer = match (method, &target) {
        ("GET", Target::Collection) => return list(server, res, namespace, query),
        ("GET", Target::Object(name) | Target::Status(name)) => {
            server.store().get(res, ns, name).map(|o| (200, o))
        }
        ("POST", Target::Collection) => {
            let obj = body(req)?;
            server
                .store()
                .create(res, ns, obj, &Stamp::fresh())
                .map(|o| (201, o))
        }
        ("PUT", Target::Object(name)) => {
            let obj = body(req)?;
            server
                .store()
                .replace(res, ns, name, obj, Part::Main)
                .map(|o| (200, o))
        }
        ("PUT", Target::Status(name)) => {
            let obj = body(req)?;
            server
                .store()
                .replace(res, ns, name, obj, Part::Status)
                .map(|o| (200, o))
        }
        ("PATCH", Target::Object(name)) => patch(server, req, res, ns, name, Part::Main),
        ("PATCH", Target::Status(name)) => patch(server, req, res, ns, name, Part::Status),
        ("DELETE", Target::Object(name)) => server.store().delete(res, ns, name).map(|o| (200, o)),
        ("DELETE", Target::Collection) => delete_collection(server, res, namespace, query),
        _ => Err(ApiError::method_not_allowed(method)),
    };
    // Every write wakes the watches (a failed one wakes them for nothing).
    if method != "GET" {
        server.notify();
    }
    answer
}

/// A list: items without kind/apiVersion, the list's resourceVersion.
fn list(server: &Server, res: usize, namespace: Option<String>, query: &Query) -> Answer {
    let r = &RESOURCES[res];
    let filter = filter(namespace, query)?;
    Stats::count(&mut server.stats().lists, r.plural);
    let (mut items, rv) = server.store().list(res, &filter);
    for item in &mut items {
        if let Some(m) = item.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
    }
    Ok((
        200,
        json!({
            "kind": r.list_kind(),
            "apiVersion": r.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }),
    ))
}

/// PATCH by content type: merge, JSON patch, strategic merge (as merge),
/// apply (as a merge that creates a missing object).
fn patch(
    server: &Server,
    req: &Request,
    res: usize,
    ns: Option<&str>,
    name: &str,
    part: Part,
) -> Answer {
    let content_type = req.header("content-type").unwrap_or("");
    let mut doc = body(req)?;
    let mut store = server.store();
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/merge-patch+json" => {}
        "application/json-patch+json" => {
            let mut current = store.get(res, ns, name)?;
            patch::json_patch(&mut current, &doc).map_err(|e| {
                ApiError::invalid(
                    RESOURCES[res].kind,
                    name,
                    format!("the JSON patch does not apply: {e}"),
                )
            })?;
            return store
                .replace(res, ns, name, current, part)
                .map(|o| (200, o));
        }
        "application/strategic-merge-patch+json" => patch::strip_directives(&mut doc),
        "application/apply-patch+yaml" => {
            if let Some(m) = doc["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            if store.get(res, ns, name).is_err() && part == Part::Main {
                doc["metadata"]["name"] = json!(name);
                return store
                    .create(res, ns, doc, &Stamp::fresh())
                    .map(|o| (201, o));
            }
        }
        other => return Err(ApiError::unsupported_media(other)),
    }
    store.patch(res, ns, name, &doc, part).map(|o| (200, o))
}

/// DELETE on a collection: deletes what the selectors select.
fn delete_collection(
    server: &Server,
    res: usize,
    namespace: Option<String>,
    query: &Query,
) -> Answer {
    let r = &RESOURCES[res];
    let filter = filter(namespace, query)?;
    let mut store = server.store();
    let (items, _) = store.list(res, &filter);
    let mut deleted = Vec::new();
    for item in items {
        let name = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ns = item["metadata"]["namespace"].as_str().map(str::to_owned);
        deleted.push(store.delete(res, ns.as_deref(), &name)?);
    }
    Ok((
        200,
        json!({
            "kind": r.list_kind(),
            "apiVersion": r.api_version(),
            "metadata": {"resourceVersion": store.rv().to_string()},
            "items": deleted,
        }),
    ))
}

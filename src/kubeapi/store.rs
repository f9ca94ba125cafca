//! The object store: every object the fake holds, one global
//! resourceVersion counter as etcd's revision, and an event log per resource
//! for watches, with a compaction point.
//!
//! Pure: no I/O, no clock; what the server makes up (uid, time) comes in as
//! a [`Stamp`]. The HTTP layer holds it behind a mutex.
//!
//! Semantics kept from the real server: every write bumps the one counter
//! and its value becomes the object's `metadata.resourceVersion`; a write
//! that changes nothing is not a write (no new version, no event); create
//! sets uid, creationTimestamp and generation, which later writes keep;
//! generation grows when anything outside metadata and status changes;
//! resources with a status subresource keep `status` on main-resource writes
//! and keep everything but `status` (and labels, annotations) on `/status`
//! writes; a stale `metadata.resourceVersion` is a 409 Conflict; namespaced
//! objects need their namespace to exist; deleting a namespace deletes what
//! is in it (at once: there are no finalizers, no graceful deletion).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::patch;
use super::resources::{INITIAL_NAMESPACES, RESOURCES, Resource};
use super::select::Filter;
use super::stamp::Stamp;
use super::status::ApiError;

/// The namespaces resource's index in [`RESOURCES`].
pub(super) fn namespaces() -> usize {
    super::resources::find("", "v1", "namespaces").expect("namespaces is in the table")
}

/// The label the server puts on every namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A watch event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The resourceVersion the write made.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The object before a modification (to tell selector enter/leave).
    pub old: Option<Value>,
    /// The object after (for a delete: as it was, at the delete's version).
    pub object: Value,
}

/// Which part of an object a replace or patch writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The resource itself.
    Main,
    /// The `/status` subresource.
    Status,
}

/// Objects keyed by (resource index, namespace or "", name).
type Key = (usize, String, String);

/// The store.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    compacted: u64,
    objects: BTreeMap<Key, Value>,
    log: Vec<Vec<Event>>,
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// The object without metadata and status, what `generation` tracks.
fn spec_part(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    v
}

impl Store {
    /// A store holding the namespaces the real server starts with, each
    /// stamped by a call of `stamp`.
    pub fn new(mut stamp: impl FnMut() -> Stamp) -> Self {
        let mut store = Self {
            rv: 0,
            compacted: 0,
            objects: BTreeMap::new(),
            log: vec![Vec::new(); RESOURCES.len()],
        };
        for ns in INITIAL_NAMESPACES {
            store
                .create(
                    namespaces(),
                    None,
                    json!({"metadata": {"name": ns}}),
                    &stamp(),
                )
                .expect("a fresh store takes the initial namespaces");
        }
        store
    }

    /// The current resourceVersion (the last write's).
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The compaction point: watches from an older version get 410.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Moves the compaction point to now. The point itself takes a version
    /// (the counter steps by one), so every version a client has seen so far
    /// is expired while a list made after the compaction is not.
    pub fn compact(&mut self) -> u64 {
        self.rv += 1;
        self.compacted = self.rv;
        self.rv
    }

    fn key(&self, res: usize, ns: Option<&str>, name: &str) -> Key {
        let ns = if RESOURCES[res].namespaced {
            ns.unwrap_or_default()
        } else {
            ""
        };
        (res, ns.to_owned(), name.to_owned())
    }

    /// Objects of `res` that `filter` selects, and the list's version.
    pub fn list(&self, res: usize, filter: &Filter) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .range((res, String::new(), String::new())..(res + 1, String::new(), String::new()))
            .map(|(_, v)| v)
            .filter(|v| filter.matches(v))
            .cloned()
            .collect();
        (items, self.rv)
    }

    /// One object.
    pub fn get(&self, res: usize, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let r = &RESOURCES[res];
        self.objects
            .get(&self.key(res, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&r.qualified(), name).about(name, r.group, r.plural))
    }

    /// Checks `kind`/`apiVersion` (when given) and sets them.
    fn typed(r: &Resource, mut body: Value) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON object",
            ));
        }
        let want = r.api_version();
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
            && av != want
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want})"
            )));
        }
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != r.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                r.kind
            )));
        }
        body["apiVersion"] = json!(want);
        body["kind"] = json!(r.kind);
        if !body["metadata"].is_object() {
            body["metadata"] = json!({});
        }
        Ok(body)
    }

    /// Checks the body's namespace against the URL's and sets it.
    fn place(r: &Resource, ns: Option<&str>, body: &mut Value) -> Result<(), ApiError> {
        let meta = &mut body["metadata"];
        if !r.namespaced {
            if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
            return Ok(());
        }
        let ns = ns.ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} is namespaced: the URL must name a namespace",
                r.plural
            ))
        })?;
        if let Some(given) = meta["namespace"].as_str()
            && !given.is_empty()
            && given != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta["namespace"] = json!(ns);
        Ok(())
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, res: usize, kind: EventType, old: Option<Value>, object: Value) {
        let rv = self.rv;
        self.log[res].push(Event {
            rv,
            kind,
            old,
            object,
        });
    }

    /// Creates an object (POST on a collection).
    pub fn create(
        &mut self,
        res: usize,
        ns: Option<&str>,
        body: Value,
        stamp: &Stamp,
    ) -> Result<Value, ApiError> {
        let r = &RESOURCES[res];
        let mut obj = Self::typed(r, body)?;
        let name = match str_at(&obj, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match str_at(&obj, "/metadata/generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", stamp.suffix),
                None => {
                    return Err(ApiError::invalid(
                        r.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        if name.contains('/') || name.contains('%') || name == "." || name == ".." {
            return Err(ApiError::invalid(
                r.kind,
                &name,
                format!("metadata.name: Invalid value: {name:?}: may not contain '/' or '%'"),
            ));
        }
        Self::place(r, ns, &mut obj)?;
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_owned);
        if let Some(ns) = &ns
            && !self
                .objects
                .contains_key(&(namespaces(), String::new(), ns.clone()))
        {
            return Err(ApiError::not_found("namespaces", ns).about(ns, "", "namespaces"));
        }
        let key = self.key(res, ns.as_deref(), &name);
        if self.objects.contains_key(&key) {
            return Err(
                ApiError::already_exists(&r.qualified(), &name).about(&name, r.group, r.plural)
            );
        }
        let rv = self.next_rv();
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        meta["uid"] = json!(stamp.uid);
        meta["creationTimestamp"] = json!(stamp.now);
        meta["generation"] = json!(1);
        meta["resourceVersion"] = json!(rv.to_string());
        if res == namespaces() {
            Self::namespace_defaults(&mut obj, &name);
            if obj["status"]["phase"].is_null() {
                obj["status"]["phase"] = json!("Active");
            }
        }
        self.objects.insert(key, obj.clone());
        self.record(res, EventType::Added, None, obj.clone());
        Ok(obj)
    }

    fn namespace_defaults(obj: &mut Value, name: &str) {
        if !obj["metadata"]["labels"].is_object() {
            obj["metadata"]["labels"] = json!({});
        }
        obj["metadata"]["labels"][NAMESPACE_NAME_LABEL] = json!(name);
        if obj["spec"]["finalizers"].is_null() {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
        }
    }

    /// Replaces an object (PUT), or its status (PUT on `/status`).
    pub fn replace(
        &mut self,
        res: usize,
        ns: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let r = &RESOURCES[res];
        let current = self.get(res, ns, name)?;
        let mut new = Self::typed(r, body)?;
        if let Some(given) = str_at(&new, "/metadata/name")
            && given != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        Self::place(r, ns, &mut new)?;
        if let Some(given) = str_at(&new, "/metadata/resourceVersion")
            && !given.is_empty()
            && Some(given) != str_at(&current, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(&r.qualified(), name).about(name, r.group, r.plural));
        }
        if r.status {
            match part {
                Part::Main => match current.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        new.as_object_mut().map(|m| m.remove("status"));
                    }
                },
                Part::Status => {
                    let mut out = current.clone();
                    out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                    for key in ["labels", "annotations"] {
                        match new["metadata"].get(key) {
                            Some(v) => out["metadata"][key] = v.clone(),
                            None => {
                                out["metadata"].as_object_mut().map(|m| m.remove(key));
                            }
                        }
                    }
                    new = out;
                }
            }
        }
        for key in [
            "name",
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
        ] {
            match current["metadata"].get(key) {
                Some(v) => new["metadata"][key] = v.clone(),
                None => {
                    new["metadata"].as_object_mut().map(|m| m.remove(key));
                }
            }
        }
        if res == namespaces() {
            Self::namespace_defaults(&mut new, name);
        }
        if new == current {
            return Ok(current);
        }
        if spec_part(&new) != spec_part(&current) {
            let generation = current["metadata"]["generation"].as_u64().unwrap_or(0);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = self.key(res, ns, name);
        self.objects.insert(key, new.clone());
        self.record(res, EventType::Modified, Some(current), new.clone());
        Ok(new)
    }

    /// Applies a merge patch (RFC 7386) to an object or its status. A
    /// `metadata.resourceVersion` in the patch is a precondition.
    pub fn patch(
        &mut self,
        res: usize,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let mut merged = self.get(res, ns, name)?;
        patch::merge(&mut merged, patch);
        self.replace(res, ns, name, merged, part)
    }

    /// Deletes an object (a namespace with everything in it) and returns it
    /// as it was, at the delete's version.
    pub fn delete(&mut self, res: usize, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let r = &RESOURCES[res];
        let key = self.key(res, ns, name);
        let Some(mut obj) = self.objects.remove(&key) else {
            return Err(ApiError::not_found(&r.qualified(), name).about(name, r.group, r.plural));
        };
        if res == namespaces() {
            let inside: Vec<Key> = self
                .objects
                .iter()
                .filter(|(_, v)| str_at(v, "/metadata/namespace") == Some(name))
                .map(|(k, _)| k.clone())
                .collect();
            for (res, ns, name) in inside {
                self.delete(res, Some(&ns), &name)?;
            }
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(res, EventType::Deleted, None, obj.clone());
        Ok(obj)
    }

    /// The events of `res` after version `after`; 410 Expired when `after`
    /// is older than the compaction point.
    pub fn events_after(&self, res: usize, after: u64) -> Result<&[Event], ApiError> {
        if after < self.compacted {
            return Err(ApiError::expired(after, self.compacted));
        }
        Ok(self.log_after(res, after))
    }

    /// The events of `res` after version `after`, compaction or not (for a
    /// watch that is already running).
    pub fn log_after(&self, res: usize, after: u64) -> &[Event] {
        let log = &self.log[res];
        &log[log.partition_point(|e| e.rv <= after)..]
    }
}

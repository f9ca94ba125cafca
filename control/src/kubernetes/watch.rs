//! One list-and-watch loop per resource, with the API's semantics spelled
//! out (as client-go's reflector does them):
//!
//! 1. **List** every object; the list's `resourceVersion` is where the watch
//!    starts. The listing replaces what the resource held ([`Reflector`]:
//!    objects deleted while nobody watched lose their entries here).
//! 2. **Watch** from that version, with bookmarks: ADDED/MODIFIED/DELETED
//!    change the mirror; every event and bookmark moves the version on. A
//!    watch that ends (the server's timeout, a dropped connection) is opened
//!    again from the last version, so nothing between is missed.
//! 3. **410 Gone** (the version was compacted away), as an HTTP status or an
//!    ERROR event: back to 1.
//! 4. Any other failure: [`Backoff`], then the step that failed again.
//!
//! The resource is current from a completed list or an accepted watch
//! until the next failure ([`SourceStatus`]): that is what `tweed status`
//! calls stale. The loops run until the daemon stops.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use super::backoff::Backoff;
use super::mirror::Mirror;
use super::reflect::{ObjectId, Reflector};
use super::status::SourceStatus;
use super::translate::{Context, Translate};

/// What every loop shares.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Where entries go.
    pub mirror: Arc<Mirror>,
    /// Where the loops report.
    pub status: Arc<SourceStatus>,
    /// This node.
    pub context: Context,
}

/// `NAMESPACE/NAME`, or `NAME` for a cluster-scoped object.
fn id_of<K: ResourceExt>(object: &K) -> ObjectId {
    match object.namespace() {
        Some(ns) => format!("{ns}/{}", object.name_any()),
        None => object.name_any(),
    }
}

/// Why a watch stopped.
enum Ended {
    /// The server closed it: watch again from the version reached.
    Closed,
    /// The version is gone (410): list again.
    Gone,
    /// It failed: back off, then watch again.
    Failed(String),
}

/// Follows `api`'s objects into the mirror, reporting as `resource`.
pub async fn follow<K>(api: Api<K>, resource: &'static str, sink: Sink)
where
    K: Translate + kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    sink.status.expect(resource);
    let mut reflector = Reflector::default();
    let mut backoff = Backoff::default();
    loop {
        let mut version = match list(&api, resource, &sink, &mut reflector).await {
            Ok(Some(version)) => version,
            Ok(None) => {
                tokio::time::sleep(UNSERVED_RETRY).await;
                continue;
            }
            Err(error) => {
                sink.status.failed(resource, error);
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        backoff.reset();
        loop {
            match watch(&api, resource, &sink, &mut reflector, &mut version).await {
                Ended::Closed => {}
                Ended::Gone => {
                    tracing::info!(resource, "the watch's version is gone (410); listing again");
                    break;
                }
                Ended::Failed(error) => {
                    tracing::warn!(resource, %error, "watching the API server; retrying");
                    sink.status.failed(resource, error);
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }
}

/// How often a resource the API server does not serve is listed again.
const UNSERVED_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Lists every object into the reflector; the list's version, or none if
/// the API server does not serve the resource (its objects are gone then).
async fn list<K>(
    api: &Api<K>,
    resource: &'static str,
    sink: &Sink,
    reflector: &mut Reflector,
) -> Result<Option<String>, String>
where
    K: Translate + kube::Resource + Clone + DeserializeOwned + Debug,
{
    let listed = match api.list(&ListParams::default()).await {
        Ok(listed) => listed,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            reflector.init();
            sink.mirror.apply(reflector.init_done());
            sink.status.unserved(resource);
            tracing::info!(
                resource,
                "not served by the API server (is its CRD installed?); listing again in 30 s"
            );
            return Ok(None);
        }
        Err(e) => {
            return Err(format!(
                "list {resource}: {}",
                crate::store::error_chain(&e)
            ));
        }
    };
    reflector.init();
    for object in &listed.items {
        reflector.init_apply(id_of(object), object.entries(&sink.context));
    }
    sink.mirror.apply(reflector.init_done());
    sink.status.current(resource, reflector);
    tracing::info!(
        resource,
        objects = reflector.objects(),
        "listed from the API server"
    );
    Ok(Some(listed.metadata.resource_version.unwrap_or_default()))
}

/// Watches from `version`, applying events and moving `version` on.
async fn watch<K>(
    api: &Api<K>,
    resource: &'static str,
    sink: &Sink,
    reflector: &mut Reflector,
    version: &mut String,
) -> Ended
where
    K: Translate + kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let events = match api.watch(&WatchParams::default(), version).await {
        Ok(events) => events,
        Err(kube::Error::Api(status)) if status.code == 410 => return Ended::Gone,
        Err(e) => {
            return Ended::Failed(format!(
                "watch {resource}: {}",
                crate::store::error_chain(&e)
            ));
        }
    };
    // Accepted: from here every change after `version` arrives.
    sink.status.current(resource, reflector);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let ops = match event {
            Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                advance(version, &object);
                let id = id_of(&object);
                let translated = object.entries(&sink.context);
                if let Err(reason) = &translated {
                    tracing::warn!(resource, object = %id, %reason, "ignoring an object tweed cannot use");
                }
                reflector.apply(id, translated)
            }
            Ok(WatchEvent::Deleted(object)) => {
                advance(version, &object);
                reflector.delete(&id_of(&object))
            }
            Ok(WatchEvent::Bookmark(bookmark)) => {
                *version = bookmark.metadata.resource_version;
                continue;
            }
            Ok(WatchEvent::Error(status)) if status.code == 410 => return Ended::Gone,
            Ok(WatchEvent::Error(status)) => {
                return Ended::Failed(format!(
                    "watch {resource}: {} ({})",
                    status.message, status.code
                ));
            }
            Err(e) => {
                return Ended::Failed(format!(
                    "watch {resource}: {}",
                    crate::store::error_chain(&e)
                ));
            }
        };
        sink.mirror.apply(ops);
        sink.status.current(resource, reflector);
    }
    Ended::Closed
}

/// Moves `version` to `object`'s.
fn advance<K: kube::Resource>(version: &mut String, object: &K) {
    if let Some(v) = &object.meta().resource_version {
        v.clone_into(version);
    }
}

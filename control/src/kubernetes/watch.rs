//! One watch loop per resource: kube-runtime's watcher (list, then watch from
//! the list's resourceVersion, bookmarks, a relist on 410 Gone or a lost
//! connection, exponential backoff on errors) → the resource's
//! [`Reflector`] → the [`Mirror`]. The loops run until the daemon stops.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

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

/// Follows `api`'s objects into the mirror, reporting as `resource`.
pub async fn follow<K>(api: Api<K>, resource: &'static str, sink: Sink)
where
    K: Translate + kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    sink.status.expect(resource);
    let mut reflector = Reflector::default();
    let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {
                reflector.init();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                reflector.init_apply(id_of(&object), object.entries(&sink.context));
                continue;
            }
            Ok(Event::InitDone) => {
                let ops = reflector.init_done();
                tracing::info!(
                    resource,
                    objects = reflector.objects(),
                    "listed from the API server"
                );
                sink.mirror.apply(ops);
            }
            Ok(Event::Apply(object)) => {
                let id = id_of(&object);
                let translated = object.entries(&sink.context);
                if let Err(reason) = &translated {
                    tracing::warn!(resource, object = %id, %reason, "ignoring an object tweed cannot use");
                }
                sink.mirror.apply(reflector.apply(id, translated));
            }
            Ok(Event::Delete(object)) => sink.mirror.apply(reflector.delete(&id_of(&object))),
            Err(e) => {
                let chain = crate::store::error_chain(&e);
                tracing::warn!(resource, error = %chain, "watching the API server; retrying");
                sink.status.failed(resource, chain);
                continue;
            }
        }
        sink.status.current(resource, &reflector);
    }
}

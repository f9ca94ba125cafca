//! What a watch sends for a write: the event as a selective watch sees it,
//! and bookmarks. Pure; the HTTP layer streams the lines.
//!
//! As on the real server, a modification that moves an object into a
//! watch's selection arrives as ADDED, one that moves it out as DELETED.

use serde_json::{Value, json};

use super::resources::Resource;
use super::select::Filter;
use super::store::{Event, EventType};

/// The annotation a bookmark carries after the initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// The wire event (`{"type", "object"}`) `event` is for a watch selecting
/// with `filter`, or `None` when the watch does not see it.
pub fn view(event: &Event, filter: &Filter) -> Option<Value> {
    let now = filter.matches(&event.object);
    let before = event.old.as_ref().is_some_and(|o| filter.matches(o));
    let kind = match (event.kind, before, now) {
        (EventType::Modified, true, true) => EventType::Modified,
        (EventType::Modified, false, true) => EventType::Added,
        (EventType::Modified, true, false) => EventType::Deleted,
        (EventType::Modified, false, false) => return None,
        (other, _, true) => other,
        (_, _, false) => return None,
    };
    Some(json!({"type": kind.as_str(), "object": event.object}))
}

/// An ADDED event for an object that exists when the watch starts.
pub fn added(object: &Value) -> Value {
    json!({"type": "ADDED", "object": object})
}

/// A BOOKMARK at `rv`: kind, apiVersion and metadata with only the version
/// and the initial-events-end annotation.
pub fn bookmark(r: &Resource, rv: u64) -> Value {
    json!({
        "type": "BOOKMARK",
        "object": {
            "kind": r.kind,
            "apiVersion": r.api_version(),
            "metadata": {
                "resourceVersion": rv.to_string(),
                "annotations": {INITIAL_EVENTS_END: "true"}
            }
        }
    })
}

/// The ERROR event that ends a watch, e.g. 410 Expired.
pub fn error(status: Value) -> Value {
    json!({"type": "ERROR", "object": status})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubeapi::select::LabelSelector;

    fn obj(app: &str) -> Value {
        json!({"metadata": {"name": "a", "namespace": "d", "labels": {"app": app}}})
    }

    fn modified(from: &str, to: &str) -> Event {
        Event {
            rv: 9,
            kind: EventType::Modified,
            old: Some(obj(from)),
            object: obj(to),
        }
    }

    #[test]
    fn selection_changes_become_added_and_deleted() {
        let f = Filter {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Filter::default()
        };
        let ty = |e: &Event| view(e, &f).map(|v| v["type"].as_str().unwrap().to_owned());
        assert_eq!(ty(&modified("web", "web")).as_deref(), Some("MODIFIED"));
        assert_eq!(ty(&modified("db", "web")).as_deref(), Some("ADDED"));
        assert_eq!(ty(&modified("web", "db")).as_deref(), Some("DELETED"));
        assert_eq!(ty(&modified("db", "db")), None);
        let deleted = Event {
            rv: 10,
            kind: EventType::Deleted,
            old: None,
            object: obj("web"),
        };
        assert_eq!(ty(&deleted).as_deref(), Some("DELETED"));
    }
}

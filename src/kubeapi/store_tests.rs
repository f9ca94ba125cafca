//! The store's semantics: server-set fields, versions, conflicts, status
//! subresource, events and compaction, namespace deletion.

use serde_json::{Value, json};

use super::resources::INITIAL_NAMESPACES;
use super::select::{Filter, LabelSelector};
use super::stamp::Stamp;
use super::store::{EventType, NAMESPACE_NAME_LABEL, Part, Store, namespaces};

fn stamp() -> Stamp {
    Stamp {
        uid: "u".into(),
        now: "2026-12-05T00:00:00Z".into(),
        suffix: "abcde".into(),
    }
}

fn pods() -> usize {
    super::resources::find("", "v1", "pods").unwrap()
}

fn pod(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}}, "spec": {"nodeName": "n1"}})
}

#[test]
fn create_sets_server_fields_and_bumps_the_version() {
    let mut s = Store::new(stamp);
    let start = s.rv();
    assert_eq!(start, INITIAL_NAMESPACES.len() as u64);
    let p = s
        .create(pods(), Some("default"), pod("a", "web"), &stamp())
        .unwrap();
    assert_eq!(p["metadata"]["resourceVersion"], (start + 1).to_string());
    assert_eq!(p["metadata"]["uid"], "u");
    assert_eq!(p["metadata"]["namespace"], "default");
    assert_eq!(p["metadata"]["generation"], 1);
    let ns = s.get(namespaces(), None, "kube-system").unwrap();
    assert_eq!(
        ns["metadata"]["labels"][NAMESPACE_NAME_LABEL],
        "kube-system"
    );
    let e = s
        .create(pods(), Some("default"), pod("a", "web"), &stamp())
        .unwrap_err();
    assert_eq!((e.code, e.reason), (409, "AlreadyExists"));
    let e = s
        .create(pods(), Some("nope"), pod("b", "web"), &stamp())
        .unwrap_err();
    assert_eq!((e.code, e.reason), (404, "NotFound"));
    let e = s
        .create(pods(), Some("default"), json!({"metadata": {}}), &stamp())
        .unwrap_err();
    assert_eq!(e.code, 422);
    let g = s
        .create(
            pods(),
            Some("default"),
            json!({"metadata": {"generateName": "x-"}}),
            &stamp(),
        )
        .unwrap();
    assert_eq!(g["metadata"]["name"], "x-abcde");
    let e = s
        .create(pods(), Some("default"), json!({"kind": "Node"}), &stamp())
        .unwrap_err();
    assert_eq!(e.code, 400);
}

#[test]
fn replace_checks_the_version_and_keeps_status() {
    let mut s = Store::new(stamp);
    let p = s
        .create(pods(), Some("default"), pod("a", "web"), &stamp())
        .unwrap();
    let mut stale = p.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let e = s
        .replace(pods(), Some("default"), "a", stale, Part::Main)
        .unwrap_err();
    assert_eq!((e.code, e.reason), (409, "Conflict"));
    let st = s
        .patch(
            pods(),
            Some("default"),
            "a",
            &json!({"status": {"podIP": "10.0.0.5"}}),
            Part::Status,
        )
        .unwrap();
    assert_eq!(st["status"]["podIP"], "10.0.0.5");
    assert_eq!(st["metadata"]["generation"], 1);
    // A main-resource write does not touch status; a spec change bumps generation.
    let mut next = st.clone();
    next["status"] = json!({});
    next["spec"]["nodeName"] = json!("n2");
    let m = s
        .replace(pods(), Some("default"), "a", next, Part::Main)
        .unwrap();
    assert_eq!(m["status"]["podIP"], "10.0.0.5");
    assert_eq!(m["metadata"]["generation"], 2);
    // A write that changes nothing makes no version.
    let rv = s.rv();
    let same = s
        .replace(pods(), Some("default"), "a", m.clone(), Part::Main)
        .unwrap();
    assert_eq!((same, s.rv()), (m, rv));
}

#[test]
fn events_replay_writes_and_expire_at_compaction() {
    let mut s = Store::new(stamp);
    let start = s.rv();
    s.create(pods(), Some("default"), pod("a", "web"), &stamp())
        .unwrap();
    s.patch(
        pods(),
        Some("default"),
        "a",
        &json!({"metadata": {"labels": {"app": "db"}}}),
        Part::Main,
    )
    .unwrap();
    s.delete(pods(), Some("default"), "a").unwrap();
    let kinds: Vec<_> = s
        .events_after(pods(), start)
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [EventType::Added, EventType::Modified, EventType::Deleted]
    );
    assert_eq!(s.events_after(pods(), start + 2).unwrap().len(), 1);
    let last = s.rv();
    let point = s.compact();
    assert_eq!(point, last + 1);
    assert_eq!(s.events_after(pods(), last).unwrap_err().code, 410);
    assert!(s.events_after(pods(), point).unwrap().is_empty());
}

#[test]
fn deleting_a_namespace_deletes_its_objects() {
    let mut s = Store::new(stamp);
    s.create(
        namespaces(),
        None,
        json!({"metadata": {"name": "shop"}}),
        &stamp(),
    )
    .unwrap();
    s.create(pods(), Some("shop"), pod("a", "web"), &stamp())
        .unwrap();
    s.create(pods(), Some("default"), pod("b", "web"), &stamp())
        .unwrap();
    s.delete(namespaces(), None, "shop").unwrap();
    let filter = Filter {
        labels: LabelSelector::parse("app=web").unwrap(),
        ..Filter::default()
    };
    let (items, rv) = s.list(pods(), &filter);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "b");
    assert_eq!(rv, s.rv());
}

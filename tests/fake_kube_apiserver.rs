//! The fake Kubernetes API server (`tweed_suite::kubeapi`) against two real
//! clients: kube-rs's watcher (what the daemon uses) and kubectl.
//!
//! Each test runs the fake in its own namespace (prefix `kapi-*`) on
//! 127.0.0.1:6443 there; the kube-rs client runs on a thread inside that
//! namespace, kubectl through `ip netns exec`. The namespace, the server and
//! its directory go with their guards, also on failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};
use tweed_suite::kubeapi::process::FakeApiServer;
use tweed_suite::netns::Netns;
use tweed_suite::privileged::require_root;
use tweed_sys::netns::run_in_netns;

/// The port the fake listens on inside its namespace.
const PORT: u16 = 6443;
/// How long a client may take to see a change (generous: only that it
/// happens is checked).
const CONVERGE: Duration = Duration::from_secs(30);

const PODS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: shop, labels: {app: db}}
spec: {nodeName: n2, containers: [{name: c, image: busybox}]}
"#;

fn pod(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop, labels: {{app: {app}}}}}\n\
         spec: {{containers: [{{name: c, image: busybox}}]}}\n"
    )
}

fn start(prefix: &str) -> (Netns, Arc<FakeApiServer>) {
    let ns = Netns::new(prefix, "api");
    let api = FakeApiServer::start(&ns, IpAddr::V4(Ipv4Addr::LOCALHOST), PORT, prefix);
    (ns, Arc::new(api))
}

/// Name → `app` label of the pods a reflector holds.
fn pods_seen(reader: &reflector::Store<Pod>) -> BTreeMap<String, String> {
    reader
        .state()
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let app = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app").cloned())
                .unwrap_or_default();
            (name, app)
        })
        .collect()
}

fn want(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Waits (async) until the reflector holds exactly `expect`.
async fn converge(reader: &reflector::Store<Pod>, expect: &BTreeMap<String, String>, step: &str) {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let seen = pods_seen(reader);
        if &seen == expect {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{step}: the watcher holds {seen:?}, expected {expect:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (async) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `scenario` with a kube-rs client on a current-thread runtime inside
/// `ns`, where the fake listens.
fn run_client<F>(
    ns: &Netns,
    api: &Arc<FakeApiServer>,
    scenario: impl FnOnce(Arc<FakeApiServer>) -> F + Send + 'static,
) where
    F: std::future::Future<Output = ()>,
{
    let fake = Arc::clone(api);
    run_in_netns(Path::new(&ns.path()), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(scenario(fake))
    })
    .expect("run the client in the test netns");
}

#[test]
fn kube_rs_watcher_lists_watches_relists_after_410_and_recovers() {
    if !require_root() {
        return;
    }
    let (ns, api) = start("kapi-kube");
    api.apply(PODS);
    run_client(&ns, &api, |fake| async move { watch_scenario(&fake).await });
}

async fn watch_scenario(api: &FakeApiServer) {
    let config = kube::Config::new(api.url().parse().expect("the fake's URL"));
    let client = Client::try_from(config).expect("a kube client");
    let pods: Api<Pod> = Api::all(client.clone());

    // A plain list sees what was applied, with server-set metadata.
    let list = pods.list(&Default::default()).await.expect("list pods");
    assert_eq!(list.items.len(), 2);
    let a = &list.items[0].metadata;
    assert!(a.uid.is_some() && a.creation_timestamp.is_some() && a.resource_version.is_some());
    assert!(list.metadata.resource_version.is_some());

    // The watcher, as the daemon runs it, recording what it was told.
    let (reader, writer) = reflector::store();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = events.clone();
    let stream = reflector(writer, watcher(pods, watcher::Config::default())).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let text = match event {
                Ok(watcher::Event::Apply(p)) => {
                    format!("apply {}", p.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::Delete(p)) => {
                    format!("delete {}", p.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::Init) => "init".to_owned(),
                Ok(watcher::Event::InitApply(p)) => {
                    format!("init-apply {}", p.metadata.name.unwrap_or_default())
                }
                Ok(watcher::Event::InitDone) => "init-done".to_owned(),
                Err(e) => format!("error {e}"),
            };
            log.lock().unwrap().push(text);
        }
    });
    let saw = |what: &str| events.lock().unwrap().iter().any(|e| e == what);
    let count = |what: &str| events.lock().unwrap().iter().filter(|e| *e == what).count();

    converge(&reader, &want(&[("a", "web"), ("b", "db")]), "initial list").await;
    until("the watch is open", || api.stats().watches_open >= 1).await;

    // ADDED, MODIFIED, DELETED.
    api.apply(&pod("c", "web"));
    api.patch_merge(
        "pods",
        "shop",
        "a",
        &json!({"metadata": {"labels": {"app": "api"}}}),
    );
    assert!(api.delete("pods", "shop", "b"));
    converge(
        &reader,
        &want(&[("a", "api"), ("c", "web")]),
        "after create, patch, delete",
    )
    .await;
    until("apply c, apply a, delete b seen", || {
        saw("apply c") && saw("apply a") && saw("delete b")
    })
    .await;
    let stats = api.stats();
    assert_eq!(
        stats.lists_of("pods"),
        2,
        "one list above, one by the watcher: {stats:?}"
    );
    assert_eq!(stats.expired_of("pods"), 0, "{stats:?}");

    // Compacted (which cuts the watches): resuming gets 410, so the watcher
    // relists, and sees what changed meanwhile.
    api.compact();
    api.apply(&pod("d", "db"));
    api.drop_watches();
    until("a 410 and a relist", || {
        let s = api.stats();
        s.expired_of("pods") >= 1 && s.lists_of("pods") >= 3
    })
    .await;
    converge(
        &reader,
        &want(&[("a", "api"), ("c", "web"), ("d", "db")]),
        "after 410",
    )
    .await;
    until("a second init", || count("init") >= 2).await;

    // Cut without compaction: the watcher resumes from its version, no relist.
    until("the watch is open again", || api.stats().watches_open >= 1).await;
    let before = api.stats();
    assert_eq!(api.drop_watches(), 1);
    api.apply(&pod("e", "web"));
    converge(
        &reader,
        &want(&[("a", "api"), ("c", "web"), ("d", "db"), ("e", "web")]),
        "after a drop",
    )
    .await;
    until("a new watch", || {
        api.stats().watches_of("pods") > before.watches_of("pods")
    })
    .await;
    assert_eq!(
        api.stats().lists_of("pods"),
        before.lists_of("pods"),
        "a drop alone must not relist"
    );

    // Down for a while: changes made meanwhile arrive after.
    let before = api.stats();
    api.down_for(Duration::from_secs(3));
    assert!(api.delete("pods", "shop", "c"));
    api.apply(&pod("f", "db"));
    converge(
        &reader,
        &want(&[("a", "api"), ("d", "db"), ("e", "web"), ("f", "db")]),
        "after down",
    )
    .await;
    until("a watch after down", || {
        api.stats().watches_of("pods") > before.watches_of("pods")
    })
    .await;
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("error")),
        "the outage shows as errors"
    );

    task.abort();
}

#[test]
fn kube_rs_streaming_list_watcher_gets_initial_events_without_listing() {
    if !require_root() {
        return;
    }
    let (ns, api) = start("kapi-stream");
    api.apply(PODS);
    run_client(
        &ns,
        &api,
        |fake| async move { streaming_scenario(&fake).await },
    );
}

/// `sendInitialEvents=true`: the initial state comes as ADDED events ended
/// by a bookmark, and after a 410 the watcher starts over the same way.
async fn streaming_scenario(api: &FakeApiServer) {
    let config = kube::Config::new(api.url().parse().expect("the fake's URL"));
    let pods: Api<Pod> = Api::all(Client::try_from(config).expect("a kube client"));
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(pods, watcher::Config::default().streaming_lists()),
    )
    .default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    converge(
        &reader,
        &want(&[("a", "web"), ("b", "db")]),
        "initial events",
    )
    .await;
    api.apply(&pod("c", "web"));
    assert!(api.delete("pods", "shop", "a"));
    converge(
        &reader,
        &want(&[("b", "db"), ("c", "web")]),
        "after create, delete",
    )
    .await;
    api.compact();
    api.apply(&pod("d", "db"));
    until("a 410", || api.stats().expired_of("pods") >= 1).await;
    converge(
        &reader,
        &want(&[("b", "db"), ("c", "web"), ("d", "db")]),
        "after 410",
    )
    .await;
    let stats = api.stats();
    assert_eq!(
        stats.lists_of("pods"),
        0,
        "a streaming list never lists: {stats:?}"
    );
    task.abort();
}

/// Runs kubectl, panicking with its output unless it succeeds.
fn kubectl(api: &FakeApiServer, args: &[&str]) -> String {
    let out = api.kubectl(args);
    assert!(out.success(), "kubectl {}: {out}", args.join(" "));
    out.stdout
}

#[test]
fn kubectl_applies_gets_labels_and_deletes() {
    if !require_root() {
        return;
    }
    let (_ns, api) = start("kapi-ctl");
    // In the server's directory, which goes with its guard.
    let manifest = api.dir().join("shop.yaml");
    std::fs::write(
        &manifest,
        format!(
            "{PODS}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {{name: deny, namespace: shop}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n\
             ---\napiVersion: tweed.dev/v1\nkind: GlobalPolicy\nmetadata: {{name: base}}\nspec: {{order: 10}}\n"
        ),
    )
    .unwrap();
    let file = manifest.to_str().unwrap();

    kubectl(&api, &["apply", "--validate=false", "-f", file]);
    let ns = api.get("namespaces", "", "shop").expect("namespace shop");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "shop"
    );
    assert!(api.get("networkpolicies", "shop", "deny").is_some());
    assert!(api.get("globalpolicies", "", "base").is_some());

    let listed: Value =
        serde_json::from_str(&kubectl(&api, &["get", "pods", "-n", "shop", "-o", "json"])).unwrap();
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let selected = kubectl(
        &api,
        &["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"],
    );
    assert_eq!(selected, "pod/a\n");

    kubectl(&api, &["label", "pod", "a", "-n", "shop", "tier=front"]);
    let a = api.get("pods", "shop", "a").unwrap();
    assert_eq!(
        a["metadata"]["labels"],
        json!({"app": "web", "tier": "front"})
    );
    kubectl(
        &api,
        &[
            "label",
            "--overwrite",
            "pod",
            "a",
            "-n",
            "shop",
            "app=api",
            "tier-",
        ],
    );
    let a = api.get("pods", "shop", "a").unwrap();
    assert_eq!(a["metadata"]["labels"], json!({"app": "api"}));

    // Applying again is a patch of what exists.
    kubectl(&api, &["apply", "--validate=false", "-f", file]);
    kubectl(&api, &["delete", "pod", "b", "-n", "shop"]);
    assert!(api.get("pods", "shop", "b").is_none());
    // The namespace goes first and takes its objects with it.
    kubectl(&api, &["delete", "--ignore-not-found", "-f", file]);
    assert!(api.get("namespaces", "", "shop").is_none());
    assert!(api.get("globalpolicies", "", "base").is_none());
}

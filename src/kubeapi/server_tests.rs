//! The server's answers end to end through [`Server::handle`], with the
//! response bytes parsed back: what a client on either socket gets.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::client::parse_response;
use super::server::{Config, ConnHandle, Server, Sock};
use super::wire::Request;

fn server() -> std::sync::Arc<Server> {
    Server::new(Config {
        bookmark_interval: Duration::from_millis(100),
        advertise: "127.0.0.1:6443".into(),
    })
}

/// A registered connection (its socket is only there to be shut down).
fn conn(server: &Server, tcp: bool) -> ConnHandle {
    let (a, _b) = UnixStream::pair().unwrap();
    server.register(Sock::Unix(a), tcp).unwrap()
}

fn call(
    server: &Server,
    conn: &ConnHandle,
    method: &str,
    target: &str,
    ct: &str,
    body: Value,
) -> (u16, String) {
    let req = Request {
        method: method.into(),
        target: target.into(),
        headers: vec![("content-type".into(), ct.into())],
        body: if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        },
        close: false,
    };
    let mut out = Vec::new();
    super::dispatch::handle(server, &req, conn, &mut out).unwrap();
    let (code, body) = parse_response(&out).unwrap();
    (code, String::from_utf8(body).unwrap())
}

fn json_call(
    server: &Server,
    conn: &ConnHandle,
    method: &str,
    target: &str,
    body: Value,
) -> (u16, Value) {
    let (code, text) = call(server, conn, method, target, "application/json", body);
    (code, serde_json::from_str(&text).unwrap())
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn create_pod(server: &Server, conn: &ConnHandle, name: &str, app: &str) -> Value {
    let (code, pod) = json_call(
        server,
        conn,
        "POST",
        PODS,
        json!({"metadata": {"name": name, "labels": {"app": app}}}),
    );
    assert_eq!(code, 201, "{pod}");
    pod
}

#[test]
fn list_selects_and_strips_kind() {
    let s = server();
    let c = conn(&s, true);
    create_pod(&s, &c, "a", "web");
    create_pod(&s, &c, "b", "db");
    let (code, list) = json_call(
        &s,
        &c,
        "GET",
        "/api/v1/pods?labelSelector=app%3Dweb",
        Value::Null,
    );
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("kind").is_none());
    assert_eq!(
        list["metadata"]["resourceVersion"],
        s.store().rv().to_string()
    );
    let (code, status) = json_call(&s, &c, "GET", &format!("{PODS}/nope"), Value::Null);
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
}

#[test]
fn watch_from_a_compacted_version_is_one_410_event() {
    let s = server();
    let c = conn(&s, true);
    let rv = create_pod(&s, &c, "a", "web")["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    s.compact();
    let (code, body) = call(
        &s,
        &c,
        "GET",
        &format!("{PODS}?watch=1&resourceVersion={rv}"),
        "",
        Value::Null,
    );
    assert_eq!(code, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");
    assert_eq!(s.stats().expired_of("pods"), 1);
}

#[test]
fn watch_without_version_starts_with_added_and_bookmarks() {
    let s = server();
    let c = conn(&s, true);
    create_pod(&s, &c, "a", "web");
    let target = format!(
        "{PODS}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&timeoutSeconds=1"
    );
    let (code, body) = call(&s, &c, "GET", &target, "", Value::Null);
    assert_eq!(code, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[0]["object"]["kind"], "Pod");
    assert_eq!(lines[1]["type"], "BOOKMARK");
    assert_eq!(
        lines[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert!(lines[2..].iter().all(|l| l["type"] == "BOOKMARK"));
    assert_eq!(s.stats().watches_open, 0);
}

#[test]
fn patches_by_content_type() {
    let s = server();
    let c = conn(&s, true);
    create_pod(&s, &c, "a", "web");
    let target = format!("{PODS}/a");
    let strategic =
        json!({"metadata": {"labels": {"tier": "x"}}, "$setElementOrder/containers": []});
    let (code, body) = call(
        &s,
        &c,
        "PATCH",
        &target,
        "application/strategic-merge-patch+json",
        strategic,
    );
    assert_eq!(code, 200, "{body}");
    let pod: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"app": "web", "tier": "x"})
    );
    let status = json!({"status": {"podIP": "10.1.0.4"}});
    let (code, _) = call(
        &s,
        &c,
        "PATCH",
        &format!("{target}/status"),
        "application/merge-patch+json",
        status,
    );
    assert_eq!(code, 200);
    let (_, pod) = json_call(&s, &c, "GET", &target, Value::Null);
    assert_eq!(pod["status"]["podIP"], "10.1.0.4");
    let (code, _) = call(&s, &c, "PATCH", &target, "application/xml", json!({}));
    assert_eq!(code, 415);
    let stale = json!({"metadata": {"name": "a", "resourceVersion": "1"}});
    let (code, status) = json_call(&s, &c, "PUT", &target, stale);
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
}

#[test]
fn admin_routes_only_on_the_unix_socket() {
    let s = server();
    let tcp = conn(&s, true);
    let unix = conn(&s, false);
    assert_eq!(call(&s, &tcp, "GET", "/fake/stats", "", Value::Null).0, 404);
    let (code, stats) = json_call(&s, &unix, "GET", "/fake/stats", Value::Null);
    assert_eq!(code, 200);
    assert_eq!(stats["resource_version"], 4);
    assert_eq!(
        json_call(&s, &unix, "POST", "/fake/down?seconds=0", Value::Null).0,
        200
    );
    assert_eq!(
        json_call(&s, &unix, "POST", "/fake/down", Value::Null).0,
        400
    );
    let (code, api) = json_call(&s, &tcp, "GET", "/api", Value::Null);
    assert_eq!((code, api["versions"][0].as_str()), (200, Some("v1")));
}

#[test]
fn drop_watches_cuts_a_running_watch_mid_stream() {
    use std::io::Read;
    let s = server();
    let (a, mut b) = UnixStream::pair().unwrap();
    let c = s
        .register(Sock::Unix(a.try_clone().unwrap()), false)
        .unwrap();
    let watcher = {
        let s = s.clone();
        std::thread::spawn(move || {
            let req = Request {
                method: "GET".into(),
                target: format!("{PODS}?watch=1"),
                headers: Vec::new(),
                body: Vec::new(),
                close: false,
            };
            let mut out = a;
            super::dispatch::handle(&s, &req, &c, &mut out).map(|_| ())
        })
    };
    // The watch is open once the server counts it.
    assert!(crate::poll::wait(Duration::from_secs(10), || s
        .stats()
        .watches_open
        == 1));
    assert_eq!(s.drop_watches(), 1);
    assert!(
        watcher.join().unwrap().is_err(),
        "a cut watch ends in an error"
    );
    let mut raw = Vec::new();
    b.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no final chunk: the stream was cut, not ended"
    );
    assert_eq!(s.stats().watches_open, 0);
}

#[test]
fn down_refuses_tcp_connections_but_not_the_unix_socket() {
    let s = server();
    let tcp = conn(&s, true);
    assert_eq!(s.go_down(Duration::from_secs(3600)), 1);
    assert!(tcp.aborted());
    let (a, _b) = UnixStream::pair().unwrap();
    assert!(
        s.register(Sock::Unix(a), true).is_none(),
        "no TCP client while down"
    );
    let unix = conn(&s, false);
    assert!(!unix.aborted());
    assert!(s.down_until().is_some());
}

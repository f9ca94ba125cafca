//! The config API over a real Unix socket: a fake handler records what
//! reaches it; requests go through `Client` and raw lines.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tweed_api::dataplane::proto::{Empty, NameArgs, PortsReply, RouteSpec, RouteVia, VERSION};
use tweed_api::dataplane::{Client, ClientError, Request, ResponseBody};
use tweed_api::line_client::LineClient;
use tweed_api::{ApiError, ErrorKind};
use tweed_dataplane::api::limits::Limits;
use tweed_dataplane::api::{Handler, LIMITS, MAX_LINE, ServerHandle, serve, serve_with};

/// Records every request that reaches it.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Request>>,
}

impl Recorder {
    fn calls(&self) -> Vec<Request> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Handler for Recorder {
    fn handle(&self, request: Request) -> Result<ResponseBody, ApiError> {
        self.calls.lock().expect("lock").push(request.clone());
        match request {
            Request::PortList(_) => Ok(ResponseBody::Ports(PortsReply { ports: vec![] })),
            Request::PeerRemove(args) if args.name == "ghost" => {
                Err(ApiError::not_found("peer ghost does not exist"))
            }
            Request::PeerRemove(args) if args.name == "panic" => panic!("handler bug"),
            _ => Ok(ResponseBody::empty()),
        }
    }
}

/// A server on a fresh socket path, removed with its directory on drop.
struct Fixture {
    recorder: Arc<Recorder>,
    server: Option<ServerHandle>,
    dir: PathBuf,
    path: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(LIMITS)
    }

    /// A server with other bounds.
    fn with(limits: Limits) -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tweed-api-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = dir.join("api.sock");
        let recorder = Arc::new(Recorder::default());
        let server = serve_with(
            &path,
            recorder.clone(),
            Arc::new(AtomicBool::new(false)),
            limits,
        )
        .expect("serve");
        Fixture {
            recorder,
            server: Some(server),
            dir,
            path,
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.path).expect("connect")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The error kind of a raw reply line, or `None` for an `ok` reply.
fn kind_of(reply: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(reply).expect("reply is JSON");
    assert_eq!(value["version"], VERSION, "{reply}");
    if value.get("ok").is_some() {
        return None;
    }
    Some(
        value["error"]["kind"]
            .as_str()
            .expect("error kind")
            .to_owned(),
    )
}

#[test]
fn a_valid_request_reaches_the_handler() {
    let fixture = Fixture::new();
    let mut client = fixture.client();
    let reply = client.call(Request::PortList(Empty {})).expect("call");
    assert_eq!(reply, ResponseBody::Ports(PortsReply { ports: vec![] }));
    let route = Request::RouteSet(RouteSpec {
        prefix: "0.0.0.0/0".parse().expect("cidr"),
        via: RouteVia::Host,
    });
    assert_eq!(
        client.call(route.clone()).expect("call"),
        ResponseBody::empty()
    );
    assert_eq!(
        fixture.recorder.calls(),
        vec![Request::PortList(Empty {}), route]
    );
}

#[test]
fn bad_requests_get_their_error_kind_and_never_reach_the_handler() {
    let fixture = Fixture::new();
    let mut client = fixture.client();
    let cases = [
        ("{\"version\":1,\"request\":", "bad_json"),
        ("not json at all", "bad_json"),
        (
            r#"{"version":2,"request":{"port_list":{}}}"#,
            "unsupported_version",
        ),
        (
            r#"{"version":1,"request":{"port_list":{"all":true}}}"#,
            "invalid",
        ),
        (
            r#"{"version":1,"request":{"port_list":{}},"x":0}"#,
            "invalid",
        ),
        (r#"{"version":1,"request":{"fly":{}}}"#, "invalid"),
        (
            r#"{"version":1,"request":{"route_set":{"prefix":"10.0.0.0/33","via":"host"}}}"#,
            "invalid",
        ),
        (
            r#"{"version":1,"request":{"route_set":{"prefix":"10.0.0.1/8","via":"host"}}}"#,
            "invalid",
        ),
        (
            r#"{"version":1,"request":{"peer_set":{"name":"n2","subnets":["10.244.2.0/24"],"underlay_ip":"10.0.0.2","vtep_mac":"02:00:00:00:00:0x","backend":"vxlan"}}}"#,
            "invalid",
        ),
        (
            r#"{"version":1,"request":{"port_add":{"name":"a/b","netns":"/run/netns/b","ifname":"eth0"}}}"#,
            "invalid",
        ),
    ];
    for (line, kind) in cases {
        let reply = client.call_raw(line).expect(line);
        assert_eq!(kind_of(&reply).as_deref(), Some(kind), "{line} -> {reply}");
    }
    // Invalid bytes are bad JSON too, and the connection still works after.
    let mut raw = UnixStream::connect(&fixture.path).expect("connect");
    raw.write_all(b"\xff\xfe\n").expect("write");
    let mut reply = vec![0u8; 512];
    let n = raw.read(&mut reply).expect("read");
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert_eq!(kind_of(reply.trim_end()).as_deref(), Some("bad_json"));

    assert!(fixture.recorder.calls().is_empty());
    // The connection is still usable after errors.
    client.call(Request::PortList(Empty {})).expect("call");
    assert_eq!(fixture.recorder.calls().len(), 1);
}

#[test]
fn handler_errors_and_panics_are_replies() {
    let fixture = Fixture::new();
    let mut client = fixture.client();
    let ghost = Request::PeerRemove(NameArgs {
        name: "ghost".into(),
    });
    match client.call(ghost) {
        Err(ClientError::Api(e)) => assert_eq!(e.kind, ErrorKind::NotFound),
        other => panic!("expected not_found, got {other:?}"),
    }
    let panic = Request::PeerRemove(NameArgs {
        name: "panic".into(),
    });
    match client.call(panic) {
        Err(ClientError::Api(e)) => assert_eq!(e.kind, ErrorKind::Io),
        other => panic!("expected io, got {other:?}"),
    }
    client
        .call(Request::PortList(Empty {}))
        .expect("still serving");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let fixture = Fixture::new();
    let mut stream = UnixStream::connect(&fixture.path).expect("connect");
    let lines = [
        r#"{"version":1,"request":{"port_list":{}}}"#,
        "garbage",
        r#"{"version":1,"request":{"peer_remove":{"name":"ghost"}}}"#,
        "",
        r#"{"version":9,"request":{"port_list":{}}}"#,
        r#"{"version":1,"request":{"stats":{}}}"#,
    ];
    let mut batch = lines.join("\n");
    batch.push('\n');
    stream.write_all(batch.as_bytes()).expect("write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let mut replies = String::new();
    stream
        .read_to_string(&mut replies)
        .expect("read until close");
    let kinds: Vec<_> = replies.lines().map(kind_of).collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some("bad_json".to_owned()),
            Some("not_found".to_owned()),
            Some("unsupported_version".to_owned()),
            None,
        ]
    );
    let ops: Vec<_> = fixture
        .recorder
        .calls()
        .iter()
        .map(|r| r.op().name())
        .collect();
    assert_eq!(ops, ["port_list", "peer_remove", "stats"]);
}

#[test]
fn the_socket_is_private_and_removed_on_drop() {
    let mut fixture = Fixture::new();
    let mode = std::fs::metadata(&fixture.path)
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(fixture.server.take());
    assert!(!fixture.path.exists(), "socket file left behind");
    let err = Client::connect(&fixture.path).expect_err("nobody listening");
    assert!(err.to_string().contains("api.sock"), "{err}");
}

#[test]
fn a_stale_socket_is_replaced_but_a_live_one_is_not() {
    let fixture = Fixture::new();
    let second = serve(
        &fixture.path,
        Arc::new(Recorder::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("a server is listening");
    assert_eq!(second.kind(), std::io::ErrorKind::AddrInUse);

    let stale = fixture.dir.join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    // Another test of this process may be forking a child right now, which
    // holds a copy of the listener until it execs (CLOEXEC closes it only
    // then): wait until nothing accepts on the socket, so it really is stale.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while UnixStream::connect(&stale).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped listener still accepts"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let server = serve(
        &stale,
        Arc::new(Recorder::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .expect("stale socket replaced");
    Client::connect(&stale)
        .expect("connect")
        .call(Request::PortList(Empty {}))
        .expect("served");
    drop(server);

    let plain = fixture.dir.join("plain");
    std::fs::write(&plain, "x").expect("write");
    let err = serve(
        &plain,
        Arc::new(Recorder::default()),
        Arc::new(AtomicBool::new(false)),
    )
    .expect_err("not a socket");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn an_oversized_line_is_refused_and_the_connection_closed() {
    let fixture = Fixture::new();
    let stream = UnixStream::connect(&fixture.path).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..(MAX_LINE >> 20) + 2 {
            if writer.write_all(&chunk).is_err() {
                return; // the server hung up, as it should
            }
        }
    });
    let mut reader = std::io::BufReader::new(stream);
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut reader, &mut reply).expect("read reply");
    assert_eq!(
        kind_of(reply.trim_end()).as_deref(),
        Some("invalid"),
        "{reply}"
    );
    assert!(reply.contains("longer than"), "{reply}");
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(rest.is_empty(), "nothing after the refusal");
    sender.join().expect("sender");
    assert!(fixture.recorder.calls().is_empty());
}

/// Runs a tiny Python client as uid/gid 65534 (nobody): sends two requests
/// on one connection, prints every reply line, then `EOF` once the server
/// closes.
fn as_nobody(path: &Path) -> std::process::Output {
    const SCRIPT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT", e.errno)
    sys.exit(0)
s.sendall(b'{"version":1,"request":{"port_list":{}}}\n{"version":1,"request":{"stats":{}}}\n')
f = s.makefile("rb")
for line in f:
    print(line.decode().rstrip("\n"))
print("EOF")
"#;
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .arg(path)
        .output()
        .expect("run setpriv")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn a_connection_from_another_uid_is_forbidden() {
    if !running_as_root() {
        eprintln!("skipped: needs root to run a client as another uid");
        return;
    }
    let fixture = Fixture::new();

    // Mode 0600 keeps other users out at connect time...
    let output = as_nobody(&fixture.path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(&format!("CONNECT {}", libc::EACCES)),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // ...and the uid check refuses them if the mode is loosened.
    std::fs::set_permissions(&fixture.path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let output = as_nobody(&fixture.path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one refusal then EOF: {stdout}");
    assert_eq!(kind_of(lines[0]).as_deref(), Some("forbidden"));
    assert!(lines[0].contains("uid 65534"), "{}", lines[0]);
    assert_eq!(lines[1], "EOF");
    assert!(fixture.recorder.calls().is_empty());

    // Root is still served.
    fixture
        .client()
        .call(Request::PortList(Empty {}))
        .expect("root is allowed");
}

/// Small bounds, for the tests of the bounds.
fn small(max_connections: usize, buffer_budget: usize) -> Limits {
    Limits {
        max_line: 8 << 20,
        max_connections,
        request_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        buffer_budget,
    }
}

/// The error message of a raw reply line.
fn message_of(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply).expect("reply is JSON");
    value["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const PORT_LIST: &str = r#"{"version":1,"request":{"port_list":{}}}"#;

#[test]
fn connections_over_the_cap_are_refused_with_a_clear_error() {
    let fixture = Fixture::with(small(2, 1 << 20));
    let mut first = LineClient::connect(&fixture.path).expect("connect");
    let mut second = LineClient::connect(&fixture.path).expect("connect");
    // Both are served (a reply proves the server took them).
    for client in [&mut first, &mut second] {
        let reply = client.call_raw(PORT_LIST).expect("reply");
        assert_eq!(kind_of(&reply), None, "{reply}");
    }
    let mut third = LineClient::connect(&fixture.path).expect("connect");
    let reply = third.call_raw(PORT_LIST).expect("the refusal");
    assert_eq!(kind_of(&reply).as_deref(), Some("io"), "{reply}");
    assert!(
        message_of(&reply).contains("at most 2 connections"),
        "{reply}"
    );
    drop(first);
    // The freed place is taken as soon as the server sees the close.
    let mut answered = None;
    let ok = poll(|| {
        let Ok(mut client) = LineClient::connect(&fixture.path) else {
            return false;
        };
        answered = client.call_raw(PORT_LIST).ok();
        answered.as_deref().is_some_and(|r| kind_of(r).is_none())
    });
    assert!(
        ok,
        "a new connection is served once one closed: {answered:?}"
    );
}

#[test]
fn a_request_that_never_ends_is_answered_and_closed() {
    let fixture = Fixture::with(small(4, 1 << 20));
    let mut stream = UnixStream::connect(&fixture.path).expect("connect");
    stream
        .write_all(br#"{"version":1,"request":"#)
        .expect("half a request");
    let mut reply = String::new();
    let mut reader = std::io::BufReader::new(stream);
    std::io::BufRead::read_line(&mut reader, &mut reply).expect("the server answers");
    assert_eq!(
        kind_of(reply.trim_end()).as_deref(),
        Some("invalid"),
        "{reply}"
    );
    assert!(
        message_of(&reply).contains("did not arrive whole"),
        "{reply}"
    );
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(rest.is_empty(), "then the connection is closed: {rest:?}");
    assert!(fixture.recorder.calls().is_empty());
}

#[test]
fn an_idle_connection_is_closed() {
    let fixture = Fixture::with(small(4, 1 << 20));
    let mut stream = UnixStream::connect(&fixture.path).expect("connect");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the server closes it");
    assert!(rest.is_empty(), "closed without a word: {rest:?}");
}

#[test]
fn lines_that_together_pass_the_budget_are_refused_as_busy() {
    let budget = 3 << 20;
    let fixture = Fixture::with(small(4, budget));
    // A holds 2.5 MiB of a line: once the write returns, the server has read
    // all but what the socket buffers (a few hundred KiB).
    let mut a = UnixStream::connect(&fixture.path).expect("connect");
    a.write_all(&vec![b' '; (5 << 20) / 2])
        .expect("A's partial line");
    let mut b = LineClient::connect(&fixture.path).expect("connect");
    let line = format!("{PORT_LIST}{}", " ".repeat((3 << 20) / 2));
    let reply = b.call_raw(&line).expect("B's refusal");
    assert_eq!(kind_of(&reply).as_deref(), Some("io"), "{reply}");
    assert!(message_of(&reply).contains("busy"), "{reply}");
    drop(a);
    let mut answered = None;
    let ok = poll(|| {
        let Ok(mut client) = LineClient::connect(&fixture.path) else {
            return false;
        };
        answered = client.call_raw(&line).ok();
        answered.as_deref().is_some_and(|r| kind_of(r).is_none())
    });
    assert!(ok, "the same line passes once A is gone: {answered:?}");
}

/// Polls `f` every 50 ms for up to 10 s.
fn poll(mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

//! The server and the client over a real socket in a temp dir, with a fake
//! handler that records what reaches it.
//!
//! Not tested here: the `forbidden` answer to a peer of another uid. The
//! tests run as root, and root is always allowed; testing it needs a process
//! of another uid, which a unit test cannot make without privileges games.

use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use tweed_dataplane::api::limits::Limits;

use super::*;
use crate::api::client::{Client, ClientError};
use crate::api::fixtures::{self, TempDir};
use crate::api::pod::PodsReply;
use crate::api::proto::{Empty, ErrorKind};

/// Records every request that reaches it; `peer_remove` of `slow` waits,
/// of `ghost` is not found, of `panic` panics.
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
    fn handle(&self, request: Request) -> BoxFuture<'_, Result<ResponseBody, ApiError>> {
        Box::pin(async move {
            self.calls.lock().expect("lock").push(request.clone());
            match request {
                Request::PodList(_) => Ok(ResponseBody::Pods(PodsReply {
                    pods: vec![fixtures::pod()],
                })),
                Request::Status(_) => Ok(ResponseBody::Status(fixtures::status())),
                Request::Stats(_) => Ok(ResponseBody::Stats(fixtures::stats())),
                Request::PeerRemove(args) => match args.name.as_str() {
                    "slow" => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(ApiError::conflict("slow"))
                    }
                    "ghost" => Err(ApiError::not_found("no static peer named ghost")),
                    "panic" => panic!("handler bug"),
                    _ => Ok(ResponseBody::empty()),
                },
                _ => Ok(ResponseBody::empty()),
            }
        })
    }
}

struct Fixture {
    recorder: Arc<Recorder>,
    server: ServerHandle,
    _dir: TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(LIMITS).await
    }

    /// A server with other bounds.
    async fn with(limits: Limits) -> Fixture {
        let dir = TempDir::new("api-server").expect("temp dir");
        let recorder = Arc::new(Recorder::default());
        let server = serve_with(
            &dir.path().join("control.sock"),
            Arc::clone(&recorder) as Arc<dyn Handler>,
            limits,
        )
        .await
        .expect("serve");
        Fixture {
            recorder,
            server,
            _dir: dir,
        }
    }

    fn path(&self) -> PathBuf {
        self.server.path().to_owned()
    }
}

/// Runs blocking client code off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

fn error_of(reply: &str) -> ApiError {
    match crate::api::codec::decode_response(crate::api::Op::Status, reply) {
        Ok(Err(error)) => error,
        other => panic!("not an error reply: {reply}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_calls_and_each_error_kind_before_the_handler() {
    let fixture = Fixture::new().await;
    let path = fixture.path();
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let replies = blocking(move || {
        let mut client = Client::connect(&path).expect("connect");
        let pods = client.call(Request::PodList(Empty {}));
        let lines = [
            "{not json",
            r#"{"version":2,"request":{"pod_list":{}}}"#,
            r#"{"version":1,"request":{"teleport":{}}}"#,
            r#"{"version":1,"request":{"pod_add":{"container_id":"c","netns":"/x","ifname":"eth0","mtu":100}}}"#,
            "\u{fffd}\u{0}",
        ]
        .map(|line| client.call_raw(line).expect("reply"));
        let ghost = client.call(Request::PeerRemove(crate::api::proto::NameArgs {
            name: "ghost".into(),
        }));
        (pods, lines, ghost)
    })
    .await;
    let (pods, lines, ghost) = replies;
    assert_eq!(
        pods.expect("pod_list"),
        ResponseBody::Pods(PodsReply {
            pods: vec![fixtures::pod()]
        })
    );
    let kinds: Vec<ErrorKind> = lines.iter().map(|l| error_of(l).kind).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::BadJson,
            ErrorKind::UnsupportedVersion,
            ErrorKind::Invalid,
            ErrorKind::Invalid,
            ErrorKind::BadJson,
        ]
    );
    assert!(error_of(&lines[2]).message.contains("teleport"));
    assert_eq!(
        error_of(&lines[3]).message,
        "pod_add.mtu: 100 is outside 576..=65535"
    );
    match ghost {
        Err(ClientError::Api(e)) => assert_eq!(e.kind, ErrorKind::NotFound),
        other => panic!("expected not_found, got {other:?}"),
    }
    // Only the two well-formed, valid requests reached the handler.
    assert_eq!(fixture.recorder.calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_on_one_connection_come_in_request_order() {
    let fixture = Fixture::new().await;
    let path = fixture.path();
    let replies = blocking(move || {
        use std::io::Write;
        // All three lines in one write; the first one is slow to handle.
        let mut stream = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        let lines = [
            r#"{"version":1,"request":{"peer_remove":{"name":"slow"}}}"#,
            "",
            r#"{"version":1,"request":{"peer_remove":{"name":"ghost"}}}"#,
            r#"{"version":1,"request":{"pod_list":{}}}"#,
        ];
        stream
            .write_all(format!("{}\r\n", lines.join("\n")).as_bytes())
            .expect("write");
        let mut reader = std::io::BufReader::new(stream);
        (0..3)
            .map(|_| {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut reader, &mut line).expect("read");
                line
            })
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(error_of(&replies[0]).kind, ErrorKind::Conflict);
    assert_eq!(error_of(&replies[1]).kind, ErrorKind::NotFound);
    assert!(replies[2].contains("\"pods\""), "{}", replies[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_answered_with_io_and_the_server_lives_on() {
    let fixture = Fixture::new().await;
    let path = fixture.path();
    let (panicked, after) = blocking(move || {
        let mut client = Client::connect(&path).expect("connect");
        let panicked =
            client.call_raw(r#"{"version":1,"request":{"peer_remove":{"name":"panic"}}}"#);
        let after = client.call(Request::Status(Empty {}));
        (panicked.expect("reply"), after)
    })
    .await;
    assert_eq!(error_of(&panicked).kind, ErrorKind::Io);
    assert_eq!(
        after.expect("status"),
        ResponseBody::Status(fixtures::status())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_over_the_limit_is_refused_and_the_connection_closed() {
    let fixture = Fixture::new().await;
    let path = fixture.path();
    let (reply, next) = blocking(move || {
        let mut client = Client::connect(&path).expect("connect");
        let reply = client.call_raw(&"x".repeat(MAX_LINE + 1)).expect("reply");
        let next = client.read_line();
        (reply, next)
    })
    .await;
    let error = error_of(&reply);
    assert_eq!(error.kind, ErrorKind::Invalid);
    assert!(error.message.contains("longer than"), "{}", error.message);
    assert_eq!(
        next.expect_err("closed").kind(),
        std::io::ErrorKind::UnexpectedEof
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_is_refused_a_stale_one_replaced_and_stop_removes_it() {
    let fixture = Fixture::new().await;
    let live = fixture.path();
    let refused = serve(&live, Arc::new(Recorder::default())).await;
    assert!(
        matches!(refused, Err(ServeError::InUse { .. })),
        "{refused:?}"
    );

    let stale = live.with_file_name("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    // Another test of this process may be forking a child that holds a copy
    // of the listener until it execs: wait until nothing accepts there.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&stale).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = serve(&stale, Arc::new(Recorder::default()))
        .await
        .expect("stale socket replaced");
    let path = stale.clone();
    let answered = blocking(move || Client::connect(&path)?.call(Request::Stats(Empty {}))).await;
    assert_eq!(
        answered.expect("stats"),
        ResponseBody::Stats(fixtures::stats())
    );
    server.stop().await;
    assert!(!stale.exists(), "stop removes the socket");

    let file = live.with_file_name("plain");
    std::fs::write(&file, b"").expect("file");
    let refused = serve(&file, Arc::new(Recorder::default())).await;
    assert!(
        matches!(refused, Err(ServeError::NotASocket { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_missing_socket_says_the_daemon_is_not_running() {
    let dir = TempDir::new("api-client").expect("temp dir");
    let path = dir.path().join("control.sock");
    let err = Client::connect(&path).expect_err("nothing there");
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "tweed daemon is not running (no answer on {}); start it with `tweed daemon`, \
             or point --run-dir / TWEED_RUN_DIR at its run directory",
            path.display()
        )
    );
    // A socket file nobody listens on: refused, the same answer.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&path) {
            Err(ClientError::NotRunning { .. }) => break,
            other => {
                // A forked child of another test may still hold the listener.
                assert!(std::time::Instant::now() < deadline, "{other:?}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Small bounds, for the tests of the bounds.
fn small(max_connections: usize) -> Limits {
    Limits {
        max_line: 1 << 20,
        max_connections,
        request_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(60),
        buffer_budget: 1 << 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_over_the_cap_is_told_to_try_again() {
    let fixture = Fixture::with(small(1)).await;
    let path = fixture.path();
    let (first, refused) = blocking(move || {
        let mut first = Client::connect(&path).expect("connect");
        let served = first.call(Request::PodList(Empty {}));
        let mut second = Client::connect(&path).expect("connect");
        let refused = second.call_raw(r#"{"version":1,"request":{"pod_list":{}}}"#);
        (served, refused.expect("the refusal"))
    })
    .await;
    assert!(first.is_ok(), "{first:?}");
    let error = error_of(&refused);
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error:?}");
    assert!(error.message.contains("at most 1 connections"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_ends_is_answered_and_closed() {
    let fixture = Fixture::with(small(4)).await;
    let path = fixture.path();
    let (reply, rest) = blocking(move || {
        use std::io::{BufRead, Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        stream
            .write_all(br#"{"version":1,"request":"#)
            .expect("half a request");
        let mut reader = std::io::BufReader::new(stream);
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("an answer");
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        (reply, rest)
    })
    .await;
    let error = error_of(reply.trim_end());
    assert_eq!(error.kind, ErrorKind::Invalid, "{error:?}");
    assert!(error.message.contains("did not arrive whole"), "{error:?}");
    assert!(rest.is_empty(), "then closed: {rest:?}");
    assert!(fixture.recorder.calls().is_empty());
}

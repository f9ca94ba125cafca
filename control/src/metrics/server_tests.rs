//! Tests of the metrics endpoint over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Limits, MetricsSource, serve_with};

const BODY: &str = "# HELP tweed_x X.\n# TYPE tweed_x gauge\ntweed_x 1\n# EOF\n";

/// A running server; dropping the sender stops it.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let source: MetricsSource = Arc::new(|| async { BODY.to_owned() }.boxed());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, source, limits, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Server {
    async fn stop(mut self) {
        drop(self.stop.take());
        (&mut self.task)
            .await
            .expect("the server task ends cleanly");
    }
}

/// Sends `request` raw and reads until the server closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

async fn fetch(addr: SocketAddr, request: &str) -> String {
    let bytes = exchange(addr, request.as_bytes()).await.expect("exchange");
    String::from_utf8(bytes).expect("an ASCII answer")
}

#[tokio::test]
async fn get_metrics_answers_the_exposition() {
    let server = start(Limits::default()).await;
    let answer = fetch(server.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    // Header names are case-insensitive (hyper writes them in lower case).
    let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
    let has = |h: &str| headers.iter().any(|x| x == h);
    assert!(
        has("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{headers:?}"
    );
    assert!(
        has(&format!("content-length: {}", BODY.len())),
        "{headers:?}"
    );
    assert!(has("connection: close"), "{headers:?}");
    assert_eq!(body, BODY);
    server.stop().await;
}

#[tokio::test]
async fn other_paths_and_methods_get_their_status() {
    let server = start(Limits::default()).await;
    let index = fetch(server.addr, "GET / HTTP/1.1\r\n\r\n").await;
    assert!(index.starts_with("HTTP/1.1 200 OK\r\n"), "{index}");
    assert!(index.ends_with("/metrics\n"), "{index}");
    let missing = fetch(server.addr, "GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = fetch(
        server.addr,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("\r\nallow: get\r\n"),
        "{post}"
    );
    let bad = fetch(server.addr, "BREW /pot HTCPCP/1.0\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_head_gets_431_or_nothing() {
    let server = start(Limits::default()).await;
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    request.resize(9 * 1024, b'a');
    // The server answers 431 and closes, possibly before reading everything (then
    // the client may see a reset instead of the answer); never the metrics.
    match exchange(server.addr, &request).await {
        Ok(answer) => {
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
                "{answer}"
            );
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unfinished_head_is_dropped_after_the_timeout() {
    let limits = Limits {
        head_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = start(limits).await;
    // Half a head, never finished: the server closes the connection on its own
    // (with a 408 at most), long before the test's own limit.
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        exchange(server.addr, b"GET /metrics HTTP/1.1\r\nHost:"),
    )
    .await
    .expect("the server closes an unfinished head");
    let answer = answer.expect("a clean close");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let server = start(Limits::default()).await;
    let addr = server.addr;
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

//! Tests of the prober over 127.0.0.1: against the real responder, a closed port, a
//! listener that never answers and a stranger.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{ProbeError, describe, parse_greeting, probe, run};
use crate::health::{HealthBook, responder};

/// Generous: only reached when something is broken.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A running responder; dropping `stop` ends it.
struct Responder {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn responder(name: &str) -> Responder {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(responder::serve(listener, name.into(), async {
        let _ = stopped.await;
    }));
    Responder { addr, stop, task }
}

impl Responder {
    async fn stop(self) {
        drop(self.stop);
        self.task.await.expect("the responder ends cleanly");
    }
}

/// An address nothing listens on: a port bound, then released.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address")
}

#[test]
fn greetings_parse() {
    assert_eq!(parse_greeting(b"tweed node-a\n"), Some("node-a"));
    assert_eq!(parse_greeting(b"tweed node-a"), Some("node-a"));
    assert_eq!(parse_greeting(b"tweed \n"), None);
    assert_eq!(parse_greeting(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(parse_greeting(b""), None);
    assert_eq!(parse_greeting(b"tweed \xff\n"), None);
}

#[tokio::test]
async fn a_responder_is_reachable() {
    let peer = responder("node-b").await;
    probe(peer.addr, TIMEOUT).await.expect("the probe succeeds");
    peer.stop().await;
}

#[tokio::test]
async fn a_closed_port_fails_with_the_connect_step_and_its_cause() {
    let target = closed_port().await;
    let err = probe(target, TIMEOUT).await.expect_err("nothing listens");
    let ProbeError::Connect { target: t, source } = &err else {
        panic!("not a connect failure: {err:?}");
    };
    assert_eq!(*t, target);
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    let text = describe(&err);
    assert!(
        text.starts_with(&format!("connecting to the health port {target} failed: ")),
        "{text}"
    );
}

#[tokio::test]
async fn a_listener_that_never_answers_times_out() {
    // Bound and listening, never accepted: the kernel completes the handshake, and no
    // greeting ever comes.
    let silent = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let target = silent.local_addr().expect("local address");
    let timeout = Duration::from_millis(200);
    let err = probe(target, timeout).await.expect_err("no greeting");
    assert!(
        matches!(err, ProbeError::GreetingTimeout { target: t, timeout: d } if t == target && d == timeout),
        "{err:?}"
    );
    assert!(
        describe(&err).contains("sent no greeting within 200ms"),
        "{err}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_stranger_is_not_tweed() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let target = listener.local_addr().expect("local address");
    let stranger = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream
            .write_all(b"SSH-2.0-OpenSSH_9.6\r\nmore\n")
            .await
            .expect("write");
    });
    let err = probe(target, TIMEOUT).await.expect_err("not tweed");
    assert!(
        matches!(&err, ProbeError::NotTweed { answer, .. } if answer == "SSH-2.0-OpenSSH_9.6\r"),
        "{err:?}"
    );
    stranger.await.expect("the stranger ends");
}

#[tokio::test]
async fn run_marks_reachable_and_unreachable_peers() {
    let up = responder("node-b").await;
    let down = closed_port().await;
    let book = Arc::new(Mutex::new(HealthBook::default()));
    book.lock()
        .expect("fresh lock")
        .set_targets(&[("node-b".into(), up.addr), ("node-c".into(), down)]);
    let (stop, stopped) = oneshot::channel::<()>();
    let prober = tokio::spawn(run(
        book.clone(),
        Duration::from_millis(10),
        TIMEOUT,
        async {
            let _ = stopped.await;
        },
    ));
    // Wait until both are decided; the bound only stops a broken test from hanging.
    let decided = async {
        loop {
            let peers = book.lock().expect("lock").peers();
            if peers.iter().all(|p| p.reachable.is_some()) {
                return peers;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let peers = tokio::time::timeout(Duration::from_secs(30), decided)
        .await
        .expect("both peers are decided");
    assert_eq!(peers[0].name, "node-b");
    assert_eq!(peers[0].reachable, Some(true));
    assert!(peers[0].rtt.is_some());
    assert_eq!(peers[1].name, "node-c");
    assert_eq!(peers[1].reachable, Some(false));
    let error = peers[1].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!("connecting to the health port {down} failed")),
        "{error}"
    );
    drop(stop);
    prober.await.expect("the prober ends cleanly");
    up.stop().await;
}

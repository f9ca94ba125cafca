//! The health port: answers every connection with one line, `tweed <node name>\n`,
//! and closes it.
//!
//! Peers connect to it through the overlay, so a successful probe shows that the
//! overlay path between the two nodes carries TCP both ways. The greeting names the
//! node so a prober can tell it reached tweed (and which node), not some other service.

use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// How long a prober may take to accept the greeting before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The greeting line for `node_name` (line feeds in the name become spaces).
pub fn greeting(node_name: &str) -> String {
    format!("tweed {}\n", node_name.replace(['\r', '\n'], " "))
}

/// Answers connections on `listener` with the greeting until `shutdown` completes.
pub async fn serve(listener: TcpListener, node_name: String, shutdown: impl Future<Output = ()>) {
    let line: std::sync::Arc<[u8]> = greeting(&node_name).into_bytes().into();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    let line = line.clone();
                    tokio::spawn(async move {
                        let write = async {
                            stream.write_all(&line).await?;
                            stream.shutdown().await
                        };
                        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "health: writing the greeting failed");
                            }
                            Err(_) => tracing::debug!(%peer, "health: writing the greeting timed out"),
                        }
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "health: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    #[test]
    fn the_greeting_is_one_line() {
        assert_eq!(greeting("node-a"), "tweed node-a\n");
        assert_eq!(greeting("a\nb\r"), "tweed a b \n");
    }

    #[tokio::test]
    async fn each_connection_gets_the_greeting_then_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, "node-a".into(), async {
            let _ = stopped.await;
        }));
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let mut answer = String::new();
            stream
                .read_to_string(&mut answer)
                .await
                .expect("read to the end");
            assert_eq!(answer, "tweed node-a\n");
        }
        drop(stop);
        server.await.expect("the responder ends cleanly");
    }
}

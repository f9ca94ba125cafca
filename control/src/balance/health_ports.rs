//! The health check node ports' HTTP servers (I/O; what they answer is
//! `services::health`): one listener per port on each of this node's
//! addresses, answering every request with the Service's current health.
//!
//! The ports are not Service frontends, so the node's stack receives them
//! (nothing steers them into the dataplane). A port that cannot be bound (in
//! use) is logged and tried again at the next update or periodic round.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::server::{Limits, serve_http};
use crate::services::HealthCheck;

/// The listeners to keep: this node's health check node ports.
#[derive(Debug)]
pub(super) struct HealthPorts {
    addresses: Vec<IpAddr>,
    wanted: BTreeMap<u16, HealthCheck>,
    running: BTreeMap<u16, Running>,
}

/// One port's listeners and the answer they give.
#[derive(Debug)]
struct Running {
    check: watch::Sender<HealthCheck>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl HealthPorts {
    /// Listeners on `addresses` (none until [`HealthPorts::update`]).
    pub fn new(addresses: Vec<IpAddr>) -> Self {
        HealthPorts {
            addresses,
            wanted: BTreeMap::new(),
            running: BTreeMap::new(),
        }
    }

    /// Serves exactly `wanted`: ports no longer wanted close, new ones open,
    /// the others answer the new health.
    pub fn update(&mut self, wanted: &BTreeMap<u16, HealthCheck>) {
        self.wanted.clone_from(wanted);
        self.reconcile();
    }

    /// Opens the wanted ports that are not open (after a failed bind).
    pub fn reconcile(&mut self) {
        self.running
            .retain(|port, _| self.wanted.contains_key(port));
        for (&port, check) in &self.wanted {
            if let Some(running) = self.running.get(&port) {
                running.check.send_if_modified(|old| {
                    let changed = old != check;
                    if changed {
                        old.clone_from(check);
                    }
                    changed
                });
                continue;
            }
            match start(&self.addresses, port, check.clone()) {
                Ok(running) => {
                    self.running.insert(port, running);
                }
                Err((address, e)) => {
                    tracing::warn!(error = %e, %address, port, service = %format!("{}/{}", check.namespace, check.name), "opening a health check node port; trying again within the periodic resync");
                }
            }
        }
    }
}

/// Listens on `port` of every address and answers with `check`'s health.
fn start(
    addresses: &[IpAddr],
    port: u16,
    check: HealthCheck,
) -> Result<Running, (SocketAddr, std::io::Error)> {
    let (check, answers) = watch::channel(check);
    let mut running = Running {
        check,
        tasks: Vec::new(),
    };
    for &ip in addresses {
        let address = SocketAddr::new(ip, port);
        let listener = listen(address).map_err(|e| (address, e))?;
        let answers = answers.clone();
        let handler = move |_request| {
            let (status, body) = answers.borrow().answer();
            async move {
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Ok(response)
            }
        };
        running.tasks.push(tokio::spawn(serve_http(
            listener,
            Limits::default(),
            "health check node port",
            handler,
            std::future::pending(),
        )));
    }
    Ok(running)
}

fn listen(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(128)
}

//! The daemon's async handle on the dataplane's API socket.
//!
//! Each call runs on a blocking thread, so a slow call never blocks the
//! runtime, over an idle connection a previous call left open, or a new one.
//! Reusing a connection spares the dataplane a thread start per call (it
//! serves each connection on a thread of its own), which shows in every CNI
//! ADD and DEL on a loaded machine. An idle connection the dataplane has
//! closed (it stopped or restarted) is noticed and dropped before use, and a
//! connection on which a call failed is never reused, so no connection state
//! survives a dataplane restart. A connection idle for [`MAX_IDLE`] is not
//! reused either: the dataplane closes idle connections after five minutes,
//! and one it is closing must never carry a request.
//!
//! At most [`CONCURRENT`] calls run at once, well under the dataplane's cap
//! on connections, so a burst of CNI ADDs queues here instead of being
//! refused there.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use tweed_api::dataplane::proto::{
    Empty, NameArgs, PeerSpec, PortAdd, PortInfo, RouteInfo, RouteSpec,
};
use tweed_api::dataplane::report::StatsReply;
use tweed_api::dataplane::{Client, ClientError, Request, ResponseBody, TraceReply};
use tweed_api::{ApiError, ErrorKind};

/// How long one call may take (a port_add creates and configures a tap).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections kept for later calls, at most (calls rarely overlap).
const IDLE: usize = 4;

/// How long an idle connection may be kept for reuse.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Calls in flight at once, at most (the dataplane serves 64 connections).
const CONCURRENT: usize = 32;

/// Why a dataplane call failed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// Nothing answers on the socket: the dataplane is down or restarting.
    #[error("the dataplane does not answer on {}: {source}", path.display())]
    Unavailable {
        /// The socket.
        path: PathBuf,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// The call broke off or the reply was not understood.
    #[error("{0}")]
    Transport(ClientError),
    /// The dataplane refused the request.
    #[error("the dataplane refused {op}: {error}")]
    Refused {
        /// The op's name.
        op: &'static str,
        /// Its answer.
        error: ApiError,
    },
    /// The supervisor knows the dataplane is down (not asked).
    #[error("the dataplane is down; the daemon is starting a new one")]
    Down,
    /// It answered with the wrong kind of body.
    #[error("the dataplane answered {op} with an unexpected reply")]
    Unexpected {
        /// The op's name.
        op: &'static str,
    },
}

impl DataplaneError {
    /// The dataplane's own error, when it refused.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            DataplaneError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The dataplane's API, by socket path. Cheap to clone (clones share the
/// idle connections).
#[derive(Clone, Debug)]
pub struct Dataplane {
    socket: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<(Client, Instant)>>>,
    calls: Arc<Semaphore>,
    timeout: Duration,
}

impl Dataplane {
    /// The API at `socket`.
    pub fn new(socket: &Path) -> Self {
        Dataplane {
            socket: Arc::new(socket.to_owned()),
            idle: Arc::new(Mutex::new(Vec::new())),
            calls: Arc::new(Semaphore::new(CONCURRENT)),
            timeout: CALL_TIMEOUT,
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The same API (sharing its connections), whose calls wait at most
    /// `timeout` for an answer instead of [`CALL_TIMEOUT`]: for the health
    /// check and `status`, which must not wait as long as a slow call may.
    pub fn within(&self, timeout: Duration) -> Dataplane {
        Dataplane {
            timeout,
            ..self.clone()
        }
    }

    /// Sends one request, on an idle connection if there is one that is
    /// still open, else on a new one.
    pub async fn call(&self, request: Request) -> Result<ResponseBody, DataplaneError> {
        let timeout = self.timeout;
        let path = self.socket.clone();
        let idle = self.idle.clone();
        let op = request.op().name();
        // Waiting for a turn counts against the call's time too.
        let permit = tokio::time::timeout(timeout, self.calls.clone().acquire_owned())
            .await
            .map_err(|_| DataplaneError::Unavailable {
                path: self.socket.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{CONCURRENT} calls to the dataplane are still in flight"),
                ),
            })?;
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut client = match reuse(&idle) {
                Some(client) => client,
                None => connect(&path)?,
            };
            client
                .set_timeout(Some(timeout))
                .map_err(|source| DataplaneError::Unavailable {
                    path: path.to_path_buf(),
                    source,
                })?;
            let result = client.call(request);
            if matches!(result, Ok(_) | Err(ClientError::Api(_))) {
                keep(&idle, client);
            }
            result.map_err(|e| match e {
                ClientError::Api(error) => DataplaneError::Refused { op, error },
                other => DataplaneError::Transport(other),
            })
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(DataplaneError::Unavailable {
                path: self.socket.to_path_buf(),
                source: io::Error::other(e.to_string()),
            })
        })
    }

    /// Whether the API answers (a `port_list`).
    pub async fn alive(&self) -> bool {
        self.ports().await.is_ok()
    }

    /// Creates a pod port.
    pub async fn port_add(&self, port: PortAdd) -> Result<PortInfo, DataplaneError> {
        match self.call(Request::PortAdd(port)).await? {
            ResponseBody::Port(reply) => Ok(reply.port),
            _ => Err(DataplaneError::Unexpected { op: "port_add" }),
        }
    }

    /// Removes a pod port; `Ok(false)` when it did not exist.
    pub async fn port_remove(&self, name: &str) -> Result<bool, DataplaneError> {
        let request = Request::PortRemove(NameArgs { name: name.into() });
        match self.call(request).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every pod port.
    pub async fn ports(&self) -> Result<Vec<PortInfo>, DataplaneError> {
        match self.call(Request::PortList(Empty {})).await? {
            ResponseBody::Ports(reply) => Ok(reply.ports),
            _ => Err(DataplaneError::Unexpected { op: "port_list" }),
        }
    }

    /// Adds or replaces a peer.
    pub async fn peer_set(&self, peer: PeerSpec) -> Result<(), DataplaneError> {
        self.call(Request::PeerSet(peer)).await.map(drop)
    }

    /// Removes a peer; `Ok(false)` when it did not exist.
    pub async fn peer_remove(&self, name: &str) -> Result<bool, DataplaneError> {
        let request = Request::PeerRemove(NameArgs { name: name.into() });
        match self.call(request).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every peer.
    pub async fn peers(&self) -> Result<Vec<PeerSpec>, DataplaneError> {
        match self.call(Request::PeerList(Empty {})).await? {
            ResponseBody::Peers(reply) => Ok(reply.peers),
            _ => Err(DataplaneError::Unexpected { op: "peer_list" }),
        }
    }

    /// Adds or replaces a static route.
    pub async fn route_set(&self, route: RouteSpec) -> Result<(), DataplaneError> {
        self.call(Request::RouteSet(route)).await.map(drop)
    }

    /// Every route.
    pub async fn routes(&self) -> Result<Vec<RouteInfo>, DataplaneError> {
        match self.call(Request::RouteList(Empty {})).await? {
            ResponseBody::Routes(reply) => Ok(reply.routes),
            _ => Err(DataplaneError::Unexpected { op: "route_list" }),
        }
    }

    /// Sets a pod port's ingress and egress rule sets.
    pub async fn policy_set(
        &self,
        set: tweed_api::dataplane::proto::PolicySet,
    ) -> Result<(), DataplaneError> {
        self.call(Request::PolicySet(set)).await.map(drop)
    }

    /// Sets several ports' rule sets in one snapshot.
    pub async fn policy_set_many(
        &self,
        sets: Vec<tweed_api::dataplane::proto::PolicySet>,
    ) -> Result<(), DataplaneError> {
        let request = Request::PolicySetMany(tweed_api::dataplane::proto::PolicySetMany { sets });
        self.call(request).await.map(drop)
    }

    /// Adds, replaces or removes native Services (`replace`: removes the
    /// others too), in one snapshot.
    pub async fn service_set(
        &self,
        services: Vec<tweed_api::dataplane::proto::ServiceSpec>,
        replace: bool,
    ) -> Result<(), DataplaneError> {
        let request =
            Request::ServiceSet(tweed_api::dataplane::proto::ServiceSet { replace, services });
        self.call(request).await.map(drop)
    }

    /// The counters.
    pub async fn stats(&self) -> Result<StatsReply, DataplaneError> {
        match self.call(Request::Stats(Empty {})).await? {
            ResponseBody::Stats(reply) => Ok(reply),
            _ => Err(DataplaneError::Unexpected { op: "stats" }),
        }
    }

    /// A dry run of a synthetic packet.
    pub async fn trace(
        &self,
        request: tweed_api::dataplane::proto::TraceRequest,
    ) -> Result<TraceReply, DataplaneError> {
        match self.call(Request::Trace(request)).await? {
            ResponseBody::Trace(reply) => Ok(reply),
            _ => Err(DataplaneError::Unexpected { op: "trace" }),
        }
    }
}

/// A new connection.
fn connect(path: &Path) -> Result<Client, DataplaneError> {
    Client::connect(path).map_err(|source| DataplaneError::Unavailable {
        path: path.to_path_buf(),
        source,
    })
}

/// An idle connection that is still open and not idle for too long, if any
/// (the others are dropped).
fn reuse(idle: &Mutex<Vec<(Client, Instant)>>) -> Option<Client> {
    let mut idle = idle.lock().ok()?;
    while let Some((mut client, since)) = idle.pop() {
        if since.elapsed() < MAX_IDLE && !client.is_stale() {
            return Some(client);
        }
    }
    None
}

/// Keeps a connection that just answered for a later call.
fn keep(idle: &Mutex<Vec<(Client, Instant)>>, client: Client) {
    if let Ok(mut idle) = idle.lock()
        && idle.len() < IDLE
    {
        idle.push((client, Instant::now()));
    }
}

fn is_not_found(e: &DataplaneError) -> bool {
    e.api().is_some_and(|a| a.kind == ErrorKind::NotFound)
}

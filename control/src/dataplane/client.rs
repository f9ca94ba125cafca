//! The daemon's async handle on the dataplane's API socket.
//!
//! Each call opens a fresh connection on a blocking thread (a Unix socket
//! connect costs microseconds): no connection state survives a dataplane
//! restart, and a slow call never blocks the runtime.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tweed_dataplane::api::proto::{
    Empty, NameArgs, PeerSpec, PortAdd, PortInfo, RouteInfo, RouteSpec,
};
use tweed_dataplane::api::report::StatsReply;
use tweed_dataplane::api::{ApiError, Client, ClientError, Request, ResponseBody, TraceReply};

/// How long one call may take (a port_add creates and configures a tap).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The dataplane's API, by socket path. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dataplane {
    socket: Arc<PathBuf>,
}

impl Dataplane {
    /// The API at `socket`.
    pub fn new(socket: &Path) -> Self {
        Dataplane {
            socket: Arc::new(socket.to_owned()),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request on a new connection.
    pub async fn call(&self, request: Request) -> Result<ResponseBody, DataplaneError> {
        let path = self.socket.clone();
        let op = request.op().name();
        let joined = tokio::task::spawn_blocking(move || {
            let mut client =
                Client::connect(&path).map_err(|source| DataplaneError::Unavailable {
                    path: path.to_path_buf(),
                    source,
                })?;
            client.set_timeout(Some(CALL_TIMEOUT)).map_err(|source| {
                DataplaneError::Unavailable {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            client.call(request).map_err(|e| match e {
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
        set: tweed_dataplane::api::proto::PolicySet,
    ) -> Result<(), DataplaneError> {
        self.call(Request::PolicySet(set)).await.map(drop)
    }

    /// Sets several ports' rule sets in one snapshot.
    pub async fn policy_set_many(
        &self,
        sets: Vec<tweed_dataplane::api::proto::PolicySet>,
    ) -> Result<(), DataplaneError> {
        let request = Request::PolicySetMany(tweed_dataplane::api::proto::PolicySetMany { sets });
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
        request: tweed_dataplane::api::proto::TraceRequest,
    ) -> Result<TraceReply, DataplaneError> {
        match self.call(Request::Trace(request)).await? {
            ResponseBody::Trace(reply) => Ok(reply),
            _ => Err(DataplaneError::Unexpected { op: "trace" }),
        }
    }
}

fn is_not_found(e: &DataplaneError) -> bool {
    e.api()
        .is_some_and(|a| a.kind == tweed_dataplane::api::ErrorKind::NotFound)
}

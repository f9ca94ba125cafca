//! A client for the dataplane's config API (`dataplane/API.md`), written
//! against the wire format: newline-delimited JSON over a Unix socket, one
//! request and one reply per line.
//!
//! Requests and replies use the dataplane's own serde types
//! (`tweed_api::dataplane::proto`), so a test cannot send what the server
//! could not have meant; [`Api::raw`] sends any line at all, for the tests of
//! malformed input. Each call opens its own connection, so an `Api` survives
//! a dataplane restart. Every read and write has a timeout.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tweed_api::dataplane::proto::{
    ApiError, DumpReply, Empty, Envelope, NameArgs, PeerSpec, PeersReply, PolicySet, PortAdd,
    PortInfo, PortReply, PortsReply, Request, RouteInfo, RouteSpec, RoutesReply, StatsReply,
    TraceRequest, VERSION,
};
use tweed_api::dataplane::trace::TraceReply;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// What a request got back: the `ok` payload or the error reply.
pub type Reply = Result<Value, ApiError>;

/// A client for one dataplane's socket.
#[derive(Debug, Clone)]
pub struct Api {
    socket: PathBuf,
}

impl Api {
    /// A client for the socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `line` (a newline is appended) on a fresh connection and returns
    /// the reply line, or the I/O error (connect, write, read, or the server
    /// closing without a reply).
    pub fn raw(&self, line: &str) -> std::io::Result<String> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.write_all(line.as_bytes())?;
        stream.write_all(b"\n")?;
        stream.flush()?;
        let mut reply = String::new();
        let n = BufReader::new(stream).read_line(&mut reply)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection without a reply",
            ));
        }
        Ok(reply)
    }

    /// Sends `line` and splits the reply into `ok` or the error; panics if
    /// the transport fails or the reply is not a well-formed envelope.
    pub fn raw_reply(&self, line: &str) -> Reply {
        let text = self
            .raw(line)
            .unwrap_or_else(|e| panic!("API {}: {line}: {e}", self.socket.display()));
        parse_reply(&text)
    }

    /// Sends `request` in a version-1 envelope.
    pub fn call(&self, request: Request) -> Reply {
        let envelope = Envelope {
            version: VERSION,
            request,
        };
        let line = serde_json::to_string(&envelope).expect("a request serializes");
        self.raw_reply(&line)
    }

    /// Sends `request` and decodes the `ok` payload as `T`.
    fn typed<T: DeserializeOwned>(&self, request: Request) -> Result<T, ApiError> {
        let op = request.op().name();
        let ok = self.call(request)?;
        Ok(serde_json::from_value(ok.clone())
            .unwrap_or_else(|e| panic!("the `{op}` reply does not decode ({e}): {ok}")))
    }

    /// `port_add`.
    pub fn port_add(&self, args: PortAdd) -> Result<PortInfo, ApiError> {
        self.typed::<PortReply>(Request::PortAdd(args))
            .map(|r| r.port)
    }

    /// `port_remove`.
    pub fn port_remove(&self, name: &str) -> Result<(), ApiError> {
        self.typed::<Empty>(Request::PortRemove(NameArgs { name: name.into() }))
            .map(drop)
    }

    /// `port_list`, panicking on an error reply.
    pub fn port_list(&self) -> Vec<PortInfo> {
        self.typed::<PortsReply>(Request::PortList(Empty {}))
            .expect("port_list")
            .ports
    }

    /// `peer_set`.
    pub fn peer_set(&self, peer: PeerSpec) -> Result<(), ApiError> {
        self.typed::<Empty>(Request::PeerSet(peer)).map(drop)
    }

    /// `peer_list`, panicking on an error reply.
    pub fn peer_list(&self) -> Vec<PeerSpec> {
        self.typed::<PeersReply>(Request::PeerList(Empty {}))
            .expect("peer_list")
            .peers
    }

    /// `route_set`.
    pub fn route_set(&self, route: RouteSpec) -> Result<(), ApiError> {
        self.typed::<Empty>(Request::RouteSet(route)).map(drop)
    }

    /// `route_list`, panicking on an error reply.
    pub fn route_list(&self) -> Vec<RouteInfo> {
        self.typed::<RoutesReply>(Request::RouteList(Empty {}))
            .expect("route_list")
            .routes
    }

    /// `policy_set`.
    pub fn policy_set(&self, policy: PolicySet) -> Result<(), ApiError> {
        self.typed::<Empty>(Request::PolicySet(policy)).map(drop)
    }

    /// `stats`, panicking on an error reply.
    pub fn stats(&self) -> StatsReply {
        self.typed(Request::Stats(Empty {})).expect("stats")
    }

    /// One drop counter by reason name (e.g. `spoofed_ip`).
    pub fn drops(&self, reason: &str) -> u64 {
        let stats = self.stats();
        *stats
            .drops
            .get(reason)
            .unwrap_or_else(|| panic!("stats has no drop reason {reason:?}: {:?}", stats.drops))
    }

    /// `dump`, panicking on an error reply.
    pub fn dump(&self) -> DumpReply {
        self.typed(Request::Dump(Empty {})).expect("dump")
    }

    /// `trace`.
    pub fn trace(&self, packet: TraceRequest) -> Result<TraceReply, ApiError> {
        self.typed(Request::Trace(packet))
    }
}

/// Splits a reply line into its `ok` payload or error, panicking on anything
/// that is not a version-1 reply envelope.
pub fn parse_reply(text: &str) -> Reply {
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the reply is not JSON ({e}): {text}"));
    assert_eq!(
        value["version"].as_u64(),
        Some(u64::from(VERSION)),
        "the reply has no version {VERSION}: {text}"
    );
    match (value.get("ok"), value.get("error")) {
        (Some(ok), None) => Ok(ok.clone()),
        (None, Some(error)) => Err(serde_json::from_value(error.clone())
            .unwrap_or_else(|e| panic!("malformed error reply ({e}): {text}"))),
        _ => panic!("a reply needs exactly one of `ok` and `error`: {text}"),
    }
}

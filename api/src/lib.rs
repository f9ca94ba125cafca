//! tweed's two APIs as both their ends speak them: newline-delimited JSON
//! over `RUN_DIR/control.sock` (the control daemon; `control/API.md`) and
//! over the dataplane's `dataplane.sock` (`dataplane/API.md`). The CNI
//! plugin builds against this crate (and `tweed-sys`) alone, without the
//! daemon or the dataplane.
//!
//! Shared by both sockets (pure, but for the line client):
//! - [`error`]: the one error reply, [`ApiError`], and its kinds;
//! - [`envelope`] over [`json`]: the request envelope and its decoding order,
//!   generic over each protocol's types; [`line`](mod@line): a stream split into
//!   bounded request lines; [`line_client`]: one request line out, one reply
//!   line back.
//!
//! `control.sock`, at the crate's root:
//! - [`proto`], [`pod`], [`node`], [`policy`], [`service`]: the wire types, and
//!   the names of policies (`PolicyKind`, `PolicyKey`), which the daemon's
//!   policy model uses too;
//! - [`codec`]: lines to requests and replies to lines;
//! - [`client`]: a blocking client for the short-lived CLI and CNI plugin;
//! - `fixtures`: canned requests and replies for tests.
//!
//! `dataplane.sock`: [`dataplane`] (its wire types, codec and client). The
//! control API passes the dataplane's routes, stats and traces through as
//! they are.
//!
//! The servers' sides (validation that needs their state or rules, the
//! sockets) live in `tweed-control`'s and `tweed-dataplane`'s `api` modules.

pub mod client;
pub mod codec;
pub mod dataplane;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod fixtures;
pub mod json;
pub mod line;
pub mod line_client;
pub mod node;
pub mod pod;
pub mod policy;
pub mod proto;
pub mod service;

pub use client::{Client, ClientError};
pub use codec::{decode_request, decode_response, encode_request, encode_response};
pub use error::{ApiError, ErrorKind};
pub use proto::{Op, Request, ResponseBody, VERSION};

/// The socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The default run directory.
pub const DEFAULT_RUN_DIR: &str = "/run/tweed";

/// The socket path inside `run_dir`.
pub fn socket_path(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir.join(SOCKET_NAME)
}

//! The control daemon's API: newline-delimited JSON over `RUN_DIR/control.sock`
//! (see `control/API.md` for the protocol), used by the CNI plugin and the CLI.
//!
//! - [`proto`], [`pod`], [`node`], [`policy`]: the wire types (pure);
//! - [`codec`]: lines to requests and replies to lines (pure);
//! - [`validate`]: every check that needs no state (pure);
//! - [`server`]: the tokio socket server, peer authorisation and the
//!   per-connection loop; the work is a [`Handler`] supplied by the daemon;
//! - [`client`]: a blocking client for the short-lived CLI and CNI plugin.
//!
//! It mirrors the dataplane's API (same envelope, decoding order and error
//! shape) and reuses its types where they fit (routes, stats, trace), so a
//! reader of one knows the other. Everything a stranger can send is decoded
//! and checked by pure functions; the server only moves lines.

pub mod client;
pub mod codec;
#[doc(hidden)]
pub mod fixtures;
pub mod node;
pub mod pod;
pub mod policy;
pub mod proto;
pub mod server;
pub mod validate;

pub use client::{Client, ClientError};
pub use codec::{decode_request, decode_response, encode_request, encode_response};
pub use proto::{ApiError, ErrorKind, Op, Request, ResponseBody, VERSION};
pub use server::{Handler, LIMITS, MAX_LINE, Peer, ServeError, ServerHandle, serve, serve_with};

/// The socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The default run directory.
pub const DEFAULT_RUN_DIR: &str = "/run/tweed";

/// The socket path inside `run_dir`.
pub fn socket_path(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir.join(SOCKET_NAME)
}

//! The control daemon's API: newline-delimited JSON over `RUN_DIR/control.sock`
//! (see `control/API.md` for the protocol), used by the CNI plugin and the CLI.
//!
//! The clients' half is the `tweed-api` crate, re-exported here:
//!
//! - [`proto`], [`pod`], [`node`], [`policy`], [`service`]: the wire types (pure);
//! - [`codec`]: lines to requests and replies to lines (pure);
//! - [`client`]: a blocking client for the short-lived CLI and CNI plugin.
//!
//! The daemon's half:
//!
//! - [`validate`]: every check that needs no state (pure; it applies the
//!   policy model's label and namespace rules);
//! - [`server`]: the tokio socket server, peer authorisation and the
//!   per-connection loop; the work is a [`Handler`] supplied by the daemon.
//!
//! It shares the dataplane's envelope, decoding order and error type
//! (`tweed_api::{envelope, error}`) and passes its routes, stats and traces
//! through, so a reader of one knows the other. Everything a stranger can send is decoded
//! and checked by pure functions; the server only moves lines.

pub mod server;
pub mod validate;

pub use server::{Handler, LIMITS, MAX_LINE, Peer, ServeError, ServerHandle, serve, serve_with};
#[doc(hidden)]
pub use tweed_api::fixtures;
pub use tweed_api::{
    ApiError, Client, ClientError, DEFAULT_RUN_DIR, ErrorKind, Op, Request, ResponseBody,
    SOCKET_NAME, VERSION, client, codec, decode_request, decode_response, encode_request,
    encode_response, node, pod, policy, proto, service, socket_path,
};

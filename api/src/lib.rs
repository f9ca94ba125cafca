//! The control daemon's API as its clients speak it: newline-delimited JSON
//! over `RUN_DIR/control.sock` (see `control/API.md` for the protocol).
//! The CNI plugin builds against this crate alone, without the daemon.
//!
//! - [`proto`], [`pod`], [`node`], [`policy`], [`service`]: the wire types (pure), and
//!   the names of policies (`PolicyKind`, `PolicyKey`), which the daemon's
//!   policy model uses too;
//! - [`codec`]: lines to requests and replies to lines (pure);
//! - [`client`]: a blocking client for the short-lived CLI and CNI plugin;
//! - `fixtures`: canned requests and replies for tests (pure).
//!
//! The daemon's side (checks that need its policy rules, the socket server)
//! lives in `tweed-control`'s `api` module, which re-exports this crate.
//! Both mirror the dataplane's API (same envelope, decoding order and error
//! shape, from `tweed-dataplane`'s `api`) and reuse its types where they fit
//! (routes, stats and traces).

pub mod client;
pub mod codec;
#[doc(hidden)]
pub mod fixtures;
pub mod node;
pub mod pod;
pub mod policy;
pub mod proto;
pub mod service;

pub use client::{Client, ClientError};
pub use codec::{decode_request, decode_response, encode_request, encode_response};
pub use proto::{ApiError, ErrorKind, Op, Request, ResponseBody, VERSION};

/// The socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "control.sock";

/// The default run directory.
pub const DEFAULT_RUN_DIR: &str = "/run/tweed";

/// The socket path inside `run_dir`.
pub fn socket_path(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir.join(SOCKET_NAME)
}

//! The config API's server side: newline-delimited JSON over a Unix socket
//! (see `dataplane/API.md` for the protocol). The wire types, envelope,
//! codec and client are `tweed_api::dataplane`'s (and `tweed_api`'s shared
//! envelope and error), which the control daemon speaks too; here:
//!
//! - [`validate`]: every check that needs no state, and the conversion of
//!   rule sets to the classifier's model (pure);
//! - [`convert`]: wire types to and from the tables' own (pure);
//! - [`report`]: the `stats` and `dump` answers filled from counters and
//!   tables (pure);
//! - [`trace`]: the `trace` answer, from the pipeline's stages (pure);
//! - [`state`]: the state file a restarted dataplane rebuilds from;
//! - [`server`]: the socket, peer authorisation and the per-connection loop;
//!   the state-changing work is a [`Handler`] supplied by the daemon;
//! - [`limits`]: the connections, time and memory a server gives its
//!   clients.
//!
//! The split keeps everything a stranger can send decoded and checked by pure
//! functions that tests and fuzzers call directly; the server only moves
//! lines between the socket and those functions.

pub mod convert;
pub mod limits;
pub mod report;
pub mod server;
pub mod state;
pub mod trace;
pub mod validate;

pub use server::{Handler, LIMITS, MAX_LINE, ServerHandle, serve, serve_with};
pub use state::{StateFile, load as load_state, save as save_state};
pub use trace::{Names, trace_reply};

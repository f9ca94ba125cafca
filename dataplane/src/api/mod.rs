//! The config API: newline-delimited JSON over a Unix socket (see
//! `dataplane/API.md` for the protocol).
//!
//! - [`proto`]: the wire types of requests, replies and errors (pure);
//! - [`report`]: the `stats` and `dump` answers (pure);
//! - [`envelope`]: the NDJSON envelope and its decoding order, generic over
//!   the protocol (pure; shared with the control daemon's API);
//! - [`json`]: reading a request line without a JSON tree, repeated keys
//!   refused (pure);
//! - [`codec`]: lines to requests and replies to lines (pure);
//! - [`validate`]: every check that needs no state, and the conversion of
//!   rule sets to the classifier's model (pure);
//! - [`trace`]: the `trace` answer, from the pipeline's stages (pure);
//! - [`state`]: the state file a restarted dataplane rebuilds from;
//! - [`server`]: the socket, peer authorisation and the per-connection loop;
//!   the state-changing work is a [`Handler`] supplied by the daemon;
//! - [`limits`]: the connections, time and memory a server gives its
//!   clients;
//! - [`line`](mod@line): splitting a stream into bounded request lines (pure);
//! - [`client`]: a blocking client for the control daemon and tests, over
//!   [`line_client`], the line transport shared with the control daemon.
//!
//! The split keeps everything a stranger can send decoded and checked by pure
//! functions that tests and fuzzers call directly; the server only moves
//! lines between the socket and those functions.

pub mod client;
pub mod codec;
pub mod envelope;
pub mod json;
pub mod limits;
pub mod line;
pub mod line_client;
pub mod proto;
pub mod report;
pub mod server;
pub mod state;
pub mod trace;
pub mod validate;
pub mod values;

pub use client::{Client, ClientError};
pub use codec::{decode_request, decode_response, encode_request, encode_response};
pub use proto::{ApiError, Envelope, ErrorKind, Op, Request, ResponseBody, VERSION};
pub use server::{Handler, LIMITS, MAX_LINE, ServerHandle, serve, serve_with};
pub use state::{StateFile, load as load_state, save as save_state};
pub use trace::{Names, TraceReply};

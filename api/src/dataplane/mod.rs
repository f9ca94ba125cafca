//! `dataplane.sock`: the dataplane's config API as its clients (the control
//! daemon, the CLI's trace and stats, the tests) and the dataplane itself
//! speak it. See `dataplane/API.md` for the protocol.
//!
//! - [`proto`]: requests, replies and errors (the error is the crate's one
//!   [`ApiError`](crate::ApiError));
//! - [`values`]: values the dataplane's tables hold as they are (MAC, port
//!   and peer indices, a peer's encapsulation, port ranges) and route targets
//!   and verdicts;
//! - [`service`]: a Service as `service_set` carries it (frontends,
//!   endpoints, traffic policies, affinity);
//! - [`report`]: the `stats` and `dump` answers;
//! - [`trace`]: the `trace` answer;
//! - [`codec`]: lines to requests and replies to lines;
//! - [`client`]: a blocking client.
//!
//! Pure but for the client. The dataplane decodes, validates and answers with
//! these types; it converts them to and from its tables' own.

pub mod client;
pub mod codec;
pub mod proto;
pub mod report;
pub mod service;
pub mod trace;
pub mod values;

pub use client::{Client, ClientError};
pub use codec::{decode_request, decode_response, encode_request, encode_response};
pub use proto::{Envelope, Op, Request, ResponseBody, VERSION};
pub use trace::TraceReply;

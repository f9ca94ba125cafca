//! Lines to requests and replies to lines, for this API's types. Pure: no
//! I/O. The envelope and its decoding order (`bad_json`, then
//! `unsupported_version`, then `invalid` naming the failing field) are
//! [`crate::envelope`]'s, shared with the dataplane's API.

use super::proto::{ApiError, Op, Request, ResponseBody, SPEAKER, VERSION};
use crate::envelope;

/// Decodes one request line (without its newline).
pub fn decode_request(line: &str) -> Result<Request, ApiError> {
    envelope::decode_request(line, SPEAKER)
}

/// Encodes a request as one line (without its newline).
pub fn encode_request(request: &Request) -> String {
    envelope::encode_request(request, VERSION)
}

/// Encodes a reply as one line (without its newline).
pub fn encode_response(response: &Result<ResponseBody, ApiError>) -> String {
    envelope::encode_response(response, VERSION)
}

/// Decodes a reply line to a request of kind `op`. The outer `Err` is a
/// protocol error (the line is not a reply this client understands); the
/// inner result is the daemon's answer.
pub fn decode_response(op: Op, line: &str) -> Result<Result<ResponseBody, ApiError>, String> {
    envelope::decode_response(line, VERSION, op.name(), |ok| ResponseBody::decode(op, ok))
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

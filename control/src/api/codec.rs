//! Lines to requests and replies to lines. Pure: no I/O.
//!
//! A request line is decoded in steps so that each failure gets its own
//! kind, in the dataplane API's order: not JSON is `bad_json`; a `version`
//! other than [`VERSION`] is `unsupported_version` (checked before the
//! request itself, so a newer client learns it is talking to an older
//! daemon, not that its fields are wrong); anything else that does not fit
//! the types is `invalid`, with serde's message prefixed by the path of the
//! failing field (`request.pod_add.mtu: invalid value ...`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::proto::{ApiError, ErrorKind, Op, Request, ResponseBody, VERSION};

/// Decodes one request line (without its newline).
pub fn decode_request(line: &str) -> Result<Request, ApiError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| ApiError::new(ErrorKind::BadJson, format!("the request is not JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::invalid(
            "the request must be a JSON object {\"version\":1,\"request\":{...}}",
        ));
    };
    match fields.get("version") {
        None => {
            return Err(ApiError::invalid(format!(
                "missing field `version`: add \"version\":{VERSION}"
            )));
        }
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        Some(Value::Number(n)) => {
            return Err(ApiError::new(
                ErrorKind::UnsupportedVersion,
                format!("version {n} is not supported; this daemon speaks version {VERSION}"),
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`version` must be the number {VERSION}, not {other}"
            )));
        }
    }
    if let Some(unknown) = fields.keys().find(|k| *k != "version" && *k != "request") {
        return Err(ApiError::invalid(format!(
            "unknown field `{unknown}` in the envelope, expected `version` and `request`"
        )));
    }
    let request = fields
        .remove("request")
        .ok_or_else(|| ApiError::invalid("missing field `request`"))?;
    serde_path_to_error::deserialize(request).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::invalid(format!("request: {inner}"))
        } else {
            ApiError::invalid(format!("request.{path}: {inner}"))
        }
    })
}

/// Encodes a request as one line (without its newline).
pub fn encode_request(request: &Request) -> String {
    let envelope = EnvelopeRef {
        version: VERSION,
        request,
    };
    // Serializing these types cannot fail: every map key is a string.
    serde_json::to_string(&envelope).unwrap_or_default()
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    version: u32,
    request: &'a Request,
}

/// The reply envelope as written.
#[derive(Serialize)]
struct ReplyOut<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<&'a ResponseBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ApiError>,
}

/// The reply envelope as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyIn {
    version: u32,
    #[serde(default)]
    ok: Option<Value>,
    #[serde(default)]
    error: Option<ApiError>,
}

/// Encodes a reply as one line (without its newline; serde_json escapes any
/// newline inside strings).
pub fn encode_response(response: &Result<ResponseBody, ApiError>) -> String {
    let (ok, error) = match response {
        Ok(body) => (Some(body), None),
        Err(error) => (None, Some(error)),
    };
    let reply = ReplyOut {
        version: VERSION,
        ok,
        error,
    };
    serde_json::to_string(&reply).unwrap_or_else(|e| {
        // Unreachable with these types; still answer with a well-formed line.
        let error = ApiError::io("encoding the reply", e);
        serde_json::to_string(&ReplyOut {
            version: VERSION,
            ok: None,
            error: Some(&error),
        })
        .unwrap_or_default()
    })
}

/// Decodes a reply line to a request of kind `op`. The outer `Err` is a
/// protocol error (the line is not a reply this client understands); the
/// inner result is the daemon's answer.
pub fn decode_response(op: Op, line: &str) -> Result<Result<ResponseBody, ApiError>, String> {
    let reply: ReplyIn = serde_json::from_str(line)
        .map_err(|e| format!("the reply is not a valid envelope: {e}"))?;
    if reply.version != VERSION {
        return Err(format!(
            "the reply has version {}, this client speaks {VERSION}",
            reply.version
        ));
    }
    match (reply.ok, reply.error) {
        (Some(ok), None) => ResponseBody::decode(op, ok)
            .map(Ok)
            .map_err(|e| format!("the `ok` payload of a {} reply: {e}", op.name())),
        (None, Some(error)) => Ok(Err(error)),
        _ => Err("the reply must have exactly one of `ok` and `error`".to_owned()),
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;

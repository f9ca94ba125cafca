//! Lines to requests and replies to lines. Pure: no I/O.
//!
//! A request line is decoded in steps so that each failure gets its own
//! kind: not JSON is `bad_json`; a `version` other than [`VERSION`] is
//! `unsupported_version` (checked before the request itself, so a newer
//! client learns it is talking to an older server, not that its fields are
//! wrong); anything else that does not fit the types is `invalid`, with
//! serde's message, which names the unknown field or op or the bad value.

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
                format!("version {n} is not supported; this dataplane speaks version {VERSION}"),
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
    // Decode with the path of the failing field, so a bad value is named:
    // "request.port_add.ipv4: invalid IPv4 address syntax".
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
    let reply = match response {
        Ok(body) => ReplyOut {
            version: VERSION,
            ok: Some(body),
            error: None,
        },
        Err(error) => ReplyOut {
            version: VERSION,
            ok: None,
            error: Some(error),
        },
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
/// inner result is the server's answer.
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
mod tests {
    use super::super::proto::{Empty, NameArgs, RouteSpec, RouteVia};
    use super::*;

    fn kind(line: &str) -> ErrorKind {
        decode_request(line).expect_err(line).kind
    }

    #[test]
    fn decodes_a_valid_request() {
        let request = decode_request(
            r#"{"version":1,"request":{"route_set":{"prefix":"0.0.0.0/0","via":"host"}}}"#,
        )
        .expect("valid");
        assert_eq!(
            request,
            Request::RouteSet(RouteSpec {
                prefix: "0.0.0.0/0".parse().expect("cidr"),
                via: RouteVia::Host,
            })
        );
    }

    #[test]
    fn request_round_trips_through_encode() {
        for request in [
            Request::PortList(Empty {}),
            Request::PeerRemove(NameArgs {
                name: "node2".into(),
            }),
        ] {
            let line = encode_request(&request);
            assert!(!line.contains('\n'));
            assert_eq!(decode_request(&line).expect("round trip"), request);
        }
    }

    #[test]
    fn not_json_is_bad_json_with_serde_message() {
        let err = decode_request("{\"version\":1,").expect_err("truncated");
        assert_eq!(err.kind, ErrorKind::BadJson);
        assert!(err.message.contains("EOF"), "{}", err.message);
        assert_eq!(kind("hello"), ErrorKind::BadJson);
        assert_eq!(kind(""), ErrorKind::BadJson);
    }

    #[test]
    fn other_versions_are_unsupported_even_with_unknown_ops() {
        assert_eq!(
            kind(r#"{"version":2,"request":{"port_list":{}}}"#),
            ErrorKind::UnsupportedVersion
        );
        assert_eq!(
            kind(r#"{"version":0,"request":{"teleport":{}}}"#),
            ErrorKind::UnsupportedVersion
        );
        assert_eq!(
            kind(r#"{"version":"1","request":{"port_list":{}}}"#),
            ErrorKind::Invalid
        );
        assert_eq!(kind(r#"{"request":{"port_list":{}}}"#), ErrorKind::Invalid);
    }

    #[test]
    fn unknown_fields_and_ops_are_invalid_and_named() {
        let cases = [
            (r#"{"version":1,"request":{"teleport":{}}}"#, "teleport"),
            (
                r#"{"version":1,"request":{"port_list":{"verbose":true}}}"#,
                "verbose",
            ),
            (
                r#"{"version":1,"request":{"port_remove":{"name":"a/b","force":1}}}"#,
                "force",
            ),
            (
                r#"{"version":1,"request":{"port_list":{}},"extra":1}"#,
                "extra",
            ),
            (
                r#"{"version":1,"request":{"policy_set":{"name":"a/b","ingress":{"default":"allow","rules":[{"id":1,"action":"allow","prot":6}]},"egress":{"default":"allow"}}}}"#,
                "prot",
            ),
        ];
        for (line, named) in cases {
            let err = decode_request(line).expect_err(line);
            assert_eq!(err.kind, ErrorKind::Invalid, "{line}");
            assert!(err.message.contains(named), "{line}: {}", err.message);
        }
    }

    #[test]
    fn malformed_values_are_invalid() {
        for line in [
            r#"{"version":1,"request":{"route_remove":{"prefix":"10.0.0.0/33"}}}"#,
            r#"{"version":1,"request":{"route_remove":{"prefix":"banana"}}}"#,
            r#"{"version":1,"request":{"port_add":{"name":"a/b","netns":"/x","ifname":"eth0","mac":"zz"}}}"#,
            r#"{"version":1,"request":{"peer_set":{"name":"n","subnets":["10.0.0.0/8"],"underlay_ip":"1.2.3.4","vtep_mac":"02:00:00:00:00:01","backend":"gre"}}}"#,
            r#"{"version":1,"request":"port_list"}"#,
            r#"{"version":1,"request":{"port_list":{},"peer_list":{}}}"#,
            r#"[1,2]"#,
        ] {
            assert_eq!(kind(line), ErrorKind::Invalid, "{line}");
        }
    }

    #[test]
    fn responses_are_one_line_and_decode_back() {
        let ok = Ok(ResponseBody::empty());
        assert_eq!(encode_response(&ok), r#"{"version":1,"ok":{}}"#);
        let err = Err(ApiError::invalid("name: a\nnewline"));
        let line = encode_response(&err);
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            r#"{"version":1,"error":{"kind":"invalid","message":"name: a\nnewline"}}"#
        );
        assert_eq!(decode_response(Op::PortRemove, &line).expect("reply"), err);
        assert_eq!(
            decode_response(Op::PeerSet, r#"{"version":1,"ok":{}}"#).expect("reply"),
            ok
        );
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        for line in [
            "nope",
            r#"{"version":2,"ok":{}}"#,
            r#"{"version":1}"#,
            r#"{"version":1,"ok":{},"error":{"kind":"io","message":"x"}}"#,
            r#"{"version":1,"ok":{"unexpected":1}}"#,
            r#"{"version":1,"error":{"kind":"weird","message":"x"}}"#,
        ] {
            assert!(decode_response(Op::PeerSet, line).is_err(), "{line}");
        }
    }

    #[test]
    fn every_error_kind_has_its_wire_name() {
        for kind in [
            ErrorKind::BadJson,
            ErrorKind::UnsupportedVersion,
            ErrorKind::Invalid,
            ErrorKind::Conflict,
            ErrorKind::NotFound,
            ErrorKind::Io,
            ErrorKind::Forbidden,
        ] {
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let line = encode_response(&Err(ApiError::new(kind, "m")));
            assert_eq!(
                decode_response(Op::Stats, &line).expect("reply"),
                Err(ApiError::new(kind, "m"))
            );
        }
    }
}

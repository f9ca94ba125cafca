//! Lines to requests and replies to lines, for this API's types. Pure: no
//! I/O. The envelope and its decoding order (`bad_json`, then
//! `unsupported_version`, then `invalid` naming the failing field) are
//! [`crate::envelope`]'s, shared with the control daemon's API.

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
/// inner result is the server's answer.
pub fn decode_response(op: Op, line: &str) -> Result<Result<ResponseBody, ApiError>, String> {
    envelope::decode_response(line, VERSION, op.name(), |ok| ResponseBody::decode(op, ok))
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Empty, NameArgs, RouteSpec, RouteVia};
    use super::*;
    use crate::ErrorKind;

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

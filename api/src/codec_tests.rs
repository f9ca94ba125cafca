use super::*;
use crate::fixtures;
use crate::proto::{Empty, ErrorKind, NameArgs};

fn kind(line: &str) -> ErrorKind {
    decode_request(line).expect_err(line).kind
}

#[test]
fn every_request_round_trips_through_encode() {
    for request in fixtures::requests() {
        let line = encode_request(&request);
        assert!(!line.contains('\n'));
        assert_eq!(decode_request(&line).expect(&line), request);
    }
}

#[test]
fn optional_fields_default() {
    let request = decode_request(
        r#"{"version":1,"request":{"pod_add":{"container_id":"c1","netns":"/proc/1/ns/net","ifname":"eth0"}}}"#,
    )
    .expect("valid");
    let Request::PodAdd(args) = request else {
        panic!("not a pod_add: {request:?}");
    };
    assert!(args.labels.is_empty());
    assert_eq!((args.namespace, args.name, args.mtu), (None, None, None));
    let request = decode_request(
        r#"{"version":1,"request":{"peer_add":{"name":"p","subnets":["10.9.0.0/16"],"underlay_ip":"10.0.0.9","vtep_mac":"02:00:00:00:00:09"}}}"#,
    )
    .expect("valid");
    let Request::PeerAdd(args) = request else {
        panic!("not a peer_add: {request:?}");
    };
    assert_eq!(args.backend, crate::proto::Backend::Vxlan);
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
        kind(r#"{"version":2,"request":{"status":{}}}"#),
        ErrorKind::UnsupportedVersion
    );
    assert_eq!(
        kind(r#"{"version":0,"request":{"teleport":{}}}"#),
        ErrorKind::UnsupportedVersion
    );
    assert_eq!(
        kind(r#"{"version":"1","request":{"status":{}}}"#),
        ErrorKind::Invalid
    );
    assert_eq!(kind(r#"{"request":{"status":{}}}"#), ErrorKind::Invalid);
    assert_eq!(kind(r#"[1]"#), ErrorKind::Invalid);
}

#[test]
fn unknown_fields_ops_and_bad_values_are_invalid_and_named() {
    let cases = [
        (r#"{"version":1,"request":{"teleport":{}}}"#, "teleport"),
        (
            r#"{"version":1,"request":{"status":{"verbose":true}}}"#,
            "verbose",
        ),
        (
            r#"{"version":1,"request":{"pod_list":{}},"extra":1}"#,
            "extra",
        ),
        (
            r#"{"version":1,"request":{"pod_get":{"container_id":"c"}}}"#,
            "ifname",
        ),
        (
            r#"{"version":1,"request":{"pod_add":{"container_id":"c","netns":"/x","ifname":"eth0","mtu":70000}}}"#,
            "request.pod_add.mtu",
        ),
        (
            r#"{"version":1,"request":{"peer_add":{"name":"p","subnets":["10.0.0.0/33"],"underlay_ip":"10.0.0.9","vtep_mac":"02:00:00:00:00:09"}}}"#,
            "request.peer_add.subnets[0]",
        ),
        (
            r#"{"version":1,"request":{"peer_add":{"name":"p","subnets":["10.9.0.0/16"],"underlay_ip":"10.0.0.9","vtep_mac":"zz"}}}"#,
            "request.peer_add.vtep_mac",
        ),
        (
            r#"{"version":1,"request":{"gc":{"valid":[{"container_id":"c","ifname":"eth0","x":1}]}}}"#,
            "request.gc.valid[0]",
        ),
    ];
    for (line, named) in cases {
        let err = decode_request(line).expect_err(line);
        assert_eq!(err.kind, ErrorKind::Invalid, "{line}");
        assert!(err.message.contains(named), "{line}: {}", err.message);
    }
}

#[test]
fn responses_are_one_line_and_decode_back() {
    let ok = Ok(ResponseBody::empty());
    assert_eq!(encode_response(&ok), r#"{"version":1,"ok":{}}"#);
    assert_eq!(
        decode_response(Op::PeerAdd, r#"{"version":1,"ok":{}}"#),
        Ok(ok)
    );
    let pod = Ok(ResponseBody::Pod(fixtures::pod()));
    assert_eq!(decode_response(Op::PodGet, &encode_response(&pod)), Ok(pod));
    let err = Err(ApiError::invalid("name: a\nnewline"));
    let line = encode_response(&err);
    assert!(!line.contains('\n'));
    assert_eq!(
        line,
        r#"{"version":1,"error":{"kind":"invalid","message":"name: a\nnewline"}}"#
    );
    assert_eq!(decode_response(Op::PodDel, &line), Ok(err));
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
        assert!(decode_response(Op::PeerAdd, line).is_err(), "{line}");
    }
}

#[test]
fn every_error_kind_has_its_wire_name_and_round_trips() {
    for kind in ErrorKind::ALL {
        let json = serde_json::to_string(&kind).expect("serialize");
        assert_eq!(json, format!("\"{}\"", kind.name()));
        let line = encode_response(&Err(ApiError::new(kind, "m")));
        assert_eq!(
            decode_response(Op::Stats, &line),
            Ok(Err(ApiError::new(kind, "m")))
        );
    }
}

#[test]
fn simple_requests_have_stable_lines() {
    assert_eq!(
        encode_request(&Request::Status(Empty {})),
        r#"{"version":1,"request":{"status":{}}}"#
    );
    assert_eq!(
        encode_request(&Request::PeerRemove(NameArgs { name: "e".into() })),
        r#"{"version":1,"request":{"peer_remove":{"name":"e"}}}"#
    );
}

#[test]
fn a_label_given_twice_is_invalid_not_the_last_one_wins() {
    let err = decode_request(
        r#"{"version":1,"request":{"pod_add":{"container_id":"c","netns":"/x","ifname":"eth0","labels":{"app":"a","app":"b"}}}}"#,
    )
    .expect_err("a repeated key");
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message
            .starts_with("request.pod_add.labels: key `app` is given twice"),
        "{}",
        err.message
    );
}

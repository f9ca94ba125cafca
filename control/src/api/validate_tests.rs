use super::*;
use crate::api::codec::decode_request;
use crate::api::fixtures;

/// Decodes `line` (which must decode) and validates it.
fn check(line: &str) -> Result<(), ApiError> {
    request(&decode_request(line).expect(line))
}

fn message(line: &str) -> String {
    let err = check(line).expect_err(line);
    assert_eq!(err.kind, crate::api::ErrorKind::Invalid, "{line}");
    err.message
}

#[test]
fn the_fixture_requests_are_valid() {
    for r in fixtures::requests() {
        assert_eq!(request(&r), Ok(()), "{r:?}");
    }
}

#[test]
fn container_ids() {
    assert!(container_id("f", "abc_DEF.1-2").is_ok());
    assert!(container_id("f", &"a".repeat(MAX_CONTAINER_ID)).is_ok());
    for bad in ["", "a b", "a/b", "a:b", "é"] {
        let err = container_id("f", bad).expect_err(bad);
        assert!(err.message.starts_with("f: "), "{}", err.message);
    }
    assert!(container_id("f", &"a".repeat(MAX_CONTAINER_ID + 1)).is_err());
}

#[test]
fn pod_add_fields_are_named() {
    let cases = [
        (
            r#""container_id":"","netns":"/x","ifname":"eth0""#,
            "pod_add.container_id: must not be empty",
        ),
        (
            r#""container_id":"c","netns":"x","ifname":"eth0""#,
            "pod_add.netns: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"a/b""#,
            "pod_add.ifname: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"eth0:1""#,
            "pod_add.ifname: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"abcdefghijklmnop""#,
            "pod_add.ifname: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"eth0","namespace":"a b""#,
            "pod_add.namespace: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"eth0","name":"a/b""#,
            "pod_add.name: ",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"eth0","name":"""#,
            "pod_add.name: must not be empty",
        ),
        (
            r#""container_id":"c","netns":"/x","ifname":"eth0","mtu":575"#,
            "pod_add.mtu: 575 is outside 576..=65535",
        ),
    ];
    for (args, expected) in cases {
        let line = format!(r#"{{"version":1,"request":{{"pod_add":{{{args}}}}}}}"#);
        let msg = message(&line);
        assert!(msg.starts_with(expected), "{line}: {msg}");
    }
    let ok = r#"{"version":1,"request":{"pod_add":{"container_id":"c","netns":"/x","ifname":"eth0","mtu":576}}}"#;
    assert_eq!(check(ok), Ok(()));
}

#[test]
fn pod_keys_are_checked_with_their_position() {
    let msg = message(
        r#"{"version":1,"request":{"gc":{"valid":[{"container_id":"c","ifname":"eth0"},{"container_id":"c","ifname":""}]}}}"#,
    );
    assert!(msg.starts_with("gc.valid[1].ifname: "), "{msg}");
    let msg =
        message(r#"{"version":1,"request":{"pod_get":{"container_id":"c d","ifname":"eth0"}}}"#);
    assert!(msg.starts_with("pod_get.container_id: "), "{msg}");
    let msg = message(r#"{"version":1,"request":{"pod_del":{"container_id":"c","ifname":"a b"}}}"#);
    assert!(msg.starts_with("pod_del.ifname: "), "{msg}");
    assert_eq!(
        check(r#"{"version":1,"request":{"pod_del":{"container_id":"c"}}}"#),
        Ok(())
    );
}

#[test]
fn peer_add_fields_are_named() {
    let peer = |subnets: &str, ip: &str, mac: &str| {
        format!(
            r#"{{"version":1,"request":{{"peer_add":{{"name":"p","subnets":{subnets},"underlay_ip":"{ip}","vtep_mac":"{mac}"}}}}}}"#
        )
    };
    let mac = "02:00:00:00:00:09";
    let cases = [
        (peer("[]", "10.0.0.9", mac), "peer_add.subnets: "),
        (
            peer(r#"["10.9.0.1/16"]"#, "10.0.0.9", mac),
            "peer_add.subnets[0]: 10.9.0.1/16 has host bits",
        ),
        (
            peer(r#"["10.9.0.0/16","10.9.0.0/16"]"#, "10.0.0.9", mac),
            "peer_add.subnets[1]: ",
        ),
        (
            peer(r#"["10.9.0.0/16"]"#, "0.0.0.0", mac),
            "peer_add.underlay_ip: ",
        ),
        (
            peer(r#"["10.9.0.0/16"]"#, "ff02::1", mac),
            "peer_add.underlay_ip: ",
        ),
        (
            peer(r#"["10.9.0.0/16"]"#, "10.0.0.9", "01:00:00:00:00:09"),
            "peer_add.vtep_mac: ",
        ),
    ];
    for (line, expected) in cases {
        let msg = message(&line);
        assert!(msg.starts_with(expected), "{line}: {msg}");
    }
    let msg = message(r#"{"version":1,"request":{"peer_remove":{"name":""}}}"#);
    assert!(msg.starts_with("peer_remove.name: "), "{msg}");
}

#[test]
fn trace_uses_the_dataplane_checks() {
    let msg = message(
        r#"{"version":1,"request":{"trace":{"from":{"host":{}},"src":"10.0.0.1","dst":"fd00::1","protocol":"tcp"}}}"#,
    );
    assert!(msg.starts_with("trace.dst: "), "{msg}");
    let msg = message(
        r#"{"version":1,"request":{"trace":{"from":{"port":"nopod"},"src":"10.0.0.1","dst":"10.0.0.2","protocol":"tcp"}}}"#,
    );
    assert!(msg.starts_with("trace.from.port: "), "{msg}");
    let msg = message(
        r#"{"version":1,"request":{"trace":{"from":{"host":{}},"src":"10.0.0.1","dst":"10.0.0.2","protocol":"gre"}}}"#,
    );
    assert!(msg.starts_with("trace.protocol: "), "{msg}");
}

#[test]
fn pod_add_labels_follow_the_rules_of_tweed_label() {
    let add = |labels: &str| {
        format!(
            r#"{{"version":1,"request":{{"pod_add":{{"container_id":"c","netns":"/x","ifname":"eth0","labels":{labels}}}}}}}"#
        )
    };
    assert_eq!(
        check(&add(r#"{"app":"web","example.com/tier":"a-1"}"#)),
        Ok(())
    );
    for (labels, field) in [
        (r#"{"bad key":"x"}"#, "pod_add.labels"),
        (r#"{"-app":"x"}"#, "pod_add.labels"),
        (r#"{"app":"not ok!"}"#, "pod_add.labels.app"),
    ] {
        let line = add(labels);
        let text = message(&line);
        assert!(text.starts_with(field), "{line}: {text}");
        // `tweed label pod` refuses the same.
        let label = format!(
            r#"{{"version":1,"request":{{"label_pod":{{"namespace":"n","name":"p","labels":{labels}}}}}}}"#
        );
        assert!(check(&label).is_err(), "{label}");
    }
}

//! Tests of the stateless checks, driven through the wire form where it matters.

use super::*;
use tweed_api::dataplane::codec::decode_request;
use tweed_api::dataplane::proto::{ErrorKind, MacAddr, PortRangeSpec, RuleSpec};

/// Decodes and validates `request` (the JSON of the `request` field).
fn check(request: &str) -> Result<(), ApiError> {
    let line = format!(r#"{{"version":1,"request":{request}}}"#);
    super::request(&decode_request(&line)?)
}

/// Asserts `request` is refused as invalid with a message containing `needle`.
fn refused(request: &str, needle: &str) {
    let err = check(request).expect_err(request);
    assert_eq!(err.kind, ErrorKind::Invalid, "{request}");
    assert!(
        err.message.contains(needle),
        "{request}: {:?} lacks {needle:?}",
        err.message
    );
}

fn port_add(extra: &str) -> String {
    format!(
        r#"{{"port_add":{{"name":"default/web","netns":"/run/netns/x","ifname":"eth0"{extra}}}}}"#
    )
}

#[test]
fn a_good_port_add_passes() {
    check(&port_add(
        r#","ipv4":"10.244.1.2","ipv6":"fd00::2","mac":"02:00:00:00:00:01","mtu":1450"#,
    ))
    .expect("valid");
    check(&port_add(r#","ipv6":"fd00::2""#)).expect("v6 only");
}

#[test]
fn port_add_fields_are_checked() {
    refused(&port_add(""), "at least one");
    refused(&port_add(r#","ipv4":"127.0.0.1""#), "port_add.ipv4");
    refused(&port_add(r#","ipv4":"0.0.0.0""#), "unspecified");
    refused(&port_add(r#","ipv4":"224.0.0.1""#), "multicast");
    refused(&port_add(r#","ipv4":"169.254.1.1""#), "link-local");
    refused(&port_add(r#","ipv6":"ff02::1""#), "port_add.ipv6");
    refused(&port_add(r#","ipv6":"::1""#), "loopback");
    refused(&port_add(r#","ipv4":"10.0.0.1","mtu":575"#), "port_add.mtu");
    refused(
        &port_add(r#","ipv4":"10.0.0.1","mtu":65536"#),
        "port_add.mtu",
    );
    refused(&port_add(r#","ipv6":"fd00::1","mtu":1279"#), "1280");
    check(&port_add(r#","ipv4":"10.0.0.1","mtu":576"#)).expect("576 is fine for v4");
    refused(
        &port_add(r#","ipv4":"10.0.0.1","mac":"01:00:5e:00:00:01""#),
        "port_add.mac",
    );
    refused(
        &port_add(r#","ipv4":"10.0.0.1","mac":"00:00:00:00:00:00""#),
        "port_add.mac",
    );
}

#[test]
fn bad_mac_strings_are_invalid_at_decode() {
    refused(
        &port_add(r#","ipv4":"10.0.0.1","mac":"02:00:00:00:00""#),
        "MAC address",
    );
    refused(
        &port_add(r#","ipv4":"10.0.0.1","mac":"02:00:00:00:00:0g""#),
        "MAC address",
    );
}

#[test]
fn names_are_checked() {
    for (name, needle) in [
        ("", "empty"),
        ("web", "NAMESPACE/POD"),
        ("/web", "NAMESPACE/POD"),
        ("default/", "NAMESPACE/POD"),
        ("a/b/c", "NAMESPACE/POD"),
        ("default/we b", "whitespace"),
        ("default/we\\tb", "whitespace"),
        ("default/\\u0007", "control"),
    ] {
        refused(&format!(r#"{{"port_remove":{{"name":"{name}"}}}}"#), needle);
    }
    let long = format!("ns/{}", "p".repeat(MAX_PORT_NAME - 2));
    refused(
        &format!(r#"{{"port_remove":{{"name":"{long}"}}}}"#),
        &MAX_PORT_NAME.to_string(),
    );
    let ok = format!("ns/{}", "p".repeat(MAX_PORT_NAME - 3));
    check(&format!(r#"{{"port_remove":{{"name":"{ok}"}}}}"#)).expect("a port name at the limit");
    let peer = "n".repeat(MAX_NAME + 1);
    refused(&format!(r#"{{"peer_remove":{{"name":"{peer}"}}}}"#), "253");
    check(r#"{"peer_remove":{"name":"node2"}}"#).expect("peer names need no slash");
}

/// Found by the `control_api` fuzz target: a Kubernetes pod may have a
/// 63-character namespace and a 253-character name, and the control daemon
/// adds `:IFNAME` and `@CONTAINER` to its port name; the dataplane refused
/// such a port after the daemon had accepted the pod and taken its address.
#[test]
fn the_longest_kubernetes_pod_fits_a_port_name() {
    let name = format!(
        "{}/{}:net15characters@0123456789ab",
        "n".repeat(63),
        "p".repeat(253)
    );
    check(&format!(
        r#"{{"port_add":{{"name":"{name}","netns":"/run/netns/x","ifname":"eth0","ipv4":"10.244.1.2"}}}}"#
    ))
    .expect("the longest Kubernetes pod's port name");
}

#[test]
fn ifname_and_netns_are_checked() {
    let with = |ifname: &str, netns: &str| {
        format!(
            r#"{{"port_add":{{"name":"a/b","netns":"{netns}","ifname":"{ifname}","ipv4":"10.0.0.1"}}}}"#
        )
    };
    check(&with("eth0", "/proc/42/ns/net")).expect("valid");
    refused(&with("", "/run/netns/x"), "port_add.ifname");
    refused(&with("0123456789abcdef", "/run/netns/x"), "1 to 15");
    refused(&with("a/b", "/run/netns/x"), "port_add.ifname");
    refused(&with("et h0", "/run/netns/x"), "port_add.ifname");
    refused(&with("eth0", "run/netns/x"), "absolute");
}

fn peer(subnets: &str, underlay: &str, mac: &str) -> String {
    format!(
        r#"{{"peer_set":{{"name":"node2","subnets":{subnets},"underlay_ip":"{underlay}","vtep_mac":"{mac}","backend":"vxlan"}}}}"#
    )
}

#[test]
fn peers_are_checked() {
    let mac = "02:00:00:00:00:02";
    check(&peer(
        r#"["10.244.2.0/24","fd00:2::/64"]"#,
        "192.168.0.2",
        mac,
    ))
    .expect("valid");
    check(&peer(r#"["10.244.2.0/24"]"#, "127.0.0.2", mac)).expect("loopback underlay for tests");
    refused(&peer("[]", "192.168.0.2", mac), "peer_set.subnets");
    refused(
        &peer(r#"["10.244.2.1/24"]"#, "192.168.0.2", mac),
        "10.244.2.1/24",
    );
    refused(
        &peer(r#"["10.244.2.0/24","10.244.2.0/24"]"#, "192.168.0.2", mac),
        "twice",
    );
    refused(
        &peer(r#"["10.244.2.0/24"]"#, "0.0.0.0", mac),
        "peer_set.underlay_ip",
    );
    refused(
        &peer(r#"["10.244.2.0/24"]"#, "239.1.1.1", mac),
        "peer_set.underlay_ip",
    );
    refused(
        &peer(r#"["10.244.2.0/24"]"#, "192.168.0.2", "03:00:00:00:00:02"),
        "vtep_mac",
    );
    refused(
        &peer(r#"["10.244.2.0/33"]"#, "192.168.0.2", mac),
        "invalid IP address syntax",
    );
}

#[test]
fn peer_source_ports_are_a_range() {
    let with = |ports: &str| {
        format!(
            r#"{{"peer_set":{{"name":"node2","subnets":["10.244.2.0/24"],"underlay_ip":"192.168.0.2","vtep_mac":"02:00:00:00:00:02","backend":"vxlan","source_ports":{ports}}}}}"#
        )
    };
    check(&with(r#"{"first":61000,"last":61007}"#)).expect("valid");
    check(&with(r#"{"first":61000,"last":61000}"#)).expect("one port");
    refused(&with(r#"{"first":0,"last":7}"#), "peer_set.source_ports");
    refused(
        &with(r#"{"first":61007,"last":61000}"#),
        "peer_set.source_ports",
    );
}

#[test]
fn partial_checksums_need_vxlan() {
    let with = |backend: &str| {
        format!(
            r#"{{"peer_set":{{"name":"node2","subnets":["10.244.2.0/24"],"underlay_ip":"192.168.0.2","vtep_mac":"02:00:00:00:00:02","backend":"{backend}","partial_checksums":true}}}}"#
        )
    };
    check(&with("vxlan")).expect("valid");
    refused(&with("udp"), "peer_set.partial_checksums");
}

#[test]
fn route_prefixes_have_no_host_bits() {
    check(r#"{"route_set":{"prefix":"0.0.0.0/0","via":"blackhole"}}"#).expect("valid");
    refused(
        r#"{"route_set":{"prefix":"10.1.2.3/8","via":"host"}}"#,
        "did you mean 10.0.0.0/8",
    );
    refused(
        r#"{"route_remove":{"prefix":"fd00::1/64"}}"#,
        "route_remove.prefix",
    );
    refused(
        r#"{"route_set":{"prefix":"10.0.0.0/8","via":"nowhere"}}"#,
        "nowhere",
    );
}

#[test]
fn a_node_route_is_one_unicast_address() {
    check(r#"{"route_set":{"prefix":"10.244.1.1/32","via":"node"}}"#).expect("valid");
    check(r#"{"route_set":{"prefix":"fd00:1::1/128","via":"node"}}"#).expect("valid v6");
    refused(
        r#"{"route_set":{"prefix":"10.244.1.0/24","via":"node"}}"#,
        "must be one address",
    );
    refused(
        r#"{"route_set":{"prefix":"0.0.0.0/32","via":"node"}}"#,
        "unspecified",
    );
    refused(
        r#"{"route_set":{"prefix":"ff02::1/128","via":"node"}}"#,
        "multicast",
    );
}

fn rule(id: u32, protocol: Option<u8>, ports: Option<(u16, u16)>) -> RuleSpec {
    RuleSpec {
        id,
        tier: 0,
        action: RuleActionSpec::Allow,
        remote: vec!["10.0.0.0/8".parse().expect("cidr")],
        remote_except: vec![],
        protocol,
        ports: ports.map(|(first, last)| PortRangeSpec { first, last }),
        name: None,
    }
}

#[test]
fn rule_sets_are_checked_and_converted() {
    let spec = RuleSetSpec {
        default: VerdictSpec::Deny,
        rules: vec![rule(1, Some(6), Some((80, 443))), rule(2, None, None)],
    };
    let set = rule_set("x", &spec).expect("valid");
    assert_eq!(set.default, Verdict::Deny);
    assert_eq!(set.rules.len(), 2);
    assert_eq!(
        set.rules[0].ports,
        Some(PortRange {
            first: 80,
            last: 443
        })
    );
    assert_eq!(set.rules[0].id, RuleId(1));

    let refuse = |rules: Vec<RuleSpec>, needle: &str| {
        let spec = RuleSetSpec {
            default: VerdictSpec::Allow,
            rules,
        };
        let err = rule_set("policy_set.ingress", &spec).expect_err(needle);
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert!(err.message.contains(needle), "{}", err.message);
    };
    refuse(vec![rule(1, Some(1), Some((1, 2)))], "rules[0].ports");
    refuse(vec![rule(1, None, Some((1, 2)))], "needs protocol");
    refuse(vec![rule(1, Some(17), Some((9, 8)))], "greater than");
    refuse(
        vec![rule(1, None, None), rule(1, None, None)],
        "rules[1].id",
    );
    let mut host_bits = rule(1, None, None);
    host_bits.remote_except = vec!["10.1.0.1/16".parse().expect("cidr")];
    refuse(vec![host_bits], "rules[0].remote_except[0]");
}

#[test]
fn policy_set_goes_through_the_wire() {
    check(
        r#"{"policy_set":{"name":"a/b","ingress":{"default":"deny","rules":[{"id":1,"tier":0,"action":"allow","remote":["10.0.0.0/8"],"remote_except":[],"protocol":6,"ports":{"first":80,"last":80}}]},"egress":{"default":"allow","rules":[]}}}"#,
    )
    .expect("valid");
    refused(
        r#"{"policy_set":{"name":"a/b","ingress":{"default":"deny","rules":[{"id":1,"action":"allow","protocol":1,"ports":{"first":80,"last":80}}]},"egress":{"default":"allow"}}}"#,
        "policy_set.ingress.rules[0].ports",
    );
}

#[test]
fn policy_set_many_checks_every_set_and_refuses_a_port_twice() {
    let set = |name: &str, protocol: u8| {
        format!(
            r#"{{"name":"{name}","ingress":{{"default":"deny","rules":[{{"id":1,"action":"allow","protocol":{protocol},"ports":{{"first":80,"last":80}},"name":"networkpolicy a/x ingress[0]"}}]}},"egress":{{"default":"allow"}}}}"#
        )
    };
    let many =
        |sets: &[String]| format!(r#"{{"policy_set_many":{{"sets":[{}]}}}}"#, sets.join(","));
    check(&many(&[set("a/b", 6), set("a/c", 17)])).expect("valid");
    check(&many(&[])).expect("an empty batch is valid");
    refused(
        &many(&[set("a/b", 6), set("a/b", 6)]),
        "policy_set_many.sets[1].name",
    );
    refused(
        &many(&[set("a/b", 6), set("a/c", 1)]),
        "policy_set_many.sets[1].ingress.rules[0].ports",
    );
    refused(&many(&[set("nobody", 6)]), "policy_set_many.sets[0].name");
}

#[test]
fn trace_protocols_and_families_are_checked() {
    let trace = |from: &str, dst: &str, protocol: &str| {
        format!(
            r#"{{"trace":{{"from":{from},"src":"10.244.1.2","dst":"{dst}","protocol":{protocol},"dst_port":80}}}}"#
        )
    };
    for protocol in [r#""tcp""#, r#""UDP""#, r#""icmp""#, r#""sctp""#, "47"] {
        check(&trace(r#"{"port":"a/b"}"#, "10.244.1.3", protocol)).expect(protocol);
    }
    check(&trace(r#"{"host":{}}"#, "10.244.1.3", r#""tcp""#)).expect("from host");
    check(&trace(r#"{"peer":"node2"}"#, "10.244.1.3", r#""tcp""#)).expect("from peer");
    refused(
        &trace(r#"{"port":"a/b"}"#, "10.244.1.3", r#""gre""#),
        "trace.protocol",
    );
    refused(
        &trace(r#"{"port":"a/b"}"#, "10.244.1.3", "300"),
        "number 0..=255",
    );
    refused(
        &trace(r#"{"port":"a/b"}"#, "fd00::3", r#""tcp""#),
        "different IP versions",
    );
    refused(
        &trace(r#"{"port":"nope"}"#, "10.244.1.3", r#""tcp""#),
        "trace.from.port",
    );
    refused(&trace(r#"{"moon":{}}"#, "10.244.1.3", r#""tcp""#), "moon");
}

#[test]
fn mac_helper_names_the_field() {
    let err = mac("peer_set.vtep_mac", MacAddr([1, 0, 0, 0, 0, 0]).0).expect_err("multicast");
    assert!(
        err.message
            .starts_with("peer_set.vtep_mac: 01:00:00:00:00:00")
    );
}

fn service_set(protocol: u8, port: u16, endpoint_port: u16, second_name: &str) -> String {
    let service = |name: &str| {
        format!(
            r#"{{"name":"{name}","ports":[{{"name":"{name}:http",
            "frontends":[{{"key":{{"ip":"10.96.0.10","protocol":{protocol},"port":{port}}},"kind":"cluster_ip"}}],
            "endpoints":[{{"ip":"10.244.1.2","port":{endpoint_port},"local":true,"ready":true,"serving":true,"terminating":false}}],
            "internal":"cluster","external":"local","affinity":"client_ip"}}]}}"#
        )
    };
    format!(
        r#"{{"service_set":{{"services":[{},{}]}}}}"#,
        service("default/web"),
        service(second_name)
    )
}

#[test]
fn service_set_checks_names_protocols_and_ports() {
    check(&service_set(6, 80, 8080, "default/api")).expect("valid");
    refused(&service_set(6, 80, 8080, "default/web"), "named twice");
    refused(&service_set(1, 80, 8080, "default/api"), "is not TCP");
    refused(
        &service_set(17, 0, 8080, "default/api"),
        "key.port: 0 is no port",
    );
    refused(&service_set(17, 53, 0, "default/api"), "endpoints[0].port");
    refused(&service_set(6, 80, 8080, ""), "services[1].name");
}

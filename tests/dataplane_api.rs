//! The config API over its real socket: every bad request gets an error of
//! the right kind, with a message that names what is wrong, and changes
//! nothing (ports, peers, routes, and the namespaces themselves); a peer that
//! is not root is refused.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tweed_api::dataplane::client::ClientError;
use tweed_api::dataplane::proto::{ErrorKind, NameArgs, Request, ResponseBody};
use tweed_suite::netns::Netns;
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::privileged::require_root;
use tweed_suite::process;

/// A bad request, the error kind it must get, and a word its message must contain.
struct Case {
    what: &'static str,
    line: String,
    kind: &'static [ErrorKind],
    names: Option<&'static str>,
}

fn case(
    what: &'static str,
    line: impl Into<String>,
    kind: &'static [ErrorKind],
    names: Option<&'static str>,
) -> Case {
    Case {
        what,
        line: line.into(),
        kind,
        names,
    }
}

#[test]
fn bad_requests_get_typed_errors_and_change_nothing() {
    if !require_root() {
        return;
    }
    let prefix = "api";
    let node = Node::standalone(prefix, "192.168.207.1", &[]);
    let pod = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.7.2".parse().unwrap()),
        None,
    );
    let other = Netns::new(prefix, "b");
    let other_path = other.path();
    let pod_path = pod.netns.path();
    let port_add = |name: &str, netns: &str, ipv4: &str, extra: &str| {
        format!(
            r#"{{"version":1,"request":{{"port_add":{{"name":"{name}","netns":"{netns}","ifname":"eth0","ipv4":"{ipv4}"{extra}}}}}}}"#
        )
    };
    let cases = [
        case("not JSON", "{not json", &[ErrorKind::BadJson], None),
        case(
            "control characters",
            "\u{1}\u{2}garbage",
            &[ErrorKind::BadJson],
            None,
        ),
        case(
            "version 2",
            r#"{"version":2,"request":{"port_list":{}}}"#,
            &[ErrorKind::UnsupportedVersion],
            None,
        ),
        case(
            "no version",
            r#"{"request":{"port_list":{}}}"#,
            &[ErrorKind::Invalid],
            Some("version"),
        ),
        case(
            "unknown envelope field",
            r#"{"version":1,"request":{"port_list":{}},"colour":"red"}"#,
            &[ErrorKind::Invalid],
            Some("colour"),
        ),
        case(
            "unknown op",
            r#"{"version":1,"request":{"port_explode":{}}}"#,
            &[ErrorKind::Invalid],
            Some("port_explode"),
        ),
        case(
            "unknown port_add field",
            port_add("api/c", &other_path, "10.244.7.9", r#","colour":"red""#),
            &[ErrorKind::Invalid],
            Some("colour"),
        ),
        case(
            "port_add without any address",
            format!(
                r#"{{"version":1,"request":{{"port_add":{{"name":"api/c","netns":"{other_path}","ifname":"eth0"}}}}}}"#
            ),
            &[ErrorKind::Invalid],
            None,
        ),
        case(
            "port_add with a bad IPv4",
            port_add("api/c", &other_path, "10.244.7.300", ""),
            &[ErrorKind::Invalid],
            Some("ipv4"),
        ),
        case(
            "port name without a namespace",
            port_add("noslash", &other_path, "10.244.7.9", ""),
            &[ErrorKind::Invalid],
            Some("name"),
        ),
        case(
            "peer_set with an invalid CIDR",
            r#"{"version":1,"request":{"peer_set":{"name":"n2","subnets":["10.244.300.0/24"],"underlay_ip":"192.168.207.2","vtep_mac":"02:77:c0:a8:cf:02","backend":"vxlan"}}}"#,
            &[ErrorKind::Invalid],
            Some("subnets"),
        ),
        case(
            "peer_set with an unknown backend",
            r#"{"version":1,"request":{"peer_set":{"name":"n2","subnets":["10.244.8.0/24"],"underlay_ip":"192.168.207.2","vtep_mac":"02:77:c0:a8:cf:02","backend":"ipip"}}}"#,
            &[ErrorKind::Invalid],
            Some("backend"),
        ),
        case(
            "route_set with host bits",
            r#"{"version":1,"request":{"route_set":{"prefix":"10.1.0.1/16","via":"host"}}}"#,
            &[ErrorKind::Invalid],
            Some("prefix"),
        ),
        case(
            "route_set with prefix length 33",
            r#"{"version":1,"request":{"route_set":{"prefix":"10.1.0.0/33","via":"host"}}}"#,
            &[ErrorKind::Invalid],
            Some("prefix"),
        ),
        case(
            "policy with an invalid CIDR",
            r#"{"version":1,"request":{"policy_set":{"name":"api/a","ingress":{"default":"deny","rules":[{"id":1,"action":"allow","remote":["nope"]}]},"egress":{"default":"allow"}}}}"#,
            &[ErrorKind::Invalid],
            Some("remote"),
        ),
        case(
            "duplicate port name",
            port_add("api/a", &other_path, "10.244.7.9", ""),
            &[ErrorKind::Conflict],
            Some("api/a"),
        ),
        case(
            "duplicate pod address",
            port_add("api/c", &other_path, "10.244.7.2", ""),
            &[ErrorKind::Conflict],
            Some("10.244.7.2"),
        ),
        case(
            "a second port in the same netns and ifname",
            port_add("api/c", &pod_path, "10.244.7.9", ""),
            &[ErrorKind::Conflict],
            Some("eth0"),
        ),
        case(
            "a netns that does not exist",
            port_add("api/c", "/run/netns/tw-api-no-such-netns", "10.244.7.9", ""),
            &[ErrorKind::Invalid],
            Some("netns"),
        ),
        case(
            "removing an unknown port",
            r#"{"version":1,"request":{"port_remove":{"name":"api/zz"}}}"#,
            &[ErrorKind::NotFound],
            Some("api/zz"),
        ),
        case(
            "policy for an unknown port",
            r#"{"version":1,"request":{"policy_set":{"name":"api/zz","ingress":{"default":"deny"},"egress":{"default":"allow"}}}}"#,
            &[ErrorKind::NotFound],
            Some("api/zz"),
        ),
    ];

    let snapshot = || {
        (
            node.api.port_list(),
            node.api.peer_list(),
            node.api.route_list(),
        )
    };
    let before = snapshot();
    let links_of = |ns: &Netns| ns.ip_json(&["link", "show"]).as_array().map_or(0, Vec::len);
    let (pod_links, other_links) = (links_of(&pod.netns), links_of(&other));
    let mut failures = Vec::new();
    for case in &cases {
        match node.api.raw_reply(&case.line) {
            Ok(ok) => failures.push(format!("{}: accepted: {ok}", case.what)),
            Err(e) if !case.kind.contains(&e.kind) => failures.push(format!(
                "{}: kind {:?}, want {:?}: {}",
                case.what, e.kind, case.kind, e.message
            )),
            Err(e) => {
                if let Some(word) = case.names
                    && !e.message.contains(word)
                {
                    failures.push(format!(
                        "{}: the message does not name {word:?}: {}",
                        case.what, e.message
                    ));
                }
            }
        }
        if snapshot() != before {
            failures.push(format!(
                "{}: the request changed the dataplane's state",
                case.what
            ));
        }
    }
    assert_eq!(
        links_of(&pod.netns),
        pod_links,
        "failed requests made or removed no link in the pod"
    );
    assert_eq!(
        links_of(&other),
        other_links,
        "failed requests made no link in the other netns"
    );
    assert!(
        failures.is_empty(),
        "{} of {} bad requests mishandled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn one_connection_carries_many_requests_and_survives_errors() {
    if !require_root() {
        return;
    }
    let node = Node::standalone("apic", "192.168.207.1", &[]);
    let mut client = node.client();
    for _ in 0..3 {
        match client.call(Request::PortList(Default::default())) {
            Ok(ResponseBody::Ports(p)) => assert!(p.ports.is_empty()),
            other => panic!("port_list: {other:?}"),
        }
        let reply = client.call_raw("{oops").expect("a reply to a bad line");
        assert!(reply.contains("bad_json"), "{reply}");
        match client.call(Request::PortRemove(NameArgs { name: "x/y".into() })) {
            Err(ClientError::Api(e)) => assert_eq!(e.kind, ErrorKind::NotFound),
            other => panic!("port_remove of nothing: {other:?}"),
        }
    }
}

#[test]
fn the_socket_is_private_and_other_users_are_refused() {
    if !require_root() {
        return;
    }
    let prefix = "apip";
    let node = Node::standalone(prefix, "192.168.207.1", &[]);
    let pod = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.7.2".parse().unwrap()),
        None,
    );
    let socket = node.api.socket().to_path_buf();
    let mode = std::fs::metadata(&socket)
        .expect("the socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is 0600");

    let as_nobody = || {
        let mut child = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "socat",
                "-t",
                "5",
                "-",
            ])
            .arg(format!("UNIX-CONNECT:{}", socket.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn setpriv socat");
        let line = format!(
            r#"{{"version":1,"request":{{"port_remove":{{"name":"{}"}}}}}}"#,
            pod.name
        );
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = writeln!(stdin, "{line}");
        drop(stdin);
        process::finish(child, Duration::from_secs(10))
    };

    // The file mode keeps other users out.
    let out = as_nobody();
    assert!(
        !out.stdout.contains("\"ok\""),
        "uid 65534 got an answer through a 0600 socket: {out}"
    );

    // The credential check keeps them out even when the mode would not.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod the socket");
    let out = as_nobody();
    assert!(
        !out.stdout.contains("\"ok\""),
        "uid 65534 was served: {out}"
    );
    if out.stdout.contains("\"error\"") {
        assert!(
            out.stdout.contains("forbidden"),
            "refused with kind forbidden: {out}"
        );
    }
    assert_eq!(
        node.api.port_list().len(),
        1,
        "the refused request removed nothing"
    );
}

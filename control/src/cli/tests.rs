use clap::Parser;

use super::*;
use crate::api::fixtures;
use crate::api::pod::PodsReply;
use crate::api::proto::ApiError;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("tweed").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs `args` against a fake daemon answering from `answer`; returns the
/// requests made and the text or error.
fn run_fake(
    args: &[&str],
    mut answer: impl FnMut(&Request) -> Result<ResponseBody, ClientError>,
) -> (Vec<Request>, Result<String, CliError>) {
    let cli = parse(args);
    let mut requests = Vec::new();
    let mut call = |request: Request| {
        let reply = answer(&request);
        requests.push(request);
        reply
    };
    let out = execute(cli.globals.output, &cli.command, &mut call);
    (requests, out)
}

#[test]
fn global_flags_default_and_go_anywhere() {
    // Not from the environment: the test must not depend on TWEED_RUN_DIR.
    let cli = Cli::try_parse_from(["tweed", "status"]).expect("parse");
    if std::env::var_os("TWEED_RUN_DIR").is_none() {
        assert_eq!(cli.globals.run_dir, PathBuf::from("/run/tweed"));
    }
    assert_eq!(cli.globals.output, Output::Table);
    let cli = parse(&["pods", "-o", "json", "--run-dir", "/tmp/x"]);
    assert_eq!(
        (cli.globals.output, cli.globals.run_dir),
        (Output::Json, PathBuf::from("/tmp/x"))
    );
}

#[test]
fn peer_add_builds_the_request_and_confirms() {
    let (requests, out) = run_fake(
        &[
            "peer",
            "add",
            "edge",
            "--subnet",
            "10.250.0.0/16",
            "--subnet",
            "fd00:9::/64",
            "--underlay-ip",
            "203.0.113.7",
            "--vtep-mac",
            "02:00:00:00:09:09",
            "--backend",
            "udp",
        ],
        |_| Ok(ResponseBody::empty()),
    );
    assert_eq!(out.expect("ok"), "peer edge added\n");
    let [Request::PeerAdd(add)] = requests.as_slice() else {
        panic!("{requests:?}");
    };
    assert_eq!(add.subnets.len(), 2);
    assert_eq!(add.backend, Backend::Udp);
    assert_eq!(add.vtep_mac.to_string(), "02:00:00:00:09:09");
}

#[test]
fn bad_flag_values_are_named_by_clap() {
    for (args, flag) in [
        (
            vec![
                "peer",
                "add",
                "p",
                "--subnet",
                "10.0.0.0/33",
                "--underlay-ip",
                "1.2.3.4",
                "--vtep-mac",
                "02:00:00:00:00:01",
            ],
            "--subnet",
        ),
        (
            vec![
                "peer",
                "add",
                "p",
                "--subnet",
                "10.0.0.0/8",
                "--underlay-ip",
                "x",
                "--vtep-mac",
                "02:00:00:00:00:01",
            ],
            "--underlay-ip",
        ),
        (
            vec![
                "peer",
                "add",
                "p",
                "--subnet",
                "10.0.0.0/8",
                "--underlay-ip",
                "1.2.3.4",
                "--vtep-mac",
                "zz",
            ],
            "--vtep-mac",
        ),
        (
            vec![
                "peer",
                "add",
                "p",
                "--underlay-ip",
                "1.2.3.4",
                "--vtep-mac",
                "02:00:00:00:00:01",
            ],
            "--subnet",
        ),
        (vec!["trace", "--from", "web", "--to", "10.0.0.1"], "--from"),
        (vec!["-o", "yaml", "status"], "--output"),
    ] {
        let err = Cli::try_parse_from(std::iter::once("tweed").chain(args.iter().copied()))
            .expect_err("bad value");
        assert!(err.to_string().contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn trace_without_src_looks_the_pod_up() {
    let (requests, out) = run_fake(
        &[
            "trace",
            "--from",
            "default/web",
            "--to",
            "10.244.2.3",
            "--port",
            "80",
        ],
        |request| match request {
            Request::PodList(_) => Ok(ResponseBody::Pods(PodsReply {
                pods: vec![fixtures::pod()],
            })),
            _ => Ok(ResponseBody::Trace(fixtures::trace())),
        },
    );
    assert!(
        out.expect("ok")
            .ends_with("verdict: encapsulated to peer node2\n")
    );
    let [Request::PodList(_), Request::Trace(trace)] = requests.as_slice() else {
        panic!("{requests:?}");
    };
    assert_eq!(trace.src, "10.244.1.2".parse::<IpAddr>().expect("ip"));
    assert_eq!(trace.dst_port, 80);
    assert_eq!(trace.protocol, Protocol::Name("tcp".into()));
}

#[test]
fn trace_from_host_needs_src_and_makes_no_call() {
    let (requests, out) = run_fake(&["trace", "--from", "host", "--to", "10.0.0.1"], |_| {
        Ok(ResponseBody::empty())
    });
    assert!(requests.is_empty());
    let err = out.expect_err("no src").to_string();
    assert!(err.contains("--src"), "{err}");
}

#[test]
fn json_output_is_the_pretty_ok_body() {
    let (_, out) = run_fake(&["-o", "json", "status"], |_| {
        Ok(ResponseBody::Status(fixtures::status()))
    });
    let out = out.expect("ok");
    let value: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(value["node"]["name"], "node1");
    assert_eq!(value["dataplane"]["pid"], 4242);
    assert!(out.contains("\n  \"node\""), "pretty: {out}");
}

#[test]
fn every_table_command_renders_its_reply() {
    let cases: [(&[&str], ResponseBody, &str); 4] = [
        (
            &["status"],
            ResponseBody::Status(fixtures::status()),
            "REACHABLE",
        ),
        (
            &["pods"],
            ResponseBody::Pods(PodsReply {
                pods: vec![fixtures::pod()],
            }),
            "default",
        ),
        (
            &["stats"],
            ResponseBody::Stats(fixtures::stats()),
            "policy_ingress",
        ),
        (
            &["peer", "remove", "edge"],
            ResponseBody::empty(),
            "peer edge removed",
        ),
    ];
    for (args, body, expected) in cases {
        let (_, out) = run_fake(args, |_| Ok(body.clone()));
        let out = out.expect("ok");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
}

#[test]
fn daemon_errors_and_mismatched_replies_become_cli_errors() {
    let (_, out) = run_fake(&["peer", "remove", "ghost"], |_| {
        Err(ClientError::Api(ApiError::not_found(
            "no static peer named ghost",
        )))
    });
    assert_eq!(
        out.expect_err("refused").to_string(),
        "no static peer named ghost"
    );
    let (_, out) = run_fake(&["status"], |_| Ok(ResponseBody::empty()));
    assert!(
        matches!(out, Err(CliError::Unexpected("status"))),
        "{out:?}"
    );
}

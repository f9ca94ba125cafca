//! The `tweed` binary as a user runs it: without a daemon, with bad flags,
//! and against an in-process control server answering canned replies.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use futures::future::BoxFuture;
use tweed_control::api::fixtures::{self, TempDir};
use tweed_control::api::{ApiError, Handler, Request, ResponseBody, serve, socket_path};

fn tweed(run_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tweed"))
        .arg("--run-dir")
        .arg(run_dir)
        .args(args)
        .env_remove("TWEED_RUN_DIR")
        .output()
        .expect("run tweed")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn status_without_a_daemon_is_one_line_and_exit_code_1() {
    let dir = TempDir::new("cli-none").expect("temp dir");
    let out = tweed(dir.path(), &["status"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tweed: "), "{stderr}");
    assert!(stderr.contains("tweed daemon is not running"), "{stderr}");
    assert!(
        stderr.contains(&socket_path(dir.path()).display().to_string()),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn help_lists_the_subcommands() {
    let dir = TempDir::new("cli-help").expect("temp dir");
    let out = tweed(dir.path(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in [
        "daemon", "status", "pods", "nodes", "routes", "peer", "stats", "trace",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from:\n{help}"
        );
    }
}

#[test]
fn a_bad_cidr_is_refused_naming_the_flag() {
    let dir = TempDir::new("cli-cidr").expect("temp dir");
    let out = tweed(
        dir.path(),
        &[
            "peer",
            "add",
            "edge",
            "--subnet",
            "10.0.0.0/40",
            "--underlay-ip",
            "203.0.113.7",
            "--vtep-mac",
            "02:00:00:00:09:09",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--subnet"), "{stderr}");
    assert!(stderr.contains("10.0.0.0/40"), "{stderr}");
}

/// Answers `status` with the fixture; refuses everything else.
struct Canned;

impl Handler for Canned {
    fn handle(&self, request: Request) -> BoxFuture<'_, Result<ResponseBody, ApiError>> {
        Box::pin(async move {
            match request {
                Request::Status(_) => Ok(ResponseBody::Status(fixtures::status())),
                other => Err(ApiError::not_found(format!(
                    "the fake daemon does not answer {}",
                    other.op().name()
                ))),
            }
        })
    }
}

#[test]
fn status_against_a_server_prints_json_and_a_table() {
    let dir = TempDir::new("cli-served").expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(serve(&socket_path(dir.path()), Arc::new(Canned)))
        .expect("serve");

    let out = tweed(dir.path(), &["-o", "json", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value["node"]["name"], "node1");
    assert_eq!(value["node"]["backend"], "vxlan");
    assert_eq!(value["store"], "embedded /var/lib/tweed/state.redb");
    assert_eq!(value["dataplane"]["up"], true);
    assert_eq!(value["peers"][1]["node"]["kind"], "static");

    let out = tweed(dir.path(), &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for expected in [
        "node:          node1",
        "10.244.1.0/24, fd00:1::/64",
        "store:         embedded /var/lib/tweed/state.redb",
        "up, pid 4242, 1 restart, 2 ports",
        "NAME   KIND    SUBNETS        UNDERLAY     BACKEND  REACHABLE  RTT",
        "node2  node    10.244.2.0/24  192.168.0.2  vxlan    yes        0.42 ms",
        "edge   static",
    ] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from:\n{table}"
        );
    }

    // The daemon's refusal is one line and exit code 1.
    let out = tweed(dir.path(), &["pods"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, "tweed: the fake daemon does not answer pod_list\n");

    runtime.block_on(server.stop());
}

//! The plugin binary as a runtime sees it, for what needs no daemon: VERSION
//! and the errors decided before any call. (Having an integration test here
//! also makes `cargo test --workspace` build the `tweed-cni` executable that
//! the namespace tests in `tests/cni_plugin.rs` drive.)

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(command: &str, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweed-cni"))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "binary-test")
        .env("CNI_NETNS", "/run/netns/binary-test")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tweed-cni");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for tweed-cni")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn version_lists_every_supported_version() {
    let out = run("VERSION", r#"{"cniVersion":"0.4.0"}"#);
    assert!(out.status.success(), "{out:?}");
    let answer = json(&out);
    assert_eq!(answer["cniVersion"], "0.4.0");
    assert_eq!(
        answer["supportedVersions"],
        serde_json::json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

#[test]
fn undecodable_config_is_code_6_on_stdout_and_a_failure() {
    let out = run("ADD", "{not json");
    assert!(!out.status.success());
    let error = json(&out);
    assert_eq!(error["code"], 6, "{error}");
    assert!(
        error["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
}

/// libcni probes with `CNI_NETNS=dummy`; the spec lets a runtime pass anything
/// in the other variables for VERSION, and stdin may be garbage or empty.
#[test]
fn version_ignores_garbage_in_every_other_variable() {
    for stdin in [r#"{"cniVersion":"1.0.0"}"#, "", "{not json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tweed-cni"))
            .env_clear()
            .env("CNI_COMMAND", "VERSION")
            .env("CNI_NETNS", "dummy")
            .env("CNI_CONTAINERID", "\u{1}garbage")
            .env("CNI_IFNAME", "way/too/long/for/an/interface")
            .env("CNI_ARGS", "no-pairs-here;;=")
            .env("CNI_PATH", "relative:dirs")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tweed-cni");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait for tweed-cni");
        assert!(out.status.success(), "stdin {stdin:?}: {out:?}");
        let answer = json(&out);
        let expected = if stdin.contains("1.0.0") {
            "1.0.0"
        } else {
            "1.1.0"
        };
        assert_eq!(answer["cniVersion"], expected, "stdin {stdin:?}");
        assert!(
            answer["supportedVersions"]
                .as_array()
                .is_some_and(|v| v.len() == 5)
        );
    }
}

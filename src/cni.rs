//! The CNI plugin (`tweed-cni`) driven exactly as a container runtime drives
//! it: a fresh process per command, `CNI_*` variables in an otherwise empty
//! environment (only `PATH` kept), the network configuration on stdin, the
//! result or error JSON read from stdout.
//!
//! [`Plugin`] holds the binary and the daemon's control socket (the
//! configuration's `socket` key); [`Plugin::config`] builds the minimal
//! configuration of a version, which tests extend (`prevResult`,
//! `cni.dev/valid-attachments`, ...).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::bins;
use crate::process;

/// The plugin binary's name.
pub const TWEED_CNI: &str = "tweed-cni";
/// How long one plugin run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// The plugin, pointed at one daemon.
#[derive(Debug, Clone)]
pub struct Plugin {
    bin: PathBuf,
    socket: PathBuf,
}

/// The `CNI_*` variables of one run (`None`: unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `CNI_COMMAND`.
    pub command: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<&'a str>,
    /// `CNI_NETNS`.
    pub netns: Option<&'a str>,
    /// `CNI_IFNAME`.
    pub ifname: Option<&'a str>,
    /// `CNI_ARGS`.
    pub args: Option<&'a str>,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code (`None`: killed by a signal or the timeout).
    pub exit: Option<i32>,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

impl Outcome {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.exit == Some(0)
    }

    /// Stdout parsed as JSON; panics (showing the run) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("tweed-cni printed no JSON ({e}): {self:?}"))
    }

    /// The error code of a failed run; panics unless it exited non-zero with
    /// the spec's error JSON (`code` and `msg` present).
    pub fn error_code(&self) -> u64 {
        assert!(
            self.exit.is_some_and(|c| c != 0),
            "tweed-cni should have failed: {self:?}"
        );
        let json = self.json();
        assert!(json["msg"].is_string(), "error without msg: {self:?}");
        json["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("error without code: {self:?}"))
    }

    /// The error message of a failed run.
    pub fn error_msg(&self) -> String {
        self.json()["msg"].as_str().unwrap_or_default().to_owned()
    }

    /// Panics (showing the run) unless it succeeded; `what` names the step.
    pub fn assert_ok(&self, what: &str) -> &Self {
        assert!(self.success(), "{what}: tweed-cni failed: {self:?}");
        self
    }
}

impl Plugin {
    /// The workspace's `tweed-cni`, talking to the daemon at `socket`.
    pub fn new(socket: &Path) -> Self {
        Plugin {
            bin: bins::bin(TWEED_CNI),
            socket: socket.to_owned(),
        }
    }

    /// The daemon's socket it talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The same plugin talking to another socket (e.g. one nobody serves).
    pub fn with_socket(&self, socket: &Path) -> Self {
        Plugin {
            bin: self.bin.clone(),
            socket: socket.to_owned(),
        }
    }

    /// `{"cniVersion":VERSION,"name":"tweed","type":"tweed","socket":SOCKET}`.
    pub fn config(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "tweed",
            "type": "tweed",
            "socket": self.socket.display().to_string(),
        })
    }

    /// Runs the plugin with `vars` and `stdin`.
    pub fn run(&self, vars: Vars<'_>, stdin: &[u8]) -> Outcome {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear();
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("CNI_COMMAND", vars.command);
        cmd.env("CNI_PATH", "/opt/cni/bin");
        for (name, value) in [
            ("CNI_CONTAINERID", vars.container_id),
            ("CNI_NETNS", vars.netns),
            ("CNI_IFNAME", vars.ifname),
            ("CNI_ARGS", vars.args),
        ] {
            if let Some(value) = value {
                cmd.env(name, value);
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        if let Some(mut input) = child.stdin.take() {
            // A plugin that exits before reading all of stdin is not an error here.
            let _ = input.write_all(stdin);
        }
        let out = process::finish(child, RUN_TIMEOUT);
        assert!(
            !out.timed_out(),
            "tweed-cni {} did not finish in {RUN_TIMEOUT:?}: {out}",
            vars.command
        );
        Outcome {
            exit: out.status.and_then(|s| s.code()),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    /// Runs `command` for one attachment with `config` on stdin.
    pub fn run_for(
        &self,
        command: &str,
        container_id: &str,
        netns: Option<&str>,
        ifname: &str,
        config: &Value,
    ) -> Outcome {
        let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=test;K8S_POD_NAME={container_id}");
        self.run(
            Vars {
                command,
                container_id: Some(container_id),
                netns,
                ifname: Some(ifname),
                args: Some(&args),
            },
            config.to_string().as_bytes(),
        )
    }

    /// ADD in `version` (pod name = the container id); panics unless it
    /// succeeds, returns the result.
    pub fn add(&self, version: &str, container_id: &str, netns: &str, ifname: &str) -> Value {
        self.run_for(
            "ADD",
            container_id,
            Some(netns),
            ifname,
            &self.config(version),
        )
        .assert_ok(&format!("ADD {container_id}"))
        .json()
    }

    /// CHECK in `version` with `prev` as `prevResult`.
    pub fn check(
        &self,
        version: &str,
        container_id: &str,
        netns: &str,
        ifname: &str,
        prev: &Value,
    ) -> Outcome {
        let mut config = self.config(version);
        config["prevResult"] = prev.clone();
        self.run_for("CHECK", container_id, Some(netns), ifname, &config)
    }

    /// DEL in `version` (`netns` may be unset, as after the netns is gone).
    pub fn del(
        &self,
        version: &str,
        container_id: &str,
        netns: Option<&str>,
        ifname: &str,
    ) -> Outcome {
        self.run_for("DEL", container_id, netns, ifname, &self.config(version))
    }
}

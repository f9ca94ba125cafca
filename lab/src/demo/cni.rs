//! Attaching and detaching the demo's pods through the CNI plugin, exactly
//! as a container runtime does: `tweed-cni` in a fresh process, the `CNI_*`
//! variables in its environment, the network configuration on stdin, the
//! result (or the spec's error JSON) on stdout.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// One pod as the runtime knows it.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox<'a> {
    /// The container ID.
    pub container_id: &'a str,
    /// The pod's namespace path (`/run/netns/...`).
    pub netns: &'a Path,
    /// The Kubernetes namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub name: &'a str,
    /// Its `app` label.
    pub app: &'a str,
}

/// The network configuration for a node's daemon: the minimal one, plus
/// the socket and the pod's labels (`args.cni.labels`).
pub fn config(socket: &Path, app: &str) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "tweed",
        "type": "tweed",
        "socket": socket,
        "args": {"cni": {"labels": [{"key": "app", "value": app}]}},
    })
}

/// `CNI_COMMAND=ADD`: the pod's first IPv4 address from the result.
pub fn add(plugin: &Path, socket: &Path, pod: Sandbox<'_>) -> Result<IpAddr, String> {
    let result = run(plugin, "ADD", socket, pod)?;
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|cidr| cidr.split('/').next()?.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| {
            format!(
                "ADD of {}/{} returned no IPv4 address: {result}",
                pod.namespace, pod.name
            )
        })
}

/// `CNI_COMMAND=DEL`.
pub fn del(plugin: &Path, socket: &Path, pod: Sandbox<'_>) -> Result<(), String> {
    run(plugin, "DEL", socket, pod).map(drop)
}

fn run(plugin: &Path, command: &str, socket: &Path, pod: Sandbox<'_>) -> Result<Value, String> {
    let what = format!("CNI {command} of {}/{}", pod.namespace, pod.name);
    let bin_dir = plugin.parent().unwrap_or(Path::new("/"));
    let mut child = Command::new(plugin)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", pod.container_id)
        .env("CNI_NETNS", pod.netns)
        .env("CNI_IFNAME", super::topology::POD_IFNAME)
        .env("CNI_PATH", bin_dir)
        .env(
            "CNI_ARGS",
            format!(
                "K8S_POD_NAMESPACE={};K8S_POD_NAME={}",
                pod.namespace, pod.name
            ),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: start {}: {e}", plugin.display()))?;
    let stdin = config(socket, pod.app).to_string();
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes())
            .map_err(|e| format!("{what}: write the config: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: wait: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {} {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout)
        .map_err(|e| format!("{what}: the result is not JSON ({e}): {stdout}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_the_minimal_one_plus_socket_and_labels() {
        let c = config(Path::new("/run/x/control.sock"), "db");
        assert_eq!(c["cniVersion"], "1.1.0");
        assert_eq!(c["type"], "tweed");
        assert_eq!(c["socket"], "/run/x/control.sock");
        assert_eq!(c["args"]["cni"]["labels"][0]["key"], "app");
        assert_eq!(c["args"]["cni"]["labels"][0]["value"], "db");
    }
}

//! [`FakeApiServer`]: the `fake-kube-apiserver` binary run inside a test
//! namespace, and the calls a test makes on it.
//!
//! [`FakeApiServer::start`] runs `ip netns exec NS fake-kube-apiserver
//! --listen IP:PORT --socket DIR/api.sock` with its log and kubeconfig in
//! `/tmp/tw-kapi-<prefix>-<pid>`, and returns once the socket answers. The
//! daemons and kubectl reach it over TCP inside the namespace; the test
//! process reaches it through the unix socket, whatever namespace it is in.
//! Drop stops it, prints its log when the test is failing, and removes the
//! directory.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::client;
use super::resources::{self, RESOURCES};
use super::stats::Stats;
use crate::bins;
use crate::netns::Netns;
use crate::process::{self, Bounded};

/// The binary's name.
pub const BINARY: &str = "fake-kube-apiserver";
/// Where Debian's `kubernetes-client` installs kubectl.
pub const KUBECTL: &str = "/usr/bin/kubectl";
/// The bookmark interval the harness starts the server with.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// How long the server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one call on the socket may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long kubectl may take.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running fake API server; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct FakeApiServer {
    child: Option<Child>,
    netns: String,
    dir: PathBuf,
    socket: PathBuf,
    url: String,
}

/// The API path of `resource`'s collection (in `namespace` when namespaced)
/// or of one object.
pub fn api_path(res: usize, namespace: &str, name: Option<&str>) -> String {
    let r = &RESOURCES[res];
    let mut path = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced {
        path.push_str(&format!("/namespaces/{namespace}"));
    }
    path.push('/');
    path.push_str(r.plural);
    if let Some(name) = name {
        path.push('/');
        path.push_str(name);
    }
    path
}

/// The resource a test names (plural, kind, short name), or a panic.
fn resource(name: &str) -> usize {
    resources::by_name(name).unwrap_or_else(|| panic!("the fake serves no resource {name:?}"))
}

/// The documents of a YAML (or JSON) manifest, `List`s flattened.
pub fn documents(manifest: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(manifest) {
        let value =
            Value::deserialize(doc).unwrap_or_else(|e| panic!("manifest does not parse: {e}"));
        match value {
            Value::Null => {}
            v if v["kind"] == "List" => {
                out.extend(v["items"].as_array().cloned().unwrap_or_default());
            }
            v => out.push(v),
        }
    }
    out
}

impl FakeApiServer {
    /// Starts the server in `netns`, listening on `ip:port` there, and waits
    /// until it answers. Panics, with its log, if it does not.
    pub fn start(netns: &Netns, ip: IpAddr, port: u16, dir_prefix: &str) -> Self {
        let bin = bins::bin(BINARY);
        let dir = PathBuf::from(format!("/tmp/tw-kapi-{dir_prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let socket = dir.join("api.sock");
        let addr = SocketAddr::new(ip, port);
        let log_path = dir.join("apiserver.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let err = log.try_clone().expect("dup the log fd");
        let child = netns
            .command(bin.to_str().expect("the binary's path is UTF-8"), &[])
            .args(["--listen", &addr.to_string()])
            .arg("--socket")
            .arg(&socket)
            .args([
                "--bookmark-interval-ms",
                &BOOKMARK_INTERVAL.as_millis().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} in {}: {e}", bin.display(), netns.name()));
        let mut server = Self {
            child: Some(child),
            netns: netns.name().to_owned(),
            dir,
            socket,
            url: format!("http://{addr}"),
        };
        server.wait_ready();
        server.kubeconfig(&server.kubeconfig_path());
        server
    }

    fn wait_ready(&mut self) {
        // Out of `self` while the probe borrows it; back before any panic.
        let mut child = self.child.take();
        let startup = process::wait_answering(&mut child, START_TIMEOUT, || {
            self.try_call("GET", "/version", None, b"")
                .is_ok_and(|(code, _)| code == 200)
        });
        self.child = child;
        if let process::Startup::Exited(status) = startup {
            panic!(
                "{BINARY} in {} exited during start-up ({status}); its log:\n{}",
                self.netns,
                self.log()
            );
        }
        assert!(
            matches!(startup, process::Startup::Answered),
            "{BINARY} in {} did not answer within {START_TIMEOUT:?}; its log:\n{}",
            self.netns,
            self.log()
        );
    }

    /// `http://IP:PORT`, the server URL for a kubeconfig.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its directory (log, socket, kubeconfig), removed on drop: a test may
    /// put its own files there.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unix socket (API and admin routes).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The kubeconfig the harness wrote at start.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("apiserver.log")).unwrap_or_default()
    }

    fn try_call(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        client::call(
            &self.socket,
            method,
            target,
            content_type,
            body,
            CALL_TIMEOUT,
        )
    }

    /// One request on the socket; the status code and the JSON body (Null
    /// when it is not JSON). Panics when the socket does not answer.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("JSON"))
            .unwrap_or_default();
        let (code, raw) = self
            .try_call(
                method,
                target,
                content_type.or(body.map(|_| "application/json")),
                &bytes,
            )
            .unwrap_or_else(|e| panic!("{method} {target} on {}: {e}", self.socket.display()));
        (code, serde_json::from_slice(&raw).unwrap_or(Value::Null))
    }

    /// Like [`FakeApiServer::request`], panicking unless the code is 2xx.
    fn ok(
        &self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Value {
        let (code, value) = self.request(method, target, content_type, body);
        assert!(
            (200..300).contains(&code),
            "{method} {target}: {code} {value}"
        );
        value
    }

    /// Creates every object in `manifest` (YAML or JSON, several documents),
    /// or replaces it when it exists; returns the objects as stored.
    pub fn apply(&self, manifest: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for doc in documents(manifest) {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default();
            let kind = doc["kind"].as_str().unwrap_or_default();
            let res = resources::by_kind(api_version, kind)
                .unwrap_or_else(|| panic!("the fake serves no {api_version} {kind}"));
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let (code, created) = self.request("POST", &api_path(res, &ns, None), None, Some(&doc));
            let stored = match code {
                201 => created,
                409 if created["reason"] == "AlreadyExists" => {
                    let current = self.ok("GET", &api_path(res, &ns, Some(&name)), None, None);
                    let mut doc = doc.clone();
                    doc["metadata"]["resourceVersion"] =
                        current["metadata"]["resourceVersion"].clone();
                    self.ok("PUT", &api_path(res, &ns, Some(&name)), None, Some(&doc))
                }
                _ => panic!("create {kind} {ns}/{name}: {code} {created}"),
            };
            out.push(stored);
        }
        out
    }

    /// One object, or `None` when it does not exist. `namespace` is ignored
    /// for cluster-scoped resources.
    pub fn get(&self, resource_name: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = resource(resource_name);
        match self.request("GET", &api_path(res, namespace, Some(name)), None, None) {
            (200, v) => Some(v),
            (404, _) => None,
            (code, v) => panic!("get {resource_name} {namespace}/{name}: {code} {v}"),
        }
    }

    /// Deletes an object; false when it did not exist.
    pub fn delete(&self, resource_name: &str, namespace: &str, name: &str) -> bool {
        let res = resource(resource_name);
        match self.request("DELETE", &api_path(res, namespace, Some(name)), None, None) {
            (200, _) => true,
            (404, _) => false,
            (code, v) => panic!("delete {resource_name} {namespace}/{name}: {code} {v}"),
        }
    }

    /// Applies a JSON merge patch to an object; returns it as stored.
    pub fn patch_merge(
        &self,
        resource_name: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Value {
        let res = resource(resource_name);
        self.ok(
            "PATCH",
            &api_path(res, namespace, Some(name)),
            Some("application/merge-patch+json"),
            Some(patch),
        )
    }

    /// Writes a pod's `status.podIP`/`podIPs` (and phase Running) through
    /// the status subresource, as kubelet does after the CNI ADD.
    pub fn set_pod_ips(&self, namespace: &str, name: &str, ips: &[IpAddr]) -> Value {
        let res = resource("pods");
        let ip_list: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
        let patch = json!({"status": {
            "phase": "Running",
            "podIP": ips.first().map(ToString::to_string),
            "podIPs": ip_list,
        }});
        let path = format!("{}/status", api_path(res, namespace, Some(name)));
        self.ok(
            "PATCH",
            &path,
            Some("application/merge-patch+json"),
            Some(&patch),
        )
    }

    /// Cuts every open watch mid-stream; returns how many.
    pub fn drop_watches(&self) -> u64 {
        self.ok("POST", "/fake/drop-watches", None, None)["dropped"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Moves the compaction point to now and cuts every open watch (at
    /// once, so none can pass on a newer version first): every watch
    /// resumes from an older version and gets 410 Expired. Returns the
    /// compaction version.
    pub fn compact(&self) -> u64 {
        self.ok("POST", "/fake/compact", None, None)["compacted"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Closes the TCP listener and every TCP connection for `time`; the
    /// state is kept.
    pub fn down_for(&self, time: Duration) {
        let target = format!("/fake/down?seconds={}", time.as_secs_f64());
        self.ok("POST", &target, None, None);
    }

    /// The request counters.
    pub fn stats(&self) -> Stats {
        let v = self.ok("GET", "/fake/stats", None, None);
        serde_json::from_value(v).expect("stats parse")
    }

    /// Writes a kubeconfig pointing at [`FakeApiServer::url`] (no auth).
    pub fn kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url
        );
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Runs the real kubectl in the server's namespace with its kubeconfig
    /// (and a private discovery cache).
    pub fn kubectl(&self, args: &[&str]) -> Bounded {
        assert!(
            Path::new(KUBECTL).is_file(),
            "{KUBECTL} is not installed (apt-get install kubernetes-client)"
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns, KUBECTL])
            .arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .args(args);
        process::run(&mut cmd, KUBECTL_TIMEOUT)
    }

    /// Stops the server (SIGTERM, SIGKILL after a grace period); returns
    /// whether it exited by itself.
    pub fn stop(&mut self) -> bool {
        match self.child.take() {
            Some(child) => process::terminate(child, STOP_GRACE),
            None => true,
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("{BINARY} in {} ignored SIGTERM; killed it", self.netns);
        }
        if std::thread::panicking() {
            eprintln!(
                "==== {BINARY} log ({}) ====\n{}==== end of log ====",
                self.netns,
                self.log()
            );
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cleanup: remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_documents() {
        assert_eq!(
            api_path(resource("pods"), "shop", Some("a")),
            "/api/v1/namespaces/shop/pods/a"
        );
        assert_eq!(api_path(resource("nodes"), "shop", None), "/api/v1/nodes");
        assert_eq!(
            api_path(resource("netpol"), "d", None),
            "/apis/networking.k8s.io/v1/namespaces/d/networkpolicies"
        );
        let docs = documents("a: 1\n---\n---\nkind: List\nitems:\n- b: 2\n- c: 3\n");
        assert_eq!(
            docs,
            vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]
        );
    }
}

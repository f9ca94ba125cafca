//! A private single-member etcd inside a test namespace, for the control
//! daemons of a multi-node test to share.
//!
//! [`Etcd::start`] runs `ip netns exec NS /usr/bin/etcd` listening on
//! `http://IP:2379` (clients) and `http://IP:2380` (peers), with its data and
//! log in `/tmp/tw-etcd-<prefix>-<pid>` (one etcd per test prefix), and
//! returns once `GET /health` answers healthy from inside the namespace. A
//! namespace has its own ports, so the fixed 2379/2380 never collide between
//! tests. Drop stops it (SIGTERM, then SIGKILL after a grace period), prints
//! its log when the test is failing, and removes the directory.
//!
//! The heartbeat is 50 ms and the election timeout 500 ms (etcd's defaults
//! are 100 ms / 1 s): a lone member elects itself sooner, and etcd's minimum
//! lease TTL (1.5 election timeouts) drops below a second, so lease expiry
//! tests wait less. No peer ever misses these heartbeats: there is none.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::netns::Netns;
use crate::poll;
use crate::process;

/// Where Debian's `etcd-server` installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";
/// The client port.
pub const CLIENT_PORT: u16 = 2379;
/// The peer port.
pub const PEER_PORT: u16 = 2380;
/// How long etcd may take to answer healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long etcd may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long one health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Exits 0 when `GET URL/health` says healthy. Args: URL.
const HEALTHY: &str = r#"
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/health", timeout=2) as r:
    body = json.load(r)
sys.exit(0 if body.get("health") == "true" else "unhealthy: %r" % body)
"#;

/// A running etcd; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct Etcd {
    child: Option<Child>,
    endpoint: String,
    netns: String,
    dir: PathBuf,
}

impl Etcd {
    /// Starts etcd in `netns` on `listen_ip` (an address configured there)
    /// and waits until it answers healthy. Panics, with etcd's log, if it
    /// exits or does not become healthy in time.
    pub fn start(netns: &Netns, listen_ip: IpAddr) -> Self {
        assert!(
            Path::new(ETCD).is_file(),
            "{ETCD} is not installed (apt-get install etcd-server)"
        );
        let dir = PathBuf::from(format!(
            "/tmp/tw-etcd-{}-{}",
            netns.prefix(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let host = match listen_ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let endpoint = format!("http://{host}:{CLIENT_PORT}");
        let peer = format!("http://{host}:{PEER_PORT}");
        let log_path = dir.join("etcd.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let err = log.try_clone().expect("dup the log fd");
        let child = netns
            .command(ETCD, &[])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--name", "default"])
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {ETCD} in {}: {e}", netns.name()));
        // Owned from here: a failed start below still stops it and cleans up.
        let mut etcd = Self {
            child: Some(child),
            endpoint,
            netns: netns.name().to_owned(),
            dir,
        };
        etcd.wait_healthy(netns);
        etcd
    }

    /// Polls `/health` from inside `netns`, failing early if etcd exits.
    fn wait_healthy(&mut self, netns: &Netns) {
        let mut exited = None;
        let healthy = poll::wait(START_TIMEOUT, || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                exited = Some(status);
                return true;
            }
            netns
                .exec_bounded("python3", &["-c", HEALTHY, &self.endpoint], PROBE_TIMEOUT)
                .success()
        });
        if let Some(status) = exited {
            self.child = None;
            panic!(
                "etcd in {} exited during start-up ({status}); its log:\n{}",
                self.netns,
                self.log()
            );
        }
        assert!(
            healthy,
            "etcd in {} was not healthy on {} within {START_TIMEOUT:?}; its log:\n{}",
            self.netns,
            self.endpoint,
            self.log()
        );
    }

    /// The client URL, `http://IP:2379`, what `--etcd-endpoints` takes.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory holding its data and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// Stops etcd with SIGTERM, SIGKILL after a grace period; returns whether
    /// it exited by itself.
    pub fn stop(&mut self) -> bool {
        let Some(child) = self.child.take() else {
            return true;
        };
        process::terminate(child, STOP_GRACE)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if !self.stop() {
            eprintln!("etcd in {} ignored SIGTERM; killed it", self.netns);
        }
        if std::thread::panicking() {
            eprintln!(
                "==== etcd log ({}) ====\n{}==== end of log ====",
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

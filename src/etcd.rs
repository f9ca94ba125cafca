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
//! [`Etcd::start_secure`] starts it the way kubeadm's etcd runs, and more:
//! `https://IP:2379` with a server certificate, client certificates required
//! (`--client-cert-auth`), and authentication on, a `tweed` user allowed
//! read-write under `/tweed/` only (see [`crate::etcd_tls`]); its certificates
//! are made per test in `DIR/pki`.
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

use crate::etcd_tls::{self, ETCDCTL, Pki};
use crate::netns::Netns;
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
    /// The certificates, for [`Etcd::start_secure`].
    pki: Option<Pki>,
}

/// The prefix the `tweed` user may read and write under, with [`Etcd::start_secure`].
pub const TWEED_PREFIX: &str = "/tweed/";

impl Etcd {
    /// Starts etcd in `netns` on `listen_ip` (an address configured there)
    /// and waits until it answers healthy. Panics, with etcd's log, if it
    /// exits or does not become healthy in time.
    pub fn start(netns: &Netns, listen_ip: IpAddr) -> Self {
        Self::start_full(netns, listen_ip, false)
    }

    /// [`Etcd::start`] with TLS, client certificates and authentication on:
    /// the `tweed` user of [`crate::etcd_tls`] may read and write under
    /// [`TWEED_PREFIX`]. [`Etcd::pki`] has the files a client needs.
    pub fn start_secure(netns: &Netns, listen_ip: IpAddr) -> Self {
        Self::start_full(netns, listen_ip, true)
    }

    fn start_full(netns: &Netns, listen_ip: IpAddr, secure: bool) -> Self {
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
        let pki = secure.then(|| Pki::create(&dir.join("pki"), listen_ip));
        let scheme = if secure { "https" } else { "http" };
        let endpoint = format!("{scheme}://{host}:{CLIENT_PORT}");
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
            .args(pki.iter().flat_map(Pki::etcd_server_args))
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
            pki,
        };
        etcd.wait_healthy(netns);
        if secure {
            for command in etcd_tls::auth_setup(TWEED_PREFIX) {
                let out = etcd.etcdctl(netns, &command);
                assert!(out.success(), "etcdctl {command:?}: {out}");
            }
        }
        etcd
    }

    /// Runs `etcdctl ARGS` in `netns` against this etcd (with the client
    /// certificate when it has TLS; before auth is on, that is all it needs).
    pub fn etcdctl(&self, netns: &Netns, args: &[String]) -> process::Bounded {
        assert!(
            Path::new(ETCDCTL).is_file(),
            "{ETCDCTL} is not installed (apt-get install etcd-client)"
        );
        let connection = match &self.pki {
            Some(pki) => pki.etcdctl_args(&self.endpoint),
            None => vec!["--endpoints".to_owned(), self.endpoint.clone()],
        };
        let mut command = netns.command(ETCDCTL, &[]);
        command.args(connection).args(args);
        process::run(&mut command, PROBE_TIMEOUT)
    }

    /// The certificates and password files, with [`Etcd::start_secure`].
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// Polls `/health` from inside `netns`, failing early if etcd exits.
    fn wait_healthy(&mut self, netns: &Netns) {
        // Out of `self` while the probe borrows it; back before any panic.
        let mut child = self.child.take();
        let startup = process::wait_answering(&mut child, START_TIMEOUT, || match &self.pki {
            Some(_) => self
                .etcdctl(netns, &["endpoint".to_owned(), "health".to_owned()])
                .success(),
            None => netns
                .exec_bounded("python3", &["-c", HEALTHY, &self.endpoint], PROBE_TIMEOUT)
                .success(),
        });
        self.child = child;
        if let process::Startup::Exited(status) = startup {
            panic!(
                "etcd in {} exited during start-up ({status}); its log:\n{}",
                self.netns,
                self.log()
            );
        }
        assert!(
            matches!(startup, process::Startup::Answered),
            "etcd in {} was not healthy on {} within {START_TIMEOUT:?}; its log:\n{}",
            self.netns,
            self.endpoint,
            self.log()
        );
    }

    /// The client URL, `http://IP:2379` (`https://` when secure), what `--etcd-endpoints` takes.
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

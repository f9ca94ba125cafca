//! tweed under podman (Debian 12's 4.3, CNI backend), set up as a new user
//! would: `tweed install-cni` writes the plugin and the conflist podman
//! reads as it is (tweed chained with portmap), and podman runs busybox
//! containers on it.
//!
//! Podman's root, runroot, tmpdir, config, CNI config and plugin dirs and
//! libcni's cache are the test's own (`tweed_suite::podman`); podman runs in
//! the node's netns and in a mount namespace of its own, so its netns bind
//! mounts are invisible to the daemon (as under `ip netns exec`), and every
//! attachment goes through the plugin's netns descriptor.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tweed_suite::daemon::Daemon;
use tweed_suite::netns::Netns;
use tweed_suite::podman::{IMAGE, Podman};
use tweed_suite::privileged::require_root;
use tweed_suite::process;
use tweed_suite::underlay::Underlay;

/// A one-node underlay with a daemon, the plugin installed by `install-cni`
/// and a private podman. Dropped podman first (its `rm` runs DEL against the
/// daemon), then the daemon, then the namespaces.
struct Setup {
    podman: Podman,
    daemon: Daemon,
    underlay: Underlay,
    _dir: RemoveDir,
}

impl Setup {
    fn new(prefix: &str, base: &str) -> Self {
        assert_runtime_present();
        let underlay = Underlay::new(prefix, base, 1);
        let daemon = Daemon::start(underlay.node(0), "node0", &[]);
        let dir = PathBuf::from(format!("/tmp/tw-{prefix}-podman-{}", std::process::id()));
        let (bin_dir, conf_dir) = daemon.install_cni(&dir);
        let podman = Podman::new(&dir.join("podman"), underlay.node(0), &conf_dir, &bin_dir);
        Setup {
            podman,
            daemon,
            underlay,
            _dir: RemoveDir(dir),
        }
    }

    fn node(&self) -> &Netns {
        self.underlay.node(0)
    }

    fn node_ip(&self) -> IpAddr {
        self.underlay.node_ip(0)
    }

    /// A detached busybox container on tweed running `cmd`, with `extra` flags.
    fn run(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", "tweed"];
        args.extend(extra);
        args.push(IMAGE);
        args.extend(cmd);
        self.podman.ok(&args)
    }

    /// A container serving `/www` over HTTP on port 80, with a 1 MiB random
    /// `blob` in it.
    fn web(&self, name: &str, extra: &[&str]) -> String {
        let id = self.run(
            name,
            extra,
            &[
                "sh",
                "-c",
                "dd if=/dev/urandom of=/www/blob bs=1024 count=1024 2>/dev/null; \
                 exec httpd -f -p 80 -h /www",
            ],
        );
        let ready = tweed_suite::poll::wait(Duration::from_secs(20), || {
            self.podman
                .run(&["exec", name, "test", "-s", "/www/blob"])
                .success()
        });
        assert!(ready, "{name} never wrote its blob");
        id
    }

    fn ip(&self, name: &str) -> IpAddr {
        let ip = self
            .podman
            .inspect(name, "{{.NetworkSettings.Networks.tweed.IPAddress}}");
        ip.parse()
            .unwrap_or_else(|e| panic!("{name}'s address {ip:?}: {e}"))
    }

    fn mac(&self, name: &str) -> String {
        self.podman
            .inspect(name, "{{.NetworkSettings.Networks.tweed.MacAddress}}")
    }

    fn md5_in(&self, name: &str, file: &str) -> String {
        let out = self.podman.ok(&["exec", name, "md5sum", file]);
        out.split_whitespace().next().unwrap_or_default().to_owned()
    }

    /// `tweed pods -o json` as (container id, ipv4, mac).
    fn pods(&self) -> Vec<(String, Option<String>, String)> {
        let pods = self.daemon.cli_json(&["pods"]);
        pods.as_array()
            .or_else(|| pods["pods"].as_array())
            .expect("a list of pods")
            .iter()
            .map(|p| {
                (
                    p["container_id"].as_str().unwrap_or_default().to_owned(),
                    p["ipv4"].as_str().map(str::to_owned),
                    p["mac"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Pod routes of the dataplane (`tweed routes`), as text.
    fn routes(&self) -> String {
        let out = self.daemon.cli(&["routes"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Files under libcni's cache naming `id`.
    fn cache_entries(&self, id: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut dirs = vec![self.podman.cni_cache()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if std::fs::read_to_string(&p).is_ok_and(|t| t.contains(id))
                    || p.display().to_string().contains(id)
                {
                    found.push(p.display().to_string());
                }
            }
        }
        found
    }

    /// The netns mounts the daemon made for the dataplane.
    fn netns_mounts(&self) -> Vec<String> {
        std::fs::read_dir(self.daemon.run_dir().join("netns"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// `curl` from the node: the body's md5.
    fn node_fetch_md5(&self, url: &str) -> String {
        let out = process::run(
            &mut self.node().command(
                "sh",
                &["-c", &format!("curl -sf --max-time 20 {url} | md5sum")],
            ),
            Duration::from_secs(30),
        );
        assert!(out.success(), "curl {url} from the node: {out}");
        out.stdout
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn ping(&self, from: &str, to: IpAddr) {
        let out = self
            .podman
            .run(&["exec", from, "ping", "-c", "2", "-W", "5", &to.to_string()]);
        assert!(out.success(), "ping {to} from {from}: {out}");
    }

    /// Asserts nothing of container `id` is left anywhere.
    fn assert_gone(&self, id: &str) {
        let pods = self.pods();
        assert!(
            pods.iter().all(|(c, _, _)| c != id),
            "pod {id} left: {pods:?}"
        );
        assert_eq!(self.cache_entries(id), Vec::<String>::new(), "libcni cache");
    }
}

/// Removes the test's directory (plugin, conflist); the last field of
/// [`Setup`], so it goes after podman and the daemon.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// podman, runc and busybox are there (installed by `.ci/install-deps`).
fn assert_runtime_present() {
    for (bin, package) in [
        ("/usr/bin/podman", "podman"),
        ("/usr/sbin/runc", "runc"),
        ("/bin/busybox", "busybox-static"),
        ("/usr/lib/cni/portmap", "containernetworking-plugins"),
        ("/usr/bin/curl", "curl"),
    ] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install {package} (.ci/install-deps does)"
        );
    }
}

#[test]
fn podman_runs_containers_on_tweed() {
    if !require_root() {
        return;
    }
    let s = Setup::new("pm", "10.98.70");

    // The network as podman reads it from install-cni's conflist.
    let networks = s.podman.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        networks.lines().any(|n| n == "tweed"),
        "network ls: {networks}"
    );
    let inspect = s.podman.ok(&["network", "inspect", "tweed"]);
    assert!(inspect.contains("\"tweed\""), "network inspect: {inspect}");

    // Two containers, addressed by tweed.
    let a = s.web("pm-a", &["-p", "8080:80"]);
    let b = s.web("pm-b", &[]);
    let (ip_a, ip_b) = (s.ip("pm-a"), s.ip("pm-b"));
    let pods = s.pods();
    for (id, ip) in [(&a, ip_a), (&b, ip_b)] {
        assert!(
            pods.iter()
                .any(|(c, v4, _)| c == id && v4.as_deref() == Some(&ip.to_string())),
            "tweed pods lacks {id} at {ip}: {pods:?}"
        );
    }
    let short: String = a.chars().take(12).collect();
    let table = String::from_utf8_lossy(&s.daemon.cli(&["pods"]).stdout).into_owned();
    assert!(
        table.contains(&short),
        "tweed pods shows the container id: {table}"
    );
    eprintln!("tweed pods under podman:\n{table}");
    assert_eq!(s.netns_mounts().len(), 2, "the daemon mounted both netns");

    // Ping both ways, a checked TCP transfer, container <-> node.
    s.ping("pm-a", ip_b);
    s.ping("pm-b", ip_a);
    let got = s.podman.ok(&[
        "exec",
        "pm-b",
        "sh",
        "-c",
        &format!("wget -q -O - http://{ip_a}/blob | md5sum"),
    ]);
    assert_eq!(
        got.split_whitespace().next(),
        Some(s.md5_in("pm-a", "/www/blob").as_str()),
        "b fetched a's blob intact"
    );
    s.ping("pm-a", s.node_ip());
    let want_a = s.md5_in("pm-a", "/www/blob");
    assert_eq!(s.node_fetch_md5(&format!("http://{ip_a}/blob")), want_a);

    // -p 8080:80, through portmap chained after tweed.
    assert_eq!(
        s.node_fetch_md5(&format!("http://{}:8080/blob", s.node_ip())),
        want_a,
        "the published port forwards to a"
    );

    // Restart, stop/start: the container comes back with an address again.
    s.podman.ok(&["restart", "-t", "0", "pm-b"]);
    let ip_b = s.ip("pm-b");
    s.ping("pm-a", ip_b);
    s.podman.ok(&["stop", "-t", "0", "pm-b"]);
    assert!(
        s.pods().iter().all(|(c, _, _)| c != &b),
        "a stopped container holds no pod"
    );
    s.podman.ok(&["start", "pm-b"]);
    s.ping("pm-a", s.ip("pm-b"));
    s.ping("pm-b", ip_a);

    // disconnect / connect / reload.
    s.podman.ok(&["network", "disconnect", "tweed", "pm-b"]);
    assert!(
        s.pods().iter().all(|(c, _, _)| c != &b),
        "disconnected: no pod"
    );
    s.podman.ok(&["network", "connect", "tweed", "pm-b"]);
    let ip_b = s.ip("pm-b");
    s.ping("pm-a", ip_b);
    s.podman.ok(&["network", "reload", "pm-b"]);
    s.ping("pm-a", s.ip("pm-b"));

    // rm -f leaves nothing: pod, route, netns mount, libcni cache.
    s.podman.ok(&["rm", "-f", "-t", "0", "pm-a", "pm-b"]);
    s.assert_gone(&a);
    s.assert_gone(&b);
    assert_eq!(s.pods(), Vec::new(), "no pods left");
    let routes = s.routes();
    for ip in [ip_a, ip_b] {
        assert!(
            !routes.contains(&format!("{ip}/32")),
            "route to {ip} left: {routes}"
        );
    }
    assert_eq!(s.netns_mounts(), Vec::<String>::new(), "netns mounts left");
}

#[test]
fn podman_static_ip_and_mac_are_honoured_or_refused() {
    if !require_root() {
        return;
    }
    let s = Setup::new("ps", "10.98.71");
    s.run("ps-probe", &[], &["sleep", "1000"]);
    let IpAddr::V4(probe) = s.ip("ps-probe") else {
        panic!("an IPv4 pod address");
    };
    let [x, y, z, _] = probe.octets();
    let wanted = format!("{x}.{y}.{z}.250");
    let mac = "0a:58:00:00:12:34";
    let id = s.run(
        "ps-fixed",
        &["--ip", &wanted, "--mac-address", mac],
        &["sleep", "1000"],
    );
    assert_eq!(s.ip("ps-fixed").to_string(), wanted);
    assert_eq!(s.mac("ps-fixed"), mac);
    let inside = s
        .podman
        .ok(&["exec", "ps-fixed", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(inside, mac, "the MAC on the pod's interface");
    assert!(
        s.pods()
            .iter()
            .any(|(c, v4, m)| c == &id && v4.as_deref() == Some(wanted.as_str()) && m == mac),
        "tweed pods: {:?}",
        s.pods()
    );
    s.ping("ps-fixed", IpAddr::V4(probe));

    // Taken, outside the node's subnet, the node's own address: refused, and
    // nothing is left of the refused container.
    for (name, ip, why) in [
        ("ps-taken", wanted.as_str(), "already allocated"),
        ("ps-outside", "10.9.9.9", "not allocatable"),
        ("ps-health", &format!("{x}.{y}.{z}.1"), "not allocatable"),
    ] {
        let err = s.podman.fails(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "tweed",
            "--ip",
            ip,
            IMAGE,
            "sleep",
            "1000",
        ]);
        assert!(err.contains(why), "--ip {ip}: {err}");
        let _ = s.podman.run(&["rm", "-f", "-t", "0", name]);
    }
    let err = s.podman.fails(&[
        "run",
        "-d",
        "--name",
        "ps-mcast",
        "--network",
        "tweed",
        "--mac-address",
        "01:00:5e:00:00:01",
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert!(err.contains("multicast"), "--mac-address multicast: {err}");
    let _ = s.podman.run(&["rm", "-f", "-t", "0", "ps-mcast"]);
    assert_eq!(
        s.pods().len(),
        2,
        "only probe and fixed hold pods: {:?}",
        s.pods()
    );
    s.podman
        .ok(&["rm", "-f", "-t", "0", "ps-fixed", "ps-probe"]);
    assert_eq!(s.pods(), Vec::new());
    assert_eq!(s.netns_mounts(), Vec::<String>::new());
}

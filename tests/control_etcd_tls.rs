//! `tweed daemon`s on an etcd that runs as kubeadm's does, and stricter:
//! `https://` with a server certificate from a private CA, client
//! certificates required, and authentication on with a `tweed` user that may
//! only read and write under `/tweed/` (certificates from the openssl CLI,
//! users from etcdctl: see `src/etcd_tls.rs`).
//!
//! Two daemons share it and their pods reach each other across nodes. Then
//! each way of getting the credentials wrong fails at start, with a message
//! that names the step: the files, TLS, or the user.

use std::path::Path;
use std::time::Duration;

use tweed_suite::bins;
use tweed_suite::cluster::{ClusterPod, NodeSpec, node_names, start_together, subnet_v4};
use tweed_suite::daemon::TWEED;
use tweed_suite::etcd::Etcd;
use tweed_suite::etcd_tls::{PASSWORD_FILE_TEXT, USER};
use tweed_suite::netns::Netns;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::process;
use tweed_suite::traffic::wait_ping;
use tweed_suite::underlay::Underlay;

/// How long the nodes may take to see each other and route.
const CONVERGE: Duration = Duration::from_secs(20);
/// How long a daemon that cannot open its store may take to exit (etcd's
/// request timeout is 5 s).
const EXIT: Duration = Duration::from_secs(30);

#[test]
fn two_nodes_share_an_etcd_with_tls_client_certs_and_auth_and_their_pods_reach_each_other() {
    if !require_root() {
        return;
    }
    const PREFIX: &str = "et";
    let underlay = Underlay::new(PREFIX, "10.96.31", 2);
    let etcd = Etcd::start_secure(underlay.switch(), underlay.switch_ip());
    let pki = etcd.pki().expect("a secure etcd has certificates");
    assert!(
        etcd.endpoint().starts_with("https://"),
        "{}",
        etcd.endpoint()
    );
    let mut args = vec![
        "--etcd-endpoints".to_owned(),
        etcd.endpoint().to_owned(),
        "--workers".to_owned(),
        "1".to_owned(),
    ];
    args.extend(pki.tweed_args());
    let names = ["node0".to_owned(), "node1".to_owned()];
    let specs: Vec<NodeSpec<'_>> = (0..2)
        .map(|i| NodeSpec {
            netns: underlay.node(i),
            name: &names[i],
            args: &args,
        })
        .collect();
    let daemons = start_together(&specs);
    let subnets: Vec<_> = daemons.iter().map(subnet_v4).collect();
    assert_ne!(subnets[0], subnets[1], "distinct subnets");
    for d in &daemons {
        let mut seen = Vec::new();
        let both = poll::wait(CONVERGE, || {
            seen = node_names(d);
            seen.len() == 2
        });
        assert!(both, "{} lists both nodes; it lists {seen:?}", d.name());
        assert!(
            d.log().contains("tls, client cert, user tweed"),
            "{} says how it reached etcd; its log:\n{}",
            d.name(),
            d.log()
        );
    }
    let pods: Vec<ClusterPod> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| ClusterPod::add(d, PREFIX, &format!("p{i}")))
        .collect();
    for (a, b) in [(0, 1), (1, 0)] {
        assert!(
            wait_ping(&pods[a].netns, pods[b].ip(), CONVERGE),
            "pod p{a} ({}) → pod p{b} ({}) across nodes",
            pods[a].ip(),
            pods[b].ip()
        );
    }
    // What the nodes wrote is under /tweed/, where the user may write: read it
    // back as that user, over TLS, with etcdctl.
    let out = etcd.etcdctl(
        underlay.switch(),
        &[
            "--user".to_owned(),
            format!("{USER}:{}", PASSWORD_FILE_TEXT.trim_end()),
            "get".to_owned(),
            "--prefix".to_owned(),
            "--keys-only".to_owned(),
            "/tweed/".to_owned(),
        ],
    );
    assert!(out.success(), "etcdctl get as {USER}: {out}");
    for name in &names {
        assert!(
            out.stdout.contains(name.as_str()),
            "a key names {name}: {}",
            out.stdout
        );
    }
}

#[test]
fn a_wrong_ca_no_client_cert_a_bad_password_or_a_missing_file_fail_at_start_naming_the_step() {
    if !require_root() {
        return;
    }
    const PREFIX: &str = "eb";
    let underlay = Underlay::new(PREFIX, "10.96.32", 1);
    let etcd = Etcd::start_secure(underlay.switch(), underlay.switch_ip());
    let pki = etcd.pki().expect("a secure etcd has certificates");
    let endpoint = etcd.endpoint();
    let path = |p: &Path| p.display().to_string();
    let (ca, cert, key) = (
        path(&pki.ca()),
        path(&pki.client_cert()),
        path(&pki.client_key()),
    );
    let password = path(&pki.password_file());
    let (other_ca, wrong_password) = (path(&pki.other_ca()), path(&pki.wrong_password_file()));
    let tls_failed = format!("TLS with etcd at {endpoint} failed (check --etcd-ca");
    let refused = format!(
        "etcd at {endpoint} refused to authenticate user \"tweed\" (check --etcd-username and --etcd-password-file)"
    );
    let cases: [(&str, Vec<&str>, Vec<&str>); 4] = [
        (
            "wrong CA",
            vec![
                "--etcd-ca",
                &other_ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
            ],
            vec![&tls_failed, "invalid peer certificate"],
        ),
        (
            "no client certificate",
            vec![
                "--etcd-ca",
                &ca,
                "--etcd-username",
                USER,
                "--etcd-password-file",
                &password,
            ],
            vec![&tls_failed, "--etcd-cert"],
        ),
        (
            "bad password",
            vec![
                "--etcd-ca",
                &ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                &key,
                "--etcd-username",
                USER,
                "--etcd-password-file",
                &wrong_password,
            ],
            vec![
                &refused,
                "authentication failed, invalid user ID or password",
            ],
        ),
        (
            "missing key file",
            vec![
                "--etcd-ca",
                &ca,
                "--etcd-cert",
                &cert,
                "--etcd-key",
                "/nonexistent/tweed-etcd.key",
            ],
            vec![
                "load the etcd credentials: read --etcd-key /nonexistent/tweed-etcd.key: No such file",
            ],
        ),
    ];
    for (what, flags, expected) in cases {
        let stderr = start_fails(underlay.node(0), PREFIX, endpoint, &flags);
        eprintln!("{what}: {stderr}");
        for part in expected {
            assert!(
                stderr.contains(part),
                "{what}: the error says {part:?}; stderr:\n{stderr}"
            );
        }
    }
}

/// Runs `tweed daemon` in `netns` with `flags` against `endpoint`, expecting
/// it to exit with an error at start; returns its stderr's last line.
fn start_fails(netns: &Netns, prefix: &str, endpoint: &str, flags: &[&str]) -> String {
    let dir = tempdir(prefix);
    let run = dir.path.join("run").display().to_string();
    let state = dir.path.join("state").display().to_string();
    let tweed = bins::bin(TWEED);
    let mut command = netns.command(&tweed.display().to_string(), &[]);
    command
        .args([
            "daemon",
            "--node-name",
            "n0",
            "--run-dir",
            &run,
            "--state-dir",
            &state,
        ])
        .args(["--etcd-endpoints", endpoint, "--workers", "1"])
        .args(flags);
    let out = process::run(&mut command, EXIT);
    assert!(
        !out.timed_out() && !out.success(),
        "tweed daemon {flags:?} fails at start: {out}"
    );
    let last = out.stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("tweed: open the store: "), "{out}");
    last
}

/// A directory removed on drop.
struct TempDir {
    path: std::path::PathBuf,
}

fn tempdir(prefix: &str) -> TempDir {
    let path = std::path::PathBuf::from(format!("/tmp/tw-{prefix}-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    TempDir { path }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

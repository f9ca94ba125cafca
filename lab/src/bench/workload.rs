//! Running the workloads in the pods: the servers (iperf3, sockperf, the
//! connection server) once per pair, a client per run, the output parsed
//! by [`super::parse`]; and the policy-heavy lines' rules put in place.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::lab::{CLIENT_IP, Pair, PolicyHook, ServiceHook};
use super::parse::{self, ConnReport};
use super::plan::{KubeProxy, Metric, Workload};
use super::{rules, services, tweed};
use crate::netns;
use crate::procs::{self, Proc};

/// iperf3's port.
pub const IPERF_PORT: u16 = 5201;
/// sockperf's port.
pub const SOCKPERF_PORT: u16 = 11111;
/// Requests a second on the sparse request/response line.
const SPARSE_MPS: u32 = 100;
/// The connection server's port.
pub const CONN_PORT: u16 = 7000;
/// The port the backend of the Service line with `n` Services listens on:
/// one per line, so a line's translated flows (client → server:port) never
/// share a tuple with an earlier line's or the policy lines' direct ones,
/// which both conntracks would take for the older flow (the kernel's drops
/// the clashing DNAT).
pub fn service_backend_port(n: usize, mode: KubeProxy) -> u16 {
    let base = match mode {
        KubeProxy::Iptables => 7001,
        KubeProxy::Nftables => 7201,
    };
    base + (n / 1_000).min(100) as u16
}
/// How long a server may take to listen, and the path to work.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client may take beyond its run.
const SLACK: Duration = Duration::from_secs(30);

/// The programs the workloads run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `tweed` itself (for `bench-conn`).
    pub tweed: PathBuf,
    /// iperf3.
    pub iperf3: PathBuf,
    /// sockperf.
    pub sockperf: PathBuf,
    /// iptables-restore.
    pub iptables_restore: PathBuf,
    /// nft (kube-proxy's nftables mode, on the Service lines).
    pub nft: PathBuf,
}

/// Starts the servers `workloads` need in the pair's server pod and waits
/// until they listen and the client reaches the connection server.
pub fn start_servers(
    pair: &Pair,
    workloads: &[Workload],
    tools: &Tools,
    dir: &Path,
    procs: &mut Vec<Proc>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), String> {
    let ip = pair.server_ip.to_string();
    let tag = format!("{}-{}", pair.server, pair.implementation.label());
    let mut wanted: Vec<(String, PathBuf, Vec<String>, u16, bool)> = vec![(
        "connection server".into(),
        tools.tweed.clone(),
        vec![
            "bench-conn".into(),
            "serve".into(),
            "--listen".into(),
            format!("{ip}:{CONN_PORT}"),
        ],
        CONN_PORT,
        true,
    )];
    for (n, mode) in workloads
        .iter()
        .filter_map(|w| Some((w.services()?, w.kube_proxy())))
    {
        let port = service_backend_port(n, mode);
        wanted.push((
            format!("Service backend {n}"),
            tools.tweed.clone(),
            vec![
                "bench-conn".into(),
                "serve".into(),
                "--listen".into(),
                format!("{ip}:{port}"),
            ],
            port,
            true,
        ));
    }
    if workloads
        .iter()
        .any(|w| matches!(w, Workload::Tcp1 | Workload::Tcp4 | Workload::Udp))
    {
        wanted.push((
            "iperf3 server".into(),
            tools.iperf3.clone(),
            vec![
                "-s".into(),
                "-p".into(),
                IPERF_PORT.to_string(),
                "-B".into(),
                ip.clone(),
            ],
            IPERF_PORT,
            true,
        ));
    }
    if workloads.contains(&Workload::Rr) || workloads.contains(&Workload::RrSparse) {
        wanted.push((
            "sockperf server".into(),
            tools.sockperf.clone(),
            vec![
                "server".into(),
                "-i".into(),
                ip.clone(),
                "-p".into(),
                SOCKPERF_PORT.to_string(),
            ],
            SOCKPERF_PORT,
            false,
        ));
    }
    // Many short connections: the client may use every port, and reuse
    // those in TIME_WAIT; the server's backlog holds a burst.
    for (ns, key, value) in [
        (&pair.client, "net.ipv4.ip_local_port_range", "1024 65535"),
        (&pair.client, "net.ipv4.tcp_tw_reuse", "1"),
        (&pair.server, "net.core.somaxconn", "4096"),
    ] {
        netns::sysctl(ns, key, value).map_err(|e| e.to_string())?;
    }
    for (what, program, args, port, tcp) in wanted {
        let log = dir.join(format!("{tag}-{}.log", what.replace(' ', "-")));
        let mut proc = Proc::spawn(
            &format!("{what} in {}", pair.server),
            &netns::path(&pair.server),
            &program,
            &args,
            &log,
        )?;
        let file = if tcp { "tcp" } else { "udp" };
        let server = pair.server.clone();
        procs::wait_ready(&mut proc, READY_TIMEOUT, interrupted, || {
            let text = netns::proc_net(&server, file).map_err(|e| e.to_string())?;
            Ok(parse::proc_net_has_port(&text, port, tcp))
        })?;
        procs.push(proc);
    }
    reach(pair, interrupted)
}

/// Waits until the client connects to the connection server.
fn reach(pair: &Pair, interrupted: &dyn Fn() -> bool) -> Result<(), String> {
    let to = SocketAddr::from((pair.server_ip, CONN_PORT));
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline && !interrupted() {
        let outcome = tweed_sys::netns::run_in_netns(&netns::path(&pair.client), move || {
            TcpStream::connect_timeout(&to, Duration::from_secs(1)).map(|_| ())
        });
        match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) | Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{} ({}) does not reach {to} from {}: {last}",
        pair.implementation.label(),
        pair.server,
        pair.client
    ))
}

/// Puts `n` ingress rules on the pair's server pod.
pub fn apply_rules(
    pair: &Pair,
    n: usize,
    tools: &Tools,
    dir: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), String> {
    match &pair.policy {
        PolicyHook::Tweed { socket, port } => tweed::policy(socket, port, n, CLIENT_IP, CONN_PORT),
        PolicyHook::Kernel { node, hostif } => load(
            node,
            &format!("iptables-{node}-{n}"),
            &tools.iptables_restore,
            &[],
            &rules::iptables_restore(n, CLIENT_IP, CONN_PORT, hostif),
            dir,
            interrupted,
        ),
    }
}

/// Loads `rules` into `node`'s netfilter in one transaction with `loader`
/// (`iptables-restore FILE`, `nft -f FILE`), its files named after `name`
/// in `dir`.
fn load(
    node: &str,
    name: &str,
    loader: &Path,
    flags: &[&str],
    rules: &str,
    dir: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), String> {
    let file = dir.join(format!("{name}.rules"));
    std::fs::write(&file, rules).map_err(|e| format!("write {}: {e}", file.display()))?;
    let what = loader
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<String> = flags
        .iter()
        .map(|f| f.to_string())
        .chain([file.display().to_string()])
        .collect();
    let mut proc = Proc::spawn(
        &format!("{what} in {node}"),
        &netns::path(node),
        loader,
        &args,
        &dir.join(format!("{name}.log")),
    )?;
    proc.wait_exit(Duration::from_secs(300), interrupted)
}

/// Puts `n` Services on the client's node (0 removes them): tweed's in its
/// service table, the kernel's as the rules kube-proxy writes in `mode`
/// (and none of the other mode's).
pub fn apply_services(
    pair: &Pair,
    n: usize,
    mode: KubeProxy,
    tools: &Tools,
    dir: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), String> {
    let port = service_backend_port(n, mode);
    match &pair.services {
        ServiceHook::Tweed { socket } => {
            tweed::services(socket, services::tweed_services(n, pair.server_ip, port))
        }
        ServiceHook::Kernel { node } => {
            let (iptables, nftables) = match mode {
                KubeProxy::Iptables => (n, 0),
                KubeProxy::Nftables => (0, n),
            };
            load(
                node,
                &format!("kube-proxy-iptables-{node}-{iptables}"),
                &tools.iptables_restore,
                &[],
                &services::iptables_restore(iptables, pair.server_ip, port),
                dir,
                interrupted,
            )?;
            load(
                node,
                &format!("kube-proxy-nftables-{node}-{nftables}"),
                &tools.nft,
                &["-f"],
                &services::nft_ruleset(nftables, pair.server_ip, port),
                dir,
                interrupted,
            )
        }
    }
}

/// One run of `workload` for `seconds` from the pair's client; the values
/// of its lines.
pub fn run(
    pair: &Pair,
    workload: Workload,
    seconds: u32,
    tools: &Tools,
    log: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<Outcome, String> {
    let ip = pair.server_ip.to_string();
    let secs = seconds.to_string();
    let iperf = |extra: &[&str]| -> (PathBuf, Vec<String>) {
        let mut args: Vec<String> = [
            "-c",
            &ip,
            "-p",
            &IPERF_PORT.to_string(),
            "--connect-timeout",
            "5000",
            "-J",
            "-t",
            &secs,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        (tools.iperf3.clone(), args)
    };
    let (program, args) = match workload {
        Workload::Tcp1 => iperf(&["-O", "1", "-P", "1"]),
        Workload::Tcp4 => iperf(&["-O", "1", "-P", "4"]),
        Workload::Udp => iperf(&["-u", "-l", "64", "-b", "0"]),
        Workload::Rr | Workload::RrSparse => {
            let mut args: Vec<String> = [
                "ping-pong",
                "-i",
                &ip,
                "-p",
                &SOCKPERF_PORT.to_string(),
                "-t",
                &secs,
                "--full-rtt",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if workload == Workload::RrSparse {
                args.extend(["--mps".to_owned(), SPARSE_MPS.to_string()]);
            }
            (tools.sockperf.clone(), args)
        }
        Workload::Conn1k
        | Workload::Conn10k
        | Workload::Svc1k
        | Workload::Svc10k
        | Workload::Svc1kNft
        | Workload::Svc10kNft => {
            let to = match workload.services() {
                Some(n) => format!(
                    "{}:{}",
                    services::vip(services::called(n)),
                    services::SERVICE_PORT
                ),
                None => format!("{ip}:{CONN_PORT}"),
            };
            (
                tools.tweed.clone(),
                ["bench-conn", "connect", "--to", &to, "--seconds", &secs]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            )
        }
    };
    let what = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut proc = Proc::spawn(
        &format!("{what} in {}", pair.client),
        &netns::path(&pair.client),
        &program,
        &args,
        log,
    )?;
    proc.wait_exit(Duration::from_secs(u64::from(seconds)) + SLACK, interrupted)?;
    let out = std::fs::read_to_string(log).map_err(|e| format!("read {}: {e}", log.display()))?;
    // The connection lines' report gives their values and their note.
    let mut note = None;
    let values = match workload {
        Workload::Tcp1 => vec![(Metric::Tcp1, parse::iperf3_tcp(json_part(&out))?)],
        Workload::Tcp4 => vec![(Metric::Tcp4, parse::iperf3_tcp(json_part(&out))?)],
        Workload::Udp => vec![(Metric::Udp64, parse::iperf3_udp(json_part(&out), 64)?)],
        Workload::Rr => {
            let (p50, p99) = parse::sockperf_percentiles(&out)?;
            vec![(Metric::RttP50, p50), (Metric::RttP99, p99)]
        }
        Workload::RrSparse => {
            let (p50, p99) = parse::sockperf_percentiles(&out)?;
            vec![(Metric::SparseRttP50, p50), (Metric::SparseRttP99, p99)]
        }
        Workload::Conn1k | Workload::Conn10k => {
            let report = ConnReport::parse(&out)?;
            note = report.failures_note();
            let metric = if workload == Workload::Conn1k {
                Metric::Conn1k
            } else {
                Metric::Conn10k
            };
            vec![(metric, report.rate()?)]
        }
        Workload::Svc1k | Workload::Svc10k | Workload::Svc1kNft | Workload::Svc10kNft => {
            let report = ConnReport::parse(&out)?;
            note = report.failures_note();
            let (rate, p99) = match workload {
                Workload::Svc1k => (Metric::Svc1k, Metric::SvcConnect1k),
                Workload::Svc10k => (Metric::Svc10k, Metric::SvcConnect10k),
                Workload::Svc1kNft => (Metric::Svc1kNft, Metric::SvcConnect1kNft),
                _ => (Metric::Svc10kNft, Metric::SvcConnect10kNft),
            };
            vec![(rate, report.rate()?), (p99, report.connect_p99_us)]
        }
    };
    Ok(Outcome { values, note })
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// The value of each of the workload's lines.
    pub values: Vec<(Metric, f64)>,
    /// What the table should say beside them (failed connections).
    pub note: Option<String>,
}

/// The JSON document in iperf3's log (a warning on stderr may precede it).
fn json_part(text: &str) -> &str {
    match (text.find('{'), text.rfind('}')) {
        (Some(a), Some(b)) if a < b => &text[a..=b],
        _ => text,
    }
}

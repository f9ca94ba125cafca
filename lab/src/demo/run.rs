//! The demo's steps, in order, each announced as it starts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cni::{self, Sandbox};
use super::matrix::{self, Outcomes};
use super::topology::{Endpoint, PROBE_PORT, SAMPLE_POLICY, Topology};
use super::{CliRunner, DemoArgs, DemoError};
use crate::links::{self, UnderlayEnd};
use crate::netns;
use crate::probe::{self, Connect, Listeners};
use crate::procs::{self, Proc};
use tweed_api::policy::PolicyApply;
use tweed_api::proto::{Request, ResponseBody};

/// How long etcd and each daemon may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes may take to see and reach each other.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// The binaries the demo runs, next to the running `tweed`.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `tweed` itself (for the daemons).
    pub tweed: PathBuf,
    /// The CNI plugin.
    pub cni: PathBuf,
}

impl Binaries {
    /// `tweed`, `tweed-dataplane` and `tweed-cni` in this binary's directory.
    pub fn next_to_this_one() -> Result<Self, DemoError> {
        let tweed = std::env::current_exe().map_err(|e| DemoError::Step {
            step: "find the tweed binary",
            message: e.to_string(),
        })?;
        let dir = tweed.parent().unwrap_or(Path::new("/")).to_path_buf();
        for bin in ["tweed-dataplane", "tweed-cni"] {
            if !dir.join(bin).is_file() {
                return Err(DemoError::MissingBinary(dir.join(bin)));
            }
        }
        Ok(Binaries {
            cni: dir.join("tweed-cni"),
            tweed,
        })
    }
}

/// What is up so far.
struct Cluster {
    t: Topology,
    procs: Vec<Proc>,
    pod_ips: Vec<IpAddr>,
    node_ips: Vec<IpAddr>,
}

fn step_error(step: &'static str) -> impl Fn(String) -> DemoError {
    move |message| DemoError::Step { step, message }
}

fn heading(text: &str) {
    println!("\n==> {text}");
}

/// Brings the cluster up, probes, applies the policy, probes again and
/// shows status and a trace. Leaves the teardown to the caller.
pub fn run(
    args: &DemoArgs,
    bins: &Binaries,
    interrupted: &dyn Fn() -> bool,
    cli: CliRunner<'_>,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let etcd = !args.single_node && args.etcd.is_file();
    if !etcd && !args.single_node {
        println!(
            "etcd is not installed ({} is missing): `apt-get install etcd-server` gives the \
             two-node demo; running the single-node part on the embedded store.",
            args.etcd.display()
        );
    }
    let t = Topology::new(&args.name, etcd);
    let check = |c: &mut Cluster| -> Result<(), DemoError> {
        if interrupted() {
            return Err(DemoError::Interrupted);
        }
        for p in &mut c.procs {
            p.check_running()
                .map_err(step_error("a process of the demo stopped"))?;
        }
        Ok(())
    };
    std::fs::create_dir_all(t.dir()).map_err(|e| DemoError::Step {
        step: "create the demo's directory",
        message: format!("{}: {e}", t.dir().display()),
    })?;
    let mut c = Cluster {
        t,
        procs: Vec::new(),
        pod_ips: Vec::new(),
        node_ips: Vec::new(),
    };

    make_nodes(&c.t)?;
    check(&mut c)?;
    if c.t.uses_etcd() {
        start_etcd(&mut c, &args.etcd, interrupted)?;
    }
    start_daemons(&mut c, &bins.tweed, interrupted)?;
    check(&mut c)?;
    if c.t.uses_etcd() {
        wait_for_peers(&mut c, interrupted)?;
    }
    attach_pods(&mut c, &bins.cni)?;
    check(&mut c)?;

    let served: Vec<PathBuf> = (0..c.t.pods.len())
        .map(|i| netns::path(&c.t.pod_netns(i)))
        .chain((0..c.t.nodes.len()).map(|i| netns::path(&c.t.node_netns(i))))
        .collect();
    let listeners =
        Listeners::start(&served, PROBE_PORT).map_err(step_error("start the probe listeners"))?;

    heading(&format!(
        "Connectivity before any policy (TCP {PROBE_PORT}; `blocked`: no answer within the timeout)"
    ));
    let before = probe_matrix(&c);
    print!("{}", matrix::render(&c.t, &before, false));
    print!("{}", matrix::summary(&c.t, &before, false));
    check(&mut c)?;

    apply_policy(&c)?;
    heading("Connectivity with the policy");
    let after = probe_matrix(&c);
    print!("{}", matrix::render(&c.t, &after, true));
    print!("{}", matrix::summary(&c.t, &after, true));
    println!("  {}", c.t.policy_effect());
    drop(listeners);
    check(&mut c)?;

    for i in 0..c.t.nodes.len() {
        show(cli, &c.t, i, &["status"])?;
    }
    trace_blocked(cli, &c)?;

    let wrong = matrix::mismatches(&c.t, &before, false).len()
        + matrix::mismatches(&c.t, &after, true).len();
    println!("\nThe demo took {:.1}s.", started.elapsed().as_secs_f64());
    if wrong > 0 {
        return Err(DemoError::Unexpected(wrong));
    }
    if args.keep {
        print_keep(&c, &bins.tweed);
    }
    Ok(())
}

/// The node namespaces and their underlay.
fn make_nodes(t: &Topology) -> Result<(), DemoError> {
    let n = t.nodes.len();
    heading(&format!(
        "Creating {n} node{} (network namespaces {}) on the underlay 10.99.0.0/24",
        if n == 1 { "" } else { "s" },
        (0..n)
            .map(|i| t.node_netns(i))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut paths = Vec::new();
    for i in 0..n {
        paths.push(
            netns::create(&t.node_netns(i)).map_err(|e| DemoError::Step {
                step: "create a node namespace",
                message: e.to_string(),
            })?,
        );
    }
    let end = |i: usize| UnderlayEnd {
        netns: &paths[i],
        ip: t.nodes[i].underlay_ip,
    };
    if n == 2 {
        links::underlay(end(0), end(1)).map_err(step_error("build the underlay"))?;
    } else {
        links::lone_underlay(end(0)).map_err(step_error("build the underlay"))?;
    }
    for node in &t.nodes {
        println!("    {}: eth0 {}", node.name, node.underlay_ip);
    }
    Ok(())
}

fn start_etcd(
    c: &mut Cluster,
    etcd: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), DemoError> {
    heading(&format!(
        "Starting etcd on {} ({})",
        c.t.nodes[0].name,
        c.t.etcd_url()
    ));
    let data = c.t.dir().join("etcd");
    let args: Vec<String> = [
        "--name",
        "demo",
        "--data-dir",
        &data.display().to_string(),
        "--listen-client-urls",
        &c.t.etcd_url(),
        "--advertise-client-urls",
        &c.t.etcd_url(),
        "--listen-peer-urls",
        &c.t.etcd_peer_url(),
        "--initial-advertise-peer-urls",
        &c.t.etcd_peer_url(),
        "--initial-cluster",
        &format!("demo={}", c.t.etcd_peer_url()),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let netns = netns::path(&c.t.node_netns(0));
    let log = c.t.dir().join("etcd.log");
    let mut proc =
        Proc::spawn("etcd", &netns, etcd, &args, &log).map_err(step_error("start etcd"))?;
    let addr = SocketAddr::new(
        c.t.nodes[0].underlay_ip.into(),
        super::topology::ETCD_CLIENT_PORT,
    );
    let waited = procs::wait_ready(&mut proc, START_TIMEOUT, interrupted, || {
        procs::etcd_healthy(&netns, addr)
    });
    c.procs.push(proc);
    waited.map_err(step_error("wait for etcd"))?;
    println!("    etcd is healthy");
    Ok(())
}

fn start_daemons(
    c: &mut Cluster,
    tweed: &Path,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), DemoError> {
    let store = if c.t.uses_etcd() {
        format!("etcd at {}", c.t.etcd_url())
    } else {
        "the embedded store".to_owned()
    };
    heading(&format!(
        "Starting a tweed daemon (and its dataplane) on each node, sharing {store}"
    ));
    let mut started = Vec::new();
    for (i, node) in c.t.nodes.iter().enumerate() {
        let run_dir = c.t.run_dir(i);
        std::fs::create_dir_all(&run_dir).map_err(|e| DemoError::Step {
            step: "create a node's run directory",
            message: format!("{}: {e}", run_dir.display()),
        })?;
        let mut args = vec![
            "--run-dir".to_owned(),
            run_dir.display().to_string(),
            "daemon".to_owned(),
            "--node-name".to_owned(),
            node.name.to_owned(),
            "--state-dir".to_owned(),
            c.t.state_dir(i).display().to_string(),
            "--underlay-ip".to_owned(),
            node.underlay_ip.to_string(),
        ];
        if c.t.uses_etcd() {
            args.extend(["--etcd-endpoints".to_owned(), c.t.etcd_url()]);
        }
        let netns = netns::path(&c.t.node_netns(i));
        let proc = Proc::spawn(
            &format!("the daemon of {}", node.name),
            &netns,
            tweed,
            &args,
            &c.t.daemon_log(i),
        )
        .map_err(step_error("start a daemon"))?;
        started.push(proc);
    }
    let base = c.procs.len();
    c.procs.extend(started);
    for i in 0..c.t.nodes.len() {
        let socket = tweed_api::socket_path(&c.t.run_dir(i));
        let mut found = None;
        procs::wait_ready(&mut c.procs[base + i], START_TIMEOUT, interrupted, || {
            let s = procs::status(&socket)?;
            let addr = s.node.node_addrs.iter().copied().find(IpAddr::is_ipv4);
            let subnet = s.node.subnets.first().copied();
            found = addr.zip(subnet).filter(|_| s.dataplane.up);
            Ok(found.is_some())
        })
        .map_err(step_error("wait for a daemon"))?;
        let Some((addr, subnet)) = found else {
            unreachable!("wait_ready returns Ok only once found is set")
        };
        println!(
            "    {}: subnet {subnet}, node address {addr} (on tweed0), dataplane up",
            c.t.nodes[i].name,
        );
        c.node_ips.push(addr);
    }
    Ok(())
}

/// The daemon of node `i` (the daemons are the last processes started).
fn daemon_proc(c: &mut Cluster, i: usize) -> &mut Proc {
    let base = c.procs.len() - c.t.nodes.len();
    &mut c.procs[base + i]
}

fn wait_for_peers(c: &mut Cluster, interrupted: &dyn Fn() -> bool) -> Result<(), DemoError> {
    heading("Waiting for the nodes to see each other through etcd and answer over the overlay");
    for i in 0..c.t.nodes.len() {
        let socket = tweed_api::socket_path(&c.t.run_dir(i));
        let others = c.t.nodes.len() - 1;
        let mut rtts = Vec::new();
        let name = c.t.nodes[i].name;
        procs::wait_ready(daemon_proc(c, i), PEER_TIMEOUT, interrupted, || {
            let s = procs::status(&socket)?;
            rtts = s
                .peers
                .iter()
                .filter(|p| p.reachable == Some(true))
                .map(|p| (p.node.name.clone(), p.rtt_ms.unwrap_or(0.0)))
                .collect();
            Ok(rtts.len() >= others)
        })
        .map_err(step_error("wait for the nodes to reach each other"))?;
        for (peer, rtt) in rtts {
            println!("    {name} reaches {peer} over the overlay ({rtt:.2} ms)");
        }
    }
    Ok(())
}

fn attach_pods(c: &mut Cluster, plugin: &Path) -> Result<(), DemoError> {
    heading(
        "Attaching 4 pods in 2 namespaces through the CNI plugin (CNI_COMMAND=ADD, as a runtime does)",
    );
    for i in 0..c.t.pods.len() {
        let pod = c.t.pods[i].clone();
        let path = netns::create(&c.t.pod_netns(i)).map_err(|e| DemoError::Step {
            step: "create a pod namespace",
            message: e.to_string(),
        })?;
        let socket = tweed_api::socket_path(&c.t.run_dir(pod.node));
        let started = Instant::now();
        let ip = cni::add(
            plugin,
            &socket,
            Sandbox {
                container_id: &c.t.container_id(i),
                netns: &path,
                namespace: pod.namespace,
                name: pod.name,
                app: pod.app,
            },
        )
        .map_err(step_error("attach a pod"))?;
        println!(
            "    {:<16} app={:<4} on {}: {ip} (ADD took {:.1} ms)",
            pod.key(),
            pod.app,
            c.t.nodes[pod.node].name,
            started.elapsed().as_secs_f64() * 1e3
        );
        c.pod_ips.push(ip);
    }
    Ok(())
}

fn address(c: &Cluster, e: Endpoint) -> IpAddr {
    match e {
        Endpoint::Pod(i) => c.pod_ips[i],
        Endpoint::Node(i) => c.node_ips[i],
    }
}

fn netns_of(c: &Cluster, e: Endpoint) -> PathBuf {
    match e {
        Endpoint::Pod(i) => netns::path(&c.t.pod_netns(i)),
        Endpoint::Node(i) => netns::path(&c.t.node_netns(i)),
    }
}

fn probe_matrix(c: &Cluster) -> Outcomes {
    let cells = c.t.cells();
    let probes: Vec<Connect> = cells
        .iter()
        .map(|&(src, dst)| Connect {
            netns: netns_of(c, src),
            dst: address(c, dst),
            port: PROBE_PORT,
        })
        .collect();
    let outcomes = probe::connect_all(&probes);
    cells.into_iter().zip(outcomes).collect::<BTreeMap<_, _>>()
}

fn apply_policy(c: &Cluster) -> Result<(), DemoError> {
    let db =
        c.t.pods
            .iter()
            .position(|p| p.app == "db")
            .unwrap_or(c.t.pods.len() - 1);
    let node = c.t.pods[db].node;
    heading(&format!(
        "Applying a NetworkPolicy (`tweed policy apply`, through {}, which runs {})",
        c.t.nodes[node].name,
        c.t.pods[db].key()
    ));
    for line in SAMPLE_POLICY.lines() {
        println!("    {line}");
    }
    let socket = tweed_api::socket_path(&c.t.run_dir(node));
    let reply = tweed_api::client::call(
        &socket,
        Request::PolicyApply(PolicyApply {
            text: SAMPLE_POLICY.to_owned(),
        }),
    )
    .map_err(|e| DemoError::Step {
        step: "apply the sample policy",
        message: e.to_string(),
    })?;
    if let ResponseBody::Applied(applied) = reply {
        for key in applied.applied {
            println!("    applied {key}");
        }
        for warning in applied.warnings {
            println!("    warning: {warning}");
        }
    }
    Ok(())
}

/// Prints `tweed --run-dir DIR ARGS` and what it prints, run in-process.
fn show(cli: CliRunner<'_>, t: &Topology, node: usize, args: &[&str]) -> Result<(), DemoError> {
    let run_dir = t.run_dir(node);
    heading(&format!(
        "tweed --run-dir {} {}",
        run_dir.display(),
        args.join(" ")
    ));
    let text = cli(&run_dir, args).map_err(|message| DemoError::Step {
        step: "run a tweed command",
        message,
    })?;
    print!("{text}");
    Ok(())
}

fn trace_blocked(cli: CliRunner<'_>, c: &Cluster) -> Result<(), DemoError> {
    let Some((src, dst)) = c.t.traced() else {
        return Ok(());
    };
    let from = c.t.pods[src].key();
    let to = c.pod_ips[dst];
    let port = PROBE_PORT.to_string();
    let to_text = to.to_string();
    let args = [
        "trace", "--from", &from, "--to", &to_text, "--proto", "tcp", "--port", &port,
    ];
    println!(
        "\n    (the packet {from} → {} tcp/{PROBE_PORT} the matrix shows blocked, traced where it is dropped)",
        c.t.pods[dst].key()
    );
    show(cli, &c.t, c.t.pods[src].node, &args)?;
    // The trace shows the dataplane's rule ids; explain names the policy.
    let to_pod = c.t.pods[dst].key();
    let port = format!("{PROBE_PORT}/tcp");
    show(
        cli,
        &c.t,
        c.t.pods[src].node,
        &[
            "policy", "explain", "--from", &from, "--to", &to_pod, "--port", &port,
        ],
    )
}

fn print_keep(c: &Cluster, tweed: &Path) {
    let t = &c.t;
    let tweed = tweed.display();
    let a = t.run_dir(0).display().to_string();
    let last = t.run_dir(t.nodes.len() - 1).display().to_string();
    heading("The demo keeps running (--keep). Explore it, as root:");
    println!("    {tweed} --run-dir {a} status");
    println!("    {tweed} --run-dir {last} pods");
    println!("    {tweed} --run-dir {last} policy list");
    println!("    {tweed} --run-dir {last} stats");
    println!(
        "    ip netns exec {} ping -c 3 {}    # {} → {}",
        t.pod_netns(0),
        c.pod_ips[1],
        t.pods[0].key(),
        t.pods[1].key()
    );
    println!("    logs: {}/*/daemon.log", t.dir().display());
    println!("Remove it:");
    println!("    {tweed} demo --down{}", name_flag(t));
}

fn name_flag(t: &Topology) -> String {
    if t.name == super::topology::DEFAULT_NAME {
        String::new()
    } else {
        format!(" --name {}", t.name)
    }
}

//! `tweed bench`: the end-to-end benchmark, tweed's dataplane against the
//! kernel's own path on the same machine, in the same run.
//!
//! It builds its own network namespaces (one node and two nodes, for each
//! implementation side by side: [`lab`], [`kernel`], [`tweed`]), runs each
//! workload ([`workload`]: iperf3 TCP and UDP, sockperf ping-pong, the
//! connection rate to a ClusterIP among many [`services`] (native tweed
//! against kube-proxy's iptables rules), and the policy-heavy connection
//! rate of [`connrate`] against [`rules`]) tweed
//! then kernel back to back, takes medians ([`stats`]) and prints a table or
//! JSON ([`render`]). Every name starts with `tb-PID-`; [`cleanup`] removes
//! it all at the end, also on error, panic and Ctrl-C. The pure parts are
//! [`plan`], [`parse`], [`rules`], [`services`], [`stats`] and [`render`].

pub mod cleanup;
pub mod connrate;
pub mod kernel;
pub mod lab;
pub mod parse;
pub mod plan;
pub mod render;
pub mod rules;
pub mod services;
pub mod stats;
pub mod tweed;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};

use self::lab::Pair;
use self::plan::{Impl, KubeProxy, Topology, Workload};
use self::render::{Machine, Report};
use self::stats::Samples;
use self::tweed::DataplaneOptions;
use self::workload::Tools;
use crate::procs::Proc;
use tweed_control::cli::output::Output;

/// `tweed bench` arguments.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// One run of 3 s per line (the default: the median of 3 runs of 5 s).
    #[arg(long)]
    pub quick: bool,
    /// Only this topology.
    #[arg(long, value_enum)]
    pub topology: Option<Topology>,
    /// Only these workloads (comma-separated): tcp1, tcp4, udp, rr (sockperf
    /// ping-pong: RTT p50 and p99), rr-sparse (the same at 100 requests a
    /// second: a lone request's round trip), svc1k, svc10k (new connections per second
    /// and p99 connect time to a ClusterIP among 1,000 or 10,000 Services:
    /// native tweed against kube-proxy's iptables rules), svc1k-nft,
    /// svc10k-nft (the same against kube-proxy's nftables rules), conn1k,
    /// conn10k (new connections per second to a pod with 1,000 or 10,000
    /// ingress rules).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "WORKLOAD,...")]
    pub lines: Vec<Workload>,
    /// Runs per line and implementation (overrides the mode's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: Option<u32>,
    /// Seconds per run (overrides the mode's).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub seconds: Option<u32>,
    /// The dataplanes' tap I/O.
    #[arg(long, value_enum, default_value_t = IoArg::Auto)]
    pub io: IoArg,
    /// The dataplanes' worker threads.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// The dataplanes' workers busy-poll (`tweed-dataplane --busy-poll`): the
    /// lowest latency, for a core per worker.
    #[arg(long)]
    pub busy_poll: bool,
    /// How long the dataplanes' workers linger after traffic before they
    /// sleep (`tweed-dataplane --linger-us`; 0: they sleep at once)
    /// [default: the dataplane's].
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub linger_us: Option<u32>,
}

/// `tweed-dataplane --io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IoArg {
    /// io_uring where it works, else epoll.
    Auto,
    /// io_uring.
    Uring,
    /// epoll.
    Epoll,
}

impl IoArg {
    fn name(self) -> &'static str {
        match self {
            IoArg::Auto => "auto",
            IoArg::Uring => "uring",
            IoArg::Epoll => "epoll",
        }
    }
}

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Not root.
    #[error("tweed bench makes network namespaces and needs root: run it as root (e.g. with sudo)")]
    NotRoot,
    /// The dataplane is not next to `tweed`.
    #[error(
        "{0} is missing: build every binary with `cargo build --release` and run target/release/tweed"
    )]
    MissingBinary(PathBuf),
    /// A tool a selected workload runs is not installed.
    #[error("{tool} is not installed: apt-get install {package}")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// Its Debian package.
        package: &'static str,
    },
    /// A step failed.
    #[error("{step}: {message}")]
    Step {
        /// What the bench was doing.
        step: String,
        /// What went wrong.
        message: String,
    },
    /// Ctrl-C or SIGTERM.
    #[error("interrupted; everything the bench made is removed")]
    Interrupted,
    /// Some runs failed (the table says which).
    #[error("{0} lines have failed runs (the reasons are under the table)")]
    Failed(usize),
    /// The teardown left something behind.
    #[error("the teardown left something behind: {0}")]
    Leftovers(String),
}

/// Runs `tweed bench`.
pub fn bench(args: &BenchArgs, output: Output) -> Result<(), BenchError> {
    if !tweed_sys::process::is_root() {
        return Err(BenchError::NotRoot);
    }
    let workloads: Vec<Workload> = if args.lines.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.lines.clone()
    };
    let topologies: Vec<Topology> = args.topology.map_or(Topology::ALL.to_vec(), |t| vec![t]);
    let tweed = std::env::current_exe().map_err(|e| step("find the tweed binary", e))?;
    let dataplane = tweed
        .parent()
        .unwrap_or(Path::new("/"))
        .join("tweed-dataplane");
    if !dataplane.is_file() {
        return Err(BenchError::MissingBinary(dataplane));
    }
    let tools = tools(tweed, &workloads)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())
            .map_err(|e| step("catch Ctrl-C", e))?;
    }
    let is_interrupted = move || interrupted.load(Ordering::Relaxed);
    let (runs, seconds) = if args.quick { (1, 3) } else { (3, 5) };
    let runs = args.runs.unwrap_or(runs);
    let seconds = args.seconds.unwrap_or(seconds);
    let pid = std::process::id();
    let prefix = format!("tb-{pid}-");
    let guard = Cleanup {
        prefix: prefix.clone(),
        dir: std::env::temp_dir().join(format!("tb-{pid}")),
        done: false,
    };
    std::fs::create_dir_all(&guard.dir)
        .map_err(|e| step(&format!("create {}", guard.dir.display()), e))?;
    let machine = machine();
    let opts = DataplaneOptions {
        binary: dataplane,
        io: args.io.name().to_owned(),
        workers: args.workers,
        busy_poll: args.busy_poll,
        linger_us: args.linger_us,
        mtu: lab::POD_MTU,
    };
    let bench = Bench {
        prefix: &prefix,
        dir: &guard.dir,
        opts: &opts,
        tools: &tools,
        seconds,
        interrupted: &is_interrupted,
    };
    let outcome = bench.run(&topologies, &workloads, runs);
    let problems = guard.finish();
    let outcome = match outcome {
        Err(_) if is_interrupted() => Err(BenchError::Interrupted),
        other => other,
    };
    let samples = outcome?;
    if !problems.is_empty() {
        return Err(BenchError::Leftovers(problems.join("; ")));
    }
    let report = Report {
        mode: if args.quick { "quick" } else { "full" },
        runs,
        seconds,
        io: opts.io.clone(),
        workers: opts.workers,
        busy_poll: opts.busy_poll,
        linger_us: opts.linger_us,
        machine,
        lines: samples.lines(),
    };
    let text = match output {
        Output::Table => render::table(&report),
        Output::Json => render::json(&report),
    };
    print!("{text}");
    let failed = report.lines.iter().filter(|l| !l.errors.is_empty()).count();
    if failed > 0 {
        return Err(BenchError::Failed(failed));
    }
    Ok(())
}

fn step(step: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Step {
        step: step.to_owned(),
        message: e.to_string(),
    }
}

/// Removes everything on drop (an error or a panic), or when finished.
struct Cleanup {
    prefix: String,
    dir: PathBuf,
    done: bool,
}

impl Cleanup {
    fn finish(mut self) -> Vec<String> {
        self.done = true;
        cleanup::remove(&self.prefix, &self.dir)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.done {
            let _ = cleanup::remove(&self.prefix, &self.dir);
        }
    }
}

/// Finds the programs the chosen workloads run.
fn tools(tweed: PathBuf, workloads: &[Workload]) -> Result<Tools, BenchError> {
    let need =
        |on: bool, tool: &'static str, package: &'static str| -> Result<PathBuf, BenchError> {
            match which(tool) {
                Some(path) => Ok(path),
                None if !on => Ok(PathBuf::from(tool)),
                None => Err(BenchError::MissingTool { tool, package }),
            }
        };
    let has = |ws: &[Workload]| workloads.iter().any(|w| ws.contains(w));
    Ok(Tools {
        tweed,
        iperf3: need(
            has(&[Workload::Tcp1, Workload::Tcp4, Workload::Udp]),
            "iperf3",
            "iperf3",
        )?,
        sockperf: need(
            has(&[Workload::Rr, Workload::RrSparse]),
            "sockperf",
            "sockperf",
        )?,
        iptables_restore: need(
            has(&[
                Workload::Conn1k,
                Workload::Conn10k,
                Workload::Svc1k,
                Workload::Svc10k,
                Workload::Svc1kNft,
                Workload::Svc10kNft,
            ]),
            "iptables-restore",
            "iptables",
        )?,
        nft: need(
            has(&[
                Workload::Svc1k,
                Workload::Svc10k,
                Workload::Svc1kNft,
                Workload::Svc10kNft,
            ]),
            "nft",
            "nftables",
        )?,
    })
}

/// `program` in `PATH` or the sbin directories (root's tools live there).
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn machine() -> Machine {
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        loadavg_start: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

/// One bench's settings.
struct Bench<'a> {
    prefix: &'a str,
    dir: &'a Path,
    opts: &'a DataplaneOptions,
    tools: &'a Tools,
    seconds: u32,
    interrupted: &'a dyn Fn() -> bool,
}

/// One topology, up.
struct Up {
    topology: Topology,
    pairs: Vec<Pair>,
    procs: Vec<Proc>,
    /// Why an implementation cannot run its workloads (policy or set-up).
    broken: [Option<String>; 2],
}

impl Bench<'_> {
    /// Every step in the order [`plan::steps`] gives.
    fn run(
        &self,
        topologies: &[Topology],
        workloads: &[Workload],
        runs: u32,
    ) -> Result<Samples, BenchError> {
        let steps = plan::steps(topologies, workloads, runs);
        let total = steps.len();
        let mut samples = Samples::default();
        let mut up: Option<Up> = None;
        let mut workload: Option<Workload> = None;
        // How many Services the clients' nodes hold now, and in which mode.
        let mut services = (0, KubeProxy::Iptables);
        for (i, s) in steps.iter().enumerate() {
            if (self.interrupted)() {
                return Err(BenchError::Interrupted);
            }
            if up.as_ref().map(|u| u.topology) != Some(s.topology) {
                if let Some(old) = up.take() {
                    self.tear_down(old);
                }
                eprintln!(
                    "{}: setting up tweed and the kernel path…",
                    s.topology.label()
                );
                up = Some(self.set_up(s.topology, workloads)?);
                workload = None;
                services = (0, KubeProxy::Iptables);
            }
            let u = up.as_mut().expect("set up above");
            if workload != Some(s.workload) {
                workload = Some(s.workload);
                let wanted = (s.workload.services().unwrap_or(0), s.workload.kube_proxy());
                if wanted != services {
                    let (n, mode) = wanted;
                    let rules = match mode {
                        KubeProxy::Iptables => "iptables",
                        KubeProxy::Nftables => "nftables",
                    };
                    eprintln!(
                        "{}: loading {n} Services into both (tweed's table, kube-proxy's {rules} rules)…",
                        s.topology.label()
                    );
                    for (k, pair) in u.pairs.iter().enumerate() {
                        if let Err(e) = workload::apply_services(
                            pair,
                            n,
                            mode,
                            self.tools,
                            self.dir,
                            self.interrupted,
                        ) {
                            u.broken[k] = Some(format!("loading {n} Services: {e}"));
                        }
                    }
                    services = wanted;
                }
                if let Some(n) = s.workload.rules() {
                    eprintln!(
                        "{}: loading {n} ingress rules into both…",
                        s.topology.label()
                    );
                    for (k, pair) in u.pairs.iter().enumerate() {
                        u.broken[k] =
                            workload::apply_rules(pair, n, self.tools, self.dir, self.interrupted)
                                .err()
                                .map(|e| format!("loading {n} rules: {e}"));
                    }
                }
            }
            eprintln!("{}", plan::progress(s, i, total, runs));
            let k = match s.implementation {
                Impl::Tweed => 0,
                Impl::Kernel => 1,
            };
            if let Some(why) = self.dead(u) {
                u.broken[0] = Some(why);
            }
            if let Some(why) = &u.broken[k] {
                samples.fail(s.topology, s.workload.metrics(), s.implementation, why);
                continue;
            }
            let log = self.dir.join(format!(
                "{:?}-{:?}-{}-{}.log",
                s.topology,
                s.workload,
                s.implementation.label(),
                s.run
            ));
            match workload::run(
                &u.pairs[k],
                s.workload,
                self.seconds,
                self.tools,
                &log,
                self.interrupted,
            ) {
                Ok(outcome) => {
                    for (metric, v) in outcome.values {
                        samples.add(s.topology, metric, s.implementation, v);
                    }
                    if let Some(note) = outcome.note {
                        samples.note(s.topology, s.workload.metrics(), s.implementation, &note);
                    }
                }
                Err(_) if (self.interrupted)() => return Err(BenchError::Interrupted),
                Err(e) => {
                    eprintln!("  failed: {e}");
                    samples.fail(
                        s.topology,
                        s.workload.metrics(),
                        s.implementation,
                        &first_line(&e),
                    );
                }
            }
        }
        if let Some(old) = up {
            self.tear_down(old);
        }
        Ok(samples)
    }

    /// Why a dataplane of this topology stopped, if one did.
    fn dead(&self, u: &mut Up) -> Option<String> {
        u.procs
            .iter_mut()
            .filter(|p| p.what.starts_with("tweed-dataplane"))
            .find_map(|p| p.check_running().err())
            .map(|e| first_line(&e))
    }

    fn set_up(&self, topology: Topology, workloads: &[Workload]) -> Result<Up, BenchError> {
        let label = topology.label();
        let mut procs = Vec::new();
        let tweed = lab::tweed_pair(
            topology,
            self.prefix,
            self.dir,
            self.opts,
            &mut procs,
            self.interrupted,
        )
        .map_err(|e| step(&format!("{label}: set up tweed"), e))?;
        let kernel = lab::kernel_pair(topology, self.prefix)
            .map_err(|e| step(&format!("{label}: set up the kernel path"), e))?;
        for pair in [&tweed, &kernel] {
            workload::start_servers(
                pair,
                workloads,
                self.tools,
                self.dir,
                &mut procs,
                self.interrupted,
            )
            .map_err(|e| {
                step(
                    &format!(
                        "{label}: start the servers ({})",
                        pair.implementation.label()
                    ),
                    e,
                )
            })?;
        }
        Ok(Up {
            topology,
            pairs: vec![tweed, kernel],
            procs,
            broken: [None, None],
        })
    }

    /// Removes a topology's namespaces (and so its processes and links).
    fn tear_down(&self, mut up: Up) {
        let names = cleanup::namespaces(self.prefix);
        crate::netns::stop_processes(&names, std::time::Duration::from_secs(5));
        for p in &mut up.procs {
            p.reap();
        }
        for n in &names {
            let _ = crate::netns::remove(n);
        }
    }
}

fn first_line(e: &str) -> String {
    e.lines().next().unwrap_or_default().to_owned()
}

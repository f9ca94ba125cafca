//! `tweed-dataplane`: the forwarding process.
//!
//! Opens the host port and the underlay sockets, starts one worker per core,
//! restores the ports of a previous run from its state file, and serves the
//! config API until SIGTERM or SIGINT. Pod taps are persistent: stopping or
//! killing the process leaves every pod's interface and addresses in place,
//! and the next start re-attaches them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;
use tweed_api::dataplane::proto::{MacAddr, PortRange};
use tweed_dataplane::daemon::config::{self, Config};
use tweed_dataplane::daemon::idle::IdlePolicy;
use tweed_dataplane::daemon::io::IoMode;
use tweed_dataplane::daemon::worker::MAX_WORKERS;

/// tweed's userspace dataplane: forwards pod traffic between taps and the underlay.
#[derive(Debug, Parser)]
#[command(name = "tweed-dataplane", version, about, args_override_self = true)]
struct Args {
    /// Where the config API listens (mode 0600).
    #[arg(
        long,
        default_value = "/run/tweed/dataplane.sock",
        env = "TWEED_DATAPLANE_SOCKET"
    )]
    socket: PathBuf,
    /// Where the state file is kept (ports, peers, routes, policy).
    #[arg(long, default_value = "/var/lib/tweed")]
    state_dir: PathBuf,
    /// Worker threads, each with its own queue on every tap [default: the number of cores].
    #[arg(long)]
    workers: Option<usize>,
    /// The address the VXLAN and UDP sockets bind to (this node's underlay address).
    #[arg(long, default_value = "0.0.0.0")]
    underlay_ip: IpAddr,
    /// VXLAN's UDP port (flannel's vxlan backend uses 8472).
    #[arg(long, default_value_t = config::DEFAULT_VXLAN_PORT)]
    vxlan_port: u16,
    /// The UDP port of flannel's udp encapsulation.
    #[arg(long, default_value_t = 8285)]
    udp_port: u16,
    /// The VXLAN network identifier.
    #[arg(long, default_value_t = 1)]
    vni: u32,
    /// The pods' MTU: the underlay's MTU minus 50 (VXLAN) or 28 (UDP).
    #[arg(long, default_value_t = 1450)]
    mtu: u16,
    /// The host port's name (the node's side of pod traffic).
    #[arg(long, default_value = "tweed0")]
    host_port: String,
    /// Run without a host port.
    #[arg(long)]
    no_host_port: bool,
    /// The gateway MAC pods see.
    #[arg(long, default_value = "ee:ee:ee:ee:ee:ee")]
    gateway_mac: MacAddr,
    /// This node's VTEP MAC [default: 02:77 followed by the underlay IPv4 address].
    #[arg(long)]
    vtep_mac: Option<MacAddr>,
    /// The most flows tracked at once.
    #[arg(long, default_value_t = 262_144)]
    conntrack_capacity: usize,
    /// The UDP ports VXLAN is sent from, FIRST-LAST (1 to 64 ports; peers
    /// told of them drop VXLAN from other ports) [default: 8 the kernel picks].
    #[arg(long)]
    vxlan_source_ports: Option<PortRange>,
    /// The cluster's Service range (kube-proxy's --service-cluster-ip-range;
    /// once per family): a pod's egress policy is then checked against the
    /// Service's backend, after the node's kernel translated the packet,
    /// instead of against the Service address.
    #[arg(long, value_name = "CIDR")]
    service_cidr: Vec<IpNet>,
    /// The workers' tap I/O: io_uring where the kernel has it (auto), or
    /// forced; the choice is logged and shown by `tweed status`.
    #[arg(long, value_enum, default_value_t = IoMode::Auto, env = "TWEED_DATAPLANE_IO")]
    io: IoMode,
    /// Workers never sleep: each polls its sources in a loop, for the lowest
    /// round-trip time. Costs a full core per worker even when idle: use it
    /// with `--workers` no more than the cores the node can give away.
    #[arg(long, env = "TWEED_DATAPLANE_BUSY_POLL")]
    busy_poll: bool,
    /// After traffic, a worker keeps looking for more, yielding the CPU
    /// between looks, for this many microseconds before it sleeps: a reply
    /// that comes back within it finds the worker awake instead of paying a
    /// wake-up. 0 turns it off; `--busy-poll` overrides it.
    #[arg(long, value_name = "US", default_value_t = 50, env = "TWEED_DATAPLANE_LINGER_US",
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    linger_us: u32,
}

impl Args {
    fn into_config(self) -> Result<Config, String> {
        // By default one per core, up to the most there may be.
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_WORKERS)
        });
        if workers == 0 || workers > MAX_WORKERS {
            return Err(format!("--workers {workers}: use 1 to {MAX_WORKERS}"));
        }
        if self.vni > tweed_dataplane::wire::vxlan::MAX_VNI {
            return Err(format!("--vni {}: a VNI has 24 bits", self.vni));
        }
        if let Some(ports) = self.vxlan_source_ports
            && ports.len() > config::MAX_VXLAN_SOURCE_PORTS
        {
            return Err(format!(
                "--vxlan-source-ports {ports}: give at most {} ports",
                config::MAX_VXLAN_SOURCE_PORTS
            ));
        }
        if self.mtu < 576 {
            return Err(format!("--mtu {}: use at least 576", self.mtu));
        }
        Ok(Config {
            socket: self.socket,
            state_dir: self.state_dir,
            workers,
            underlay_ip: self.underlay_ip,
            vxlan_port: self.vxlan_port,
            udp_port: self.udp_port,
            vni: self.vni,
            mtu: self.mtu,
            host_port: (!self.no_host_port).then_some(self.host_port),
            gateway_mac: self.gateway_mac.0,
            vtep_mac: self
                .vtep_mac
                .map(|m| m.0)
                .unwrap_or_else(|| config::vtep_mac_for(self.underlay_ip)),
            conntrack_capacity: self.conntrack_capacity,
            vxlan_source_ports: self.vxlan_source_ports,
            service_cidrs: self.service_cidr.iter().map(IpNet::trunc).collect(),
            io: self.io,
            idle: IdlePolicy::from_flags(
                self.busy_poll,
                Duration::from_micros(u64::from(self.linger_us)),
            ),
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let config = match args.into_config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("tweed-dataplane: {message}");
            return ExitCode::from(2);
        }
    };
    match tweed_dataplane::daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes down to the errno, on one line.
            eprintln!("tweed-dataplane: {}", tweed_api::error::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

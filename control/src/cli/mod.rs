//! The `tweed` command line: `tweed daemon` runs the control daemon; every
//! other subcommand is one or two calls on its control socket, printed as a
//! table (the default) or as the reply's pretty JSON (`-o json`).
//!
//! The split keeps the output testable without a daemon: [`execute`] takes
//! the call as a function and returns the text; the renderers ([`render`],
//! [`stats`]) are pure functions of the replies; [`run`] adds the socket and
//! stdout. Errors reach `main` as one [`CliError`], printed as one line.

pub mod install;
pub mod output;
pub mod policy;
pub mod render;
pub mod service;
pub mod stats;
pub mod table;
pub mod trace;

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::api::client::{Client, ClientError};
use crate::api::node::PeerAdd;
use crate::api::proto::{
    Backend, Empty, MacAddr, NameArgs, Protocol, Request, ResponseBody, TraceFrom, TraceRequest,
};
use crate::api::{DEFAULT_RUN_DIR, socket_path};
pub use output::Output;

/// `tweed`'s node commands: the control daemon and its command line. The
/// `tweed` binary (the `tweed-cmd` crate) adds `demo` and `bench` from
/// `tweed-lab` beside them.
#[derive(Parser, Debug)]
#[command(name = "tweed", version, about, propagate_version = true)]
pub struct Cli {
    /// The options every command takes.
    #[command(flatten)]
    pub globals: Globals,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The options every `tweed` command takes.
#[derive(Args, Debug, Clone)]
pub struct Globals {
    /// The daemon's run directory, which holds control.sock.
    #[arg(long, global = true, env = "TWEED_RUN_DIR", default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// How to print answers.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The subcommands.
// Parsed once per process: the daemon's many flags make one variant large, at no cost.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the control daemon (serves RUN_DIR/control.sock).
    Daemon(crate::config::DaemonArgs),
    /// Install the CNI plugin (as /opt/cni/bin/tweed) and its conflist.
    InstallCni(install::InstallArgs),
    /// Show this node, the store, the dataplane and the peers' reachability.
    Status,
    /// List the pods attached on this node.
    Pods,
    /// List this node, the other nodes and the static peers.
    Nodes,
    /// List the dataplane's routes.
    Routes,
    /// Add, remove or list static peers.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Show the dataplane's counters.
    Stats,
    /// Run a synthetic packet through the dataplane (nothing is sent).
    Trace(TraceArgs),
    /// Apply, delete, list and explain network policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Set or remove labels of pods and namespaces (policy selects by them).
    #[command(subcommand)]
    Label(policy::LabelCommand),
    /// Apply, delete and list Services the dataplane balances itself
    /// (`--native-services`, a kube-proxy replacement).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

/// `tweed peer ...`.
#[derive(Subcommand, Debug)]
pub enum PeerCommand {
    /// Add or replace a static peer.
    Add(PeerAddArgs),
    /// Remove a static peer.
    Remove {
        /// The peer's name.
        name: String,
    },
    /// List the static peers.
    List,
}

/// The encapsulation of a static peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// VXLAN (RFC 7348).
    Vxlan,
    /// flannel's UDP encapsulation.
    Udp,
}

/// `tweed peer add` arguments.
#[derive(Args, Debug)]
pub struct PeerAddArgs {
    /// The peer's name.
    pub name: String,
    /// A pod subnet behind the peer, e.g. 10.244.9.0/24 (repeatable).
    #[arg(long = "subnet", value_name = "CIDR", required = true)]
    pub subnets: Vec<IpNet>,
    /// The peer's address on the underlay.
    #[arg(long, value_name = "IP")]
    pub underlay_ip: IpAddr,
    /// The MAC of the peer's VTEP, e.g. 02:00:00:00:09:01.
    #[arg(long, value_name = "MAC")]
    pub vtep_mac: MacAddr,
    /// The encapsulation the peer speaks.
    #[arg(long, value_enum, default_value_t = BackendArg::Vxlan)]
    pub backend: BackendArg,
}

/// `tweed trace` arguments.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Where the packet enters: NAMESPACE/POD, host or peer:NAME.
    #[arg(long, value_name = "FROM", value_parser = trace::parse_from)]
    pub from: TraceFrom,
    /// The destination address.
    #[arg(long, value_name = "IP")]
    pub to: IpAddr,
    /// The source address; by default the --from pod's address.
    #[arg(long, value_name = "IP")]
    pub src: Option<IpAddr>,
    /// The protocol: tcp, udp, sctp, icmp, icmpv6 or a number.
    #[arg(long, value_name = "PROTO", default_value = "tcp", value_parser = trace::parse_protocol)]
    pub proto: Protocol,
    /// The destination port (or ICMP echo identifier).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
    /// The source port.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub src_port: u16,
}

/// Why a command failed; printed by `main` as `tweed: <message>`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the daemon failed, or it refused the request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The arguments cannot make a request (e.g. no source for a trace).
    #[error("{0}")]
    Usage(String),
    /// The daemon answered with a body of another op.
    #[error("the daemon answered {0} with an unexpected reply")]
    Unexpected(&'static str),
    /// Starting the daemon's async runtime failed.
    #[error("starting the daemon's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The daemon stopped with an error (boxed: it is large).
    #[error(transparent)]
    Daemon(Box<crate::daemon::DaemonError>),
    /// `install-cni` failed; the message names the step and the path.
    #[error("{0}")]
    Install(String),
    /// Writing the answer failed.
    #[error("writing to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

/// Runs the command line: the daemon, or one command against the socket
/// in `globals.run_dir`, printing its answer to stdout.
pub fn run(globals: Globals, command: Command) -> Result<(), CliError> {
    let command = match command {
        Command::Daemon(args) => return run_daemon(globals.run_dir, args),
        Command::InstallCni(args) => {
            for path in install::install(&args, &globals.run_dir).map_err(CliError::Install)? {
                println!("installed {}", path.display());
            }
            return Ok(());
        }
        command => command,
    };
    let text = execute_at(&globals.run_dir, globals.output, &command)?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `tweed pods | head` closing the pipe early is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(()),
    }
}

fn run_daemon(run_dir: PathBuf, args: crate::config::DaemonArgs) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime
        .block_on(crate::daemon::run(run_dir, args))
        .map_err(|e| CliError::Daemon(Box::new(e)))
}

/// The request `command` makes; a trace without `--src` first looks the
/// source up with `pod_list` through `call`.
fn request(
    command: &Command,
    call: &mut dyn FnMut(Request) -> Result<ResponseBody, ClientError>,
) -> Result<Request, CliError> {
    Ok(match command {
        Command::Status => Request::Status(Empty {}),
        Command::Pods => Request::PodList(Empty {}),
        Command::Nodes => Request::NodeList(Empty {}),
        Command::Routes => Request::RouteList(Empty {}),
        Command::Stats => Request::Stats(Empty {}),
        Command::Peer(PeerCommand::List) => Request::PeerList(Empty {}),
        Command::Peer(PeerCommand::Remove { name }) => {
            Request::PeerRemove(NameArgs { name: name.clone() })
        }
        Command::Peer(PeerCommand::Add(args)) => Request::PeerAdd(PeerAdd {
            name: args.name.clone(),
            subnets: args.subnets.clone(),
            underlay_ip: args.underlay_ip,
            vtep_mac: args.vtep_mac,
            backend: match args.backend {
                BackendArg::Vxlan => Backend::Vxlan,
                BackendArg::Udp => Backend::Udp,
            },
        }),
        Command::Trace(args) => Request::Trace(trace_request(args, call)?),
        Command::Label(label) => policy::label_request(label)?,
        Command::Service(command) => service::service_request(command)?,
        Command::Daemon(_) | Command::InstallCni(_) | Command::Policy(_) => {
            return Err(CliError::Usage(
                "`tweed daemon`, `tweed install-cni` and `tweed policy` are not one call to the daemon"
                    .to_owned(),
            ));
        }
    })
}

fn trace_request(
    args: &TraceArgs,
    call: &mut dyn FnMut(Request) -> Result<ResponseBody, ClientError>,
) -> Result<TraceRequest, CliError> {
    let src = match args.src {
        Some(src) => src,
        None => {
            let pods = if matches!(args.from, TraceFrom::Port(_)) {
                match call(Request::PodList(Empty {}))? {
                    ResponseBody::Pods(reply) => reply.pods,
                    _ => return Err(CliError::Unexpected("pod_list")),
                }
            } else {
                Vec::new()
            };
            trace::pod_source(&args.from, args.to, &pods).map_err(CliError::Usage)?
        }
    };
    Ok(TraceRequest {
        from: args.from.clone(),
        src,
        dst: args.to,
        protocol: args.proto.clone(),
        src_port: args.src_port,
        dst_port: args.port,
    })
}

/// Parses `args` as a `tweed` command line (without the program name), runs
/// it against the daemon whose run directory is `run_dir` and returns what
/// it prints (as the line asks, tables by default): what `tweed demo` shows.
pub fn run_line(run_dir: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let line = std::iter::once("tweed").chain(args.iter().copied());
    let parsed = Cli::try_parse_from(line).map_err(|e| e.to_string())?;
    execute_at(run_dir, parsed.globals.output, &parsed.command).map_err(|e| e.to_string())
}

/// Runs `command` against the daemon whose run directory is `run_dir` (one
/// connection, made at the first call) and returns the text to print.
pub fn execute_at(
    run_dir: &std::path::Path,
    output: Output,
    command: &Command,
) -> Result<String, CliError> {
    let path = socket_path(run_dir);
    let mut client: Option<Client> = None;
    let mut call = |request: Request| -> Result<ResponseBody, ClientError> {
        let client = match &mut client {
            Some(client) => client,
            None => client.insert(Client::connect(&path)?),
        };
        client.call(request)
    };
    execute(output, command, &mut call)
}

/// Makes the calls of `command` through `call` and returns the text to print.
pub fn execute(
    output: Output,
    command: &Command,
    call: &mut dyn FnMut(Request) -> Result<ResponseBody, ClientError>,
) -> Result<String, CliError> {
    if let Command::Policy(policy_command) = command {
        return execute_policy(output, policy_command, call);
    }
    let request = request(command, call)?;
    let op = request.op().name();
    let body = call(request)?;
    if output == Output::Json {
        let mut text = serde_json::to_string_pretty(&body.to_value()).unwrap_or_default();
        text.push('\n');
        return Ok(text);
    }
    Ok(match (command, &body) {
        (_, ResponseBody::Status(status)) => render::render_status(status),
        (_, ResponseBody::Pods(pods)) => render::render_pods(&pods.pods),
        (_, ResponseBody::Nodes(nodes)) => render::render_nodes(&nodes.nodes),
        (_, ResponseBody::Routes(routes)) => render::render_routes(&routes.routes),
        (_, ResponseBody::Peers(peers)) => render::render_peers(&peers.peers),
        (_, ResponseBody::Stats(counters)) => stats::render_stats(counters),
        (_, ResponseBody::Trace(trace)) => stats::render_trace(trace),
        (_, ResponseBody::Labels(reply)) => policy::render_labels(&reply.labels),
        (_, ResponseBody::ServicesApplied(reply)) => service::render_applied(reply),
        (_, ResponseBody::Services(reply)) => service::render_services(reply),
        (Command::Service(service::ServiceCommand::Delete { service }), ResponseBody::Empty(_)) => {
            format!("service {service} deleted\n")
        }
        (Command::Peer(PeerCommand::Add(args)), ResponseBody::Empty(_)) => {
            format!("peer {} added\n", args.name)
        }
        (Command::Peer(PeerCommand::Remove { name }), ResponseBody::Empty(_)) => {
            format!("peer {name} removed\n")
        }
        _ => return Err(CliError::Unexpected(op)),
    })
}

/// `tweed policy ...`: one call, or one per policy of a file for a delete.
fn execute_policy(
    output: Output,
    command: &policy::PolicyCommand,
    call: &mut dyn FnMut(Request) -> Result<ResponseBody, ClientError>,
) -> Result<String, CliError> {
    let mut text = String::new();
    let mut values = Vec::new();
    for request in policy::policy_requests(command)? {
        let op = request.op().name();
        let deleted = match &request {
            Request::PolicyDelete(key) => Some(key.clone()),
            _ => None,
        };
        let body = call(request)?;
        values.push(body.to_value());
        text.push_str(&match (&body, deleted) {
            (ResponseBody::Applied(reply), _) => policy::render_applied(reply),
            (ResponseBody::Policies(reply), _) => policy::render_policies(reply),
            (ResponseBody::Explain(reply), _) => policy::render_explain(reply),
            (ResponseBody::Empty(_), Some(key)) => format!("{key} deleted\n"),
            _ => return Err(CliError::Unexpected(op)),
        });
    }
    if output == Output::Json {
        let value = match <[serde_json::Value; 1]>::try_from(values) {
            Ok([one]) => one,
            Err(many) => serde_json::Value::Array(many),
        };
        let mut json = serde_json::to_string_pretty(&value).unwrap_or_default();
        json.push('\n');
        return Ok(json);
    }
    Ok(text)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

//! `tweed`: the control daemon (`tweed daemon`) and its command line, from
//! `tweed-control`, and `tweed demo` and `tweed bench`, from `tweed-lab`.
//!
//! Every failure is one line on stderr, `tweed: <what went wrong>` with its
//! causes, and exit code 1; usage errors are clap's (exit code 2).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tweed_control::cli::{self, Command, Globals};
use tweed_lab::{bench, demo};

/// tweed: a pod network's control daemon, its command line, its demo and
/// its benchmark.
#[derive(Parser, Debug)]
#[command(name = "tweed", version, propagate_version = true)]
struct Tweed {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: TweedCommand,
}

/// The node's commands, then the lab's.
// Parsed once per process: the daemon's many flags make one variant large, at no cost.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum TweedCommand {
    #[command(flatten)]
    Node(Command),
    /// Run a two-node cluster with four pods in network namespaces, probe
    /// it, apply a policy, probe again, and tear it down (as root).
    Demo(demo::DemoArgs),
    /// Measure tweed's packet path against the kernel's, in namespaces it
    /// builds and removes (as root): TCP, UDP, RTT and the connection rate
    /// through 1,000 and 10,000 policy rules, one node and two nodes.
    Bench(bench::BenchArgs),
    /// The connection-rate workload's ends (run by `tweed bench` in its pods).
    #[command(hide = true)]
    BenchConn(bench::connrate::ConnArgs),
}

/// Why `tweed` failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A node command failed.
    #[error(transparent)]
    Node(#[from] cli::CliError),
    /// `tweed demo` failed (after tearing down what it made).
    #[error("demo")]
    Demo(#[source] demo::DemoError),
    /// `tweed bench` failed (after removing what it made).
    #[error("bench")]
    Bench(#[source] bench::BenchError),
    /// `tweed bench-conn` failed.
    #[error("bench-conn: {0}")]
    BenchConn(String),
}

fn run(tweed: Tweed) -> Result<(), Failure> {
    match tweed.command {
        TweedCommand::Node(command) => Ok(cli::run(tweed.globals, command)?),
        TweedCommand::Demo(args) => demo::demo(&args, &cli::run_line).map_err(Failure::Demo),
        TweedCommand::Bench(args) => {
            bench::bench(&args, tweed.globals.output).map_err(Failure::Bench)
        }
        TweedCommand::BenchConn(args) => bench::connrate::run(&args).map_err(Failure::BenchConn),
    }
}

fn main() -> ExitCode {
    match run(Tweed::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes (a cause its text already ends with
            // is not repeated), on one line even if a message from the daemon
            // holds a newline.
            let message = tweed_api::error::error_chain(&e).replace(['\n', '\r'], " ");
            eprintln!("tweed: {message}");
            ExitCode::FAILURE
        }
    }
}

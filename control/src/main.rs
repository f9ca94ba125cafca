//! `tweed`: the control daemon (`tweed daemon`) and its command line.
//!
//! Every failure is one line on stderr, `tweed: <what went wrong>`, and
//! exit code 1; usage errors are clap's (exit code 2).

use std::process::ExitCode;

use clap::Parser;
use tweed_control::cli::{Cli, run};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, even if a message from the daemon holds a newline.
            let message = e.to_string().replace(['\n', '\r'], " ");
            eprintln!("tweed: {message}");
            ExitCode::FAILURE
        }
    }
}

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
            // The error and its causes (a cause its text already ends with
            // is not repeated), on one line even if a message from the daemon
            // holds a newline.
            let message = tweed_api::error::error_chain(&e).replace(['\n', '\r'], " ");
            eprintln!("tweed: {message}");
            ExitCode::FAILURE
        }
    }
}

//! `tweed-cni`: tweed's CNI plugin (SPEC 1.1.0; installed as
//! `/opt/cni/bin/tweed` for configurations with `"type":"tweed"`).
//!
//! A container runtime runs it once per operation: the command and the
//! container in `CNI_*` environment variables, the network configuration on
//! stdin. It asks the tweed daemon (over `control.sock`) to do the work and
//! prints the result, or the spec's error JSON, on stdout; an error exits 1.
//! It never panics to the runtime: a panic is turned into an error JSON too.
//!
//! - `spec` (the library, `lib.rs`): the protocol, pure (env, config,
//!   results, errors, CHECK's diff);
//! - `cmd`: the commands, over the daemon's client;
//! - `netns`: what CHECK reads from the pod's netns.

mod cmd;
mod netns;

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::Value;
use tweed_cni::spec;

use spec::{CniError, CniVersion, Command, Env, code, config};

fn main() -> ExitCode {
    // A panic is a bug; the runtime still gets the spec's JSON, not a trace.
    std::panic::set_hook(Box::new(|info| {
        let e = CniError::new(code::IO, format!("tweed-cni failed unexpectedly: {info}"));
        print_json(&e.to_json(CniVersion::LATEST));
        std::process::exit(1);
    }));
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let version = config::peek_version(&stdin).unwrap_or(CniVersion::LATEST);
    let outcome = match read {
        Ok(_) => {
            Env::parse(|k| std::env::var(k).ok()).and_then(|env| Ok((cmd::run(&env, &stdin)?, env)))
        }
        Err(e) => Err(CniError::new(code::IO, format!("reading stdin: {e}"))),
    };
    match outcome {
        Ok((Some(out), env)) => {
            if print_json(&out) {
                return ExitCode::SUCCESS;
            }
            // The runtime never saw the result: release what ADD made.
            if env.command == Command::Add {
                let _ = cmd::undo_add(&env, &stdin);
            }
            ExitCode::FAILURE
        }
        Ok((None, _)) => ExitCode::SUCCESS,
        Err(e) => {
            print_json(&e.to_json(version));
            ExitCode::FAILURE
        }
    }
}

/// Writes `value` and a newline to stdout; false if that failed.
fn print_json(value: &Value) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").and_then(|()| out.flush()).is_ok()
}

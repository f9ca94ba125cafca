//! `tweed demo`: a small cluster on this one machine, in network namespaces.
//!
//! Two nodes, each a namespace with its own `tweed daemon` and dataplane,
//! joined by a veth as their underlay and sharing state through etcd (one
//! node on the embedded store when etcd is not installed); four pods in two
//! Kubernetes namespaces, attached through `tweed-cni` as a runtime would.
//! It probes every pod and node from every other (a connectivity matrix),
//! applies a sample NetworkPolicy, probes again, shows `tweed status` and a
//! `tweed trace` of a blocked packet, and tears everything down, also on
//! Ctrl-C. With `--keep` it leaves the cluster running; `--down` removes it.
//!
//! The pure parts are [`topology`] (what is built and what each probe should
//! find) and [`matrix`] (rendering and comparing); the rest is I/O at the
//! edges: the lab's [`crate::netns`] and [`crate::links`] over syscalls and
//! rtnetlink (no `ip`), [`crate::procs`], [`crate::probe`], and here [`cni`]
//! and [`teardown`].

pub mod cni;
pub mod matrix;
pub mod run;
pub mod teardown;
pub mod topology;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use self::topology::DEFAULT_NAME;

/// `tweed demo` arguments.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Leave the cluster running and print how to explore it and remove it.
    #[arg(long, conflicts_with = "down")]
    pub keep: bool,
    /// Remove a demo left running (by --keep, or by a demo that was killed).
    #[arg(long)]
    pub down: bool,
    /// The demo's name: its namespaces are NAME-*, its files /run/NAME.
    #[arg(long, default_value = DEFAULT_NAME, value_parser = parse_name)]
    pub name: String,
    /// The etcd binary the two nodes share state through.
    #[arg(long, value_name = "FILE", default_value = "/usr/bin/etcd")]
    pub etcd: PathBuf,
    /// Run one node on the embedded store even if etcd is installed.
    #[arg(long, conflicts_with = "down")]
    pub single_node: bool,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Not root: namespaces and taps need CAP_NET_ADMIN and CAP_SYS_ADMIN.
    #[error("tweed demo makes network namespaces and needs root: run it as root (e.g. with sudo)")]
    NotRoot,
    /// A binary it runs is not next to `tweed`.
    #[error(
        "{0} is missing: build every binary with `cargo build --release` and run target/release/tweed"
    )]
    MissingBinary(PathBuf),
    /// A step failed.
    #[error("{step}: {message}")]
    Step {
        /// What the demo was doing.
        step: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Ctrl-C or SIGTERM.
    #[error("interrupted; everything the demo made is removed")]
    Interrupted,
    /// Probes found something else than the policy says.
    #[error(
        "{0} probes were not as expected (marked UNEXPECTED above); the logs were in /run/<name>"
    )]
    Unexpected(usize),
    /// The teardown left something behind.
    #[error("the teardown left something behind: {0}")]
    Leftovers(String),
}

fn parse_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?}: use 1 to 32 of a-z, 0-9 and '-', not starting with '-'"
        ))
    }
}

/// Runs one `tweed` command line (its arguments, without the program name)
/// against the daemon whose run directory is given, in-process, and returns
/// what it prints. The CLI passes its own in, so the demo shows exactly what
/// a user typing those arguments sees, without depending on the CLI.
pub type CliRunner<'a> = &'a dyn Fn(&Path, &[&str]) -> Result<String, String>;

/// Runs `tweed demo`; `cli` runs the `tweed` commands it shows.
pub fn demo(args: &DemoArgs, cli: CliRunner<'_>) -> Result<(), DemoError> {
    if !tweed_sys::process::is_root() {
        return Err(DemoError::NotRoot);
    }
    let bins = run::Binaries::next_to_this_one()?;
    if args.down {
        let removed = teardown::teardown(&args.name, &bins.cni);
        if !removed.anything() {
            println!("no demo named {} is running", args.name);
        } else {
            println!("{}", removed.describe());
        }
        for warning in &removed.warnings {
            println!("warning: {warning}");
        }
        return leftovers(removed);
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone()).map_err(|e| DemoError::Step {
            step: "catch Ctrl-C",
            message: e.to_string(),
        })?;
    }
    let stale = teardown::teardown(&args.name, &bins.cni);
    if stale.anything() {
        println!("removed a demo left from before: {}", stale.describe());
    }
    let is_interrupted = {
        let flag = interrupted.clone();
        move || flag.load(Ordering::Relaxed)
    };
    let outcome = run::run(args, &bins, &is_interrupted, cli);
    if args.keep && outcome.is_ok() {
        return Ok(());
    }
    if outcome.is_err() && !is_interrupted() {
        save_logs(&args.name);
    }
    println!("\n==> Tearing down");
    let removed = teardown::teardown(&args.name, &bins.cni);
    println!("    {}", removed.describe());
    for warning in &removed.warnings {
        println!("    warning: {warning}");
    }
    let outcome = match outcome {
        Err(_) if is_interrupted() => Err(DemoError::Interrupted),
        other => other,
    };
    outcome?;
    leftovers(removed)
}

/// Copies the logs of a failed demo (etcd's, each daemon's) to
/// `/tmp/NAME-logs`, since the teardown removes `/run/NAME`.
fn save_logs(name: &str) {
    let dir = topology::Topology::new(name, true).dir();
    let saved = std::path::PathBuf::from(format!("/tmp/{name}-logs"));
    let mut logs = Vec::new();
    let mut dirs = vec![dir];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                logs.push(path);
            }
        }
    }
    if logs.is_empty() || std::fs::create_dir_all(&saved).is_err() {
        return;
    }
    for log in &logs {
        let parent = log
            .parent()
            .and_then(|p| p.file_name())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = log.file_name().map(|f| f.to_string_lossy().into_owned());
        let target = saved.join(format!("{parent}-{}", file.unwrap_or_default()));
        let _ = std::fs::copy(log, target);
    }
    println!("\nThe logs are saved in {}.", saved.display());
}

fn leftovers(removed: teardown::Removed) -> Result<(), DemoError> {
    if removed.problems.is_empty() {
        Ok(())
    } else {
        Err(DemoError::Leftovers(removed.problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_name;

    #[test]
    fn names_are_short_lowercase_words() {
        assert!(parse_name("tweed-demo").is_ok());
        assert!(parse_name("t2").is_ok());
        for bad in ["", "-x", "Demo", "a/b", "a b", &"x".repeat(33)] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
    }
}

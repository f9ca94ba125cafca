//! `tweed-dataplane`: the forwarding process.

use clap::Parser;

/// tweed's userspace dataplane: forwards pod traffic between taps and the underlay.
#[derive(Debug, Parser)]
#[command(name = "tweed-dataplane", version)]
struct Args {}

fn main() {
    let _args = Args::parse();
}

// STUB (lead replaces)
//! The daemon's settings (stub so that the CLI compiles).

/// `tweed daemon` flags.
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {}

//! How `tweed` prints answers: `-o table` or `-o json`.

use clap::ValueEnum;

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// The daemon's reply, as pretty JSON, for programs.
    Json,
}

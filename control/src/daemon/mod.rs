// STUB (lead replaces)
//! The control daemon (stub so that the CLI compiles).

use std::path::PathBuf;

/// Runs the daemon with its run directory (`--run-dir` / `TWEED_RUN_DIR`) until it is stopped.
pub async fn run(run_dir: PathBuf, args: crate::config::DaemonArgs) -> Result<(), String> {
    let _ = args;
    Err(format!(
        "the control daemon is not built yet (run dir {})",
        run_dir.display()
    ))
}

//! Locating the workspace's binaries (`tweed-dataplane`, later `tweed` and
//! `tweed-cni`).
//!
//! An integration test runs from `target/<profile>/deps/`; the binaries cargo
//! built for the same profile are one directory up. Cargo only builds another
//! package's binaries when asked, so a missing one is reported with the
//! command that builds it rather than as a confusing spawn error.

use std::path::PathBuf;

/// The dataplane binary's name.
pub const DATAPLANE: &str = "tweed-dataplane";

/// The directory holding the binaries of the profile this test was built with.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe: the test binary's path");
    let deps = exe.parent().expect("the test binary lives in a directory");
    // `target/<profile>/deps/<test>` → `target/<profile>`; a binary run from
    // elsewhere (e.g. copied) looks next to itself.
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps).to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The path of workspace binary `name`, built for this test's profile.
///
/// Panics with the command to run when it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    if !path.is_file() {
        panic!(
            "{name} not found at {}: build the workspace's binaries first \
             (`cargo build --workspace`, with `--release` for a release test run)",
            path.display()
        );
    }
    path
}

//! The CNI protocol as `tweed-cni` speaks it, as a library so that the fuzz
//! target (`dataplane/fuzz`, `cni_stdin`) decodes a runtime's environment
//! and stdin with the very code the plugin runs. The plugin itself is
//! `main.rs`.
//!
//! - `spec`: the protocol, pure: versions, errors, the `CNI_*` environment,
//!   the network configuration, results, CHECK's comparisons, wanted addresses.
//!
//! The binary's own modules (declared in `main.rs`, not here) are the edge:
//! `cmd` (the six commands over the daemon's `control.sock`; → `spec`, `netns`)
//! and `netns` (what CHECK reads from the pod's netns over rtnetlink; → `spec`).

pub mod spec;

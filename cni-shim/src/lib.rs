//! The CNI protocol as `tweed-cni` speaks it, as a library so that the fuzz
//! target (`dataplane/fuzz`, `cni_stdin`) decodes a runtime's environment
//! and stdin with the very code the plugin runs. The plugin itself is
//! `main.rs`.

pub mod spec;

//! Shared support for tweed's integration tests and benchmarks.
//!
//! This package owns `benches/` (criterion) and `tests/` (integration tests over
//! real network namespaces); what those need in common lives here.

pub mod workload;

//! tweed's lab: a pod network built on this one machine, in network
//! namespaces, from the same parts a real node runs (the `tweed` daemon and
//! dataplane, `tweed-cni`, etcd), and the two things built from it that the
//! `tweed` binary offers: `tweed demo` and `tweed bench`. Not the daemon:
//! nothing here runs on a production node unless a user asks for the demo or
//! the benchmark, and the daemon's crate (`tweed-control`) does not link it.
//!
//! Layers, each importing only those above it:
//!
//! - The rooms: [`netns`] (named namespaces made and removed as `ip netns`
//!   does, the processes in them, sysctls), [`links`] (veths, the underlay,
//!   addresses and routes over rtnetlink; nothing shells out to `ip`),
//!   [`procs`] (processes in a namespace with their logs, started, waited
//!   for, checked and stopped), [`probe`] (TCP listeners and connects from
//!   inside namespaces, all at once).
//! - [`demo`]: `tweed demo`: two nodes and four pods, a connectivity matrix
//!   before and after a policy, status and a trace; its pure parts are
//!   `demo::{topology, matrix}`.
//! - [`bench`]: `tweed bench`: tweed's packet path against the kernel's in
//!   the same run; its pure parts are `bench::{plan, parse, rules, services,
//!   stats, render}`.
//!
//! From `tweed-control`: the CLI's tables and output format, and
//! `cli::run_line`, through which the demo runs the `tweed` commands it
//! shows; the policy parser (the demo's sample policy), the balancer's plan
//! and the push batches (the bench's Services). From `tweed-api`: the
//! control API's client and types. From `tweed-sys`: netns, netlink,
//! processes.
//!
//! The test harness (`tweed-suite`'s `src/`) builds on the same rooms: its
//! namespaces are made, listed, emptied and removed by [`netns`], and it
//! waits for and stops its processes with [`procs`]. What it keeps of its
//! own serves assertions: bounded runs with captured output, probe agents
//! for many kinds of traffic, and reading a namespace's state back with `ip`
//! (which a test may use and the product may not).

pub mod links;
pub mod netns;
pub mod probe;
pub mod procs;

pub mod bench;
pub mod demo;

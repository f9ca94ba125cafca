//! tweed's control plane: cluster state, IP address management, node peers
//! and policy, the daemon that runs a node, and the CLI that shows them.
//!
//! # Layer map
//!
//! Modules in import order: each imports only modules listed above it (its
//! own submodules aside), except the known exceptions at the end.
//!
//! Pure core (no I/O, no clock; machine facts and time are passed in):
//! - `policy`: manifests parsed and validated, compiled per endpoint, explained.
//! - `ipam`: node subnet plans and the pod address pool (decide, persist, commit).
//! - `config`: flags, TOML file and defaults resolved into one `DaemonConfig` (→ ipam).
//! - `services`: Kubernetes Services and EndpointSlices (the YAML `tweed service
//!   apply` takes, or the API server's objects) read into the Service ports the
//!   dataplane's service table balances (native Services).
//!
//! Protocol (its reply types are also what `metrics` and `kubernetes` report in):
//! - `api`: `control.sock`: the clients' half (wire types, codec, blocking
//!   client) is the `tweed-api` crate, re-exported; here validation (pure,
//!   → policy) and the server.
//!
//! State:
//! - `store`: the `Store` trait (etcd's model cut down), embedded (redb) and etcd.
//! - `cluster`: key layout, subnet leases, node records, the view peers come from
//!   (→ store, ipam, config, policy).
//!
//! Edges (I/O: the kernel, sockets, processes; system calls through the
//! `tweed-sys` crate, the workspace's only unsafe code):
//! - `host`: the kernel's side of `tweed0` (rtnetlink), nft masquerade, filter
//!   and steering (native Services from outside), underlay and MTU detection.
//! - `health`: the overlay health port and the peer prober; `HealthBook` (pure).
//! - `metrics`: the scrape snapshot, its text (pure), the HTTP endpoint
//!   (→ health, store, api).
//! - `dataplane`: client of the dataplane's API, the supervisor that keeps it
//!   running, resync diffs and push batching (pure) (→ config).
//! - `pods`: pod records: the IPAM pool made durable, plus their dataplane ports
//!   (→ store, cluster, ipam, dataplane).
//! - `enforce`: policy inputs followed from the store, compiled for this node's
//!   pods, pushed to the dataplane (→ store, cluster, policy, pods, dataplane).
//! - `balance`: native Services followed from the store, read for this node,
//!   pushed to the dataplane's service table, steered from outside, their
//!   health check node ports answered (→ store, cluster, services, dataplane,
//!   host, metrics' HTTP loop).
//! - `kubernetes`: the Kubernetes datasource: objects as store entries, mirrored,
//!   layered with the embedded store (→ store, cluster, config, policy, api, pods).
//!
//! The process:
//! - `daemon`: `tweed daemon`: start-up, background tasks, the `control.sock`
//!   handler (→ every module above).
//!
//! The face (what a user runs):
//! - `cli`: the `tweed` command line and its tables (→ api, config, daemon,
//!   policy, store). The `tweed` binary is the `tweed-cmd` crate: these
//!   commands, and `tweed demo` and `tweed bench` from `tweed-lab` (which
//!   uses `cli::{output, table, run_line}`).
//!
//! I/O modules keep their decisions in pure files beside the I/O: `host::plan`,
//! `enforce::{world, plan}`, `balance::{inputs, plan}`, `dataplane::{resync, batch}`, `health::book`,
//! `kubernetes::{translate, reflect}`, `metrics::{render, families, request}`.
//!
//! From `tweed-api`: the control API's wire types and the names of policies
//! (`PolicyKind`, `PolicyKey`), which `policy` re-exports.
//!
//! From `tweed-api`, too: the dataplane's API (`tweed_api::dataplane`). From
//! `tweed-dataplane`: its API's checks (`api::validate`), the ACL classifier
//! behind `policy::explain` (`table::acl`), the Service table's types.
//!
//! From `tweed-sys`: `netns`, `netlink`, `cred`, `umask` and `process` (signals,
//! `geteuid`, bind mounts).
//!
//! No file imports another that imports it back (no cycles). Known exception
//! to the order above:
//! - `config` (pure) takes pure items from later modules (`host::detect`'s
//!   overheads and `pod_mtu`, `store`'s `EtcdAuth` check, `api::DEFAULT_RUN_DIR`)
//!   and limits from the dataplane's process module (`tweed_dataplane::daemon`);
//!   `resolve::load_file` reads the TOML file.

pub mod api;
pub mod balance;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod enforce;
pub mod health;
pub mod host;
pub mod ipam;
pub mod kubernetes;
pub mod metrics;
pub mod pods;
pub mod policy;
pub mod services;
pub mod store;

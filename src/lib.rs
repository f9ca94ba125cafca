//! Shared support for tweed's integration tests and benchmarks.
//!
//! This package owns `benches/` (criterion) and `tests/` (integration tests over
//! real network namespaces); what those need in common lives here.
//!
//! The integration-test harness, one concern per module:
//!
//! - [`privileged`]: whether this process may create namespaces (root), and
//!   what a test does when it may not.
//! - [`bins`]: where the workspace's binaries are.
//! - [`process`]: running a command with a deadline.
//! - [`netns`]: a network namespace that deletes itself (made, listed and
//!   removed by `tweed_lab::netns`, the demo's and the bench's code), and
//!   veth pairs.
//! - [`api`]: a line-JSON client for the dataplane's config API.
//! - [`node`]: a node: a netns running its own `tweed-dataplane`.
//! - [`pod`]: a pod: a netns attached to a node through `port_add`.
//! - [`traffic`]: ping, checked TCP transfers, UDP round trips, TCP connects.
//! - [`dns`]: dnsmasq in a pod and an A-record query, for the Service tests.
//! - [`manifests`]: a Service and its EndpointSlice, for `tweed service apply`.
//! - [`poll`]: waiting for a condition with a deadline instead of sleeping.
//! - [`tmpfs`]: a small tmpfs to fill up, for the disk-full tests.
//! - [`underlay`]: N node namespaces on one bridged switch namespace.
//! - [`kubeapi`]: a fake Kubernetes API server (list, watch, 410, bookmarks,
//!   CRUD, discovery for kubectl) run in a namespace, with admin calls to cut
//!   watches, compact and go down; what the Kubernetes datasource tests use.
//! - [`etcd`]: a private etcd inside a namespace, plain or with TLS and auth.
//! - [`etcd_tls`]: certificates (openssl CLI) and etcd users (etcdctl) for it.
//! - [`daemon`]: a `tweed daemon` in a node namespace, and its CLI.
//! - [`cluster`]: daemons started together, pods attached through
//!   `control.sock`, and the daemons' answers as typed values.
//! - [`control`]: one node's daemon called on its control socket, and pods
//!   attached through it.
//! - [`cni`]: the CNI plugin run as a container runtime runs it.
//! - [`image`]: a busybox rootfs to import as a container image.
//! - [`kubelet`]: pods attached through the CNI plugin with the `CNI_ARGS`
//!   kubelet passes (namespace and name, no labels).
//! - [`containerd`]: a private containerd and `ctr`.
//! - [`mountns`]: a private mount namespace held open by a process.
//! - [`podman`]: a private podman (root, runroot, config, libcni cache)
//!   run in a node's netns.
//! - [`matrix`]: probe servers in every pod and the truth table of which
//!   (from, to, probe) gets through, diffed readably against an expectation;
//!   what network policy tests assert with.
//!
//! For the benchmarks: [`workload`]: seeded route tables and lookup keys, the
//! same for the same `(n, seed)`. The binary `fake-kube-apiserver`
//! (`src/bin/`) runs [`kubeapi`] as a process of its own.
//!
//! Every namespace, link, process and directory a test creates is owned by a
//! guard whose `Drop` removes it, so a failing (panicking) test cleans up too.

pub mod api;
pub mod bins;
pub mod cluster;
pub mod cni;
pub mod containerd;
pub mod control;
pub mod daemon;
pub mod dns;
pub mod etcd;
pub mod etcd_tls;
pub mod image;
pub mod kubeapi;
pub mod kubelet;
pub mod manifests;
pub mod matrix;
pub mod mountns;
pub mod netns;
pub mod node;
pub mod pod;
pub mod podman;
pub mod poll;
pub mod privileged;
pub mod process;
pub mod tmpfs;
pub mod traffic;
pub mod underlay;
pub mod workload;

//! A truth table of reachability between real pods, to prove network policy:
//! for every (from pod, to target, probe) whether the probe got through, and
//! a readable diff against what was expected.
//!
//! # How a round is probed
//!
//! [`Harness::start`] runs one probe server per served address (every
//! [`Member`], and every [`Target`] with a namespace): TCP listeners that
//! echo, UDP sockets that echo, on every [`Probe`] port, for as long as the
//! harness lives. It returns once every server answers all its probes from
//! inside its own namespace, so a round never races a server's start.
//!
//! [`Harness::probe`] then starts one prober per member at the same moment;
//! each sends all of its probes at once (a TCP connect, or a UDP token sent
//! twice within the timeout that must come back) and reports each as an
//! [`Outcome`]. Denied packets are dropped silently, so a blocked probe costs
//! the timeout ([`DEFAULT_TIMEOUT`]); a whole round takes about one timeout,
//! however many cells it has.
//!
//! # Contract
//!
//! - **One probe per cell, no retries.** A retry that hides a flaky verdict
//!   hides a bug; timeouts are generous instead (a local round trip through
//!   the dataplane takes well under a millisecond).
//! - **Allowed means the target's kernel answered**: connected, echoed, or
//!   refused (reset, port unreachable). Blocked means nothing came back.
//!   Any other error (`EHOSTUNREACH`, ...) is neither and never matches.
//! - **Every probe of a harness has its own source port** (from
//!   [`SOURCE_PORTS`], which probe ports must stay out of). Conntrack lets
//!   packets of a known flow skip policy; a probe that reused an earlier
//!   round's 5-tuple could ride that round's flow through a policy that
//!   blocks it now.
//! - **Self cells are not probed**: a pod reaching its own address never
//!   leaves its kernel, so no policy applies.
//! - **Policy is not this module's business.** The caller changes it (today
//!   the dataplane's `policy_set`, later the daemon's API) and probes once the
//!   change is in effect; the harness only observes, so the same tests can
//!   drive any control plane.
//!
//! Names are the caller's; pods are `namespace/name` (what [`Member::pod`]
//! gives), which the selectors of [`Expected`] understand.

mod agents;
mod probe;
mod table;

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::Duration;

pub use agents::Connection;
pub use probe::{DEFAULT_PROBES, Probe, ProbeSelector, Protocol};
pub use table::{Axes, Cell, Expected, Matrix, Outcome, assert_matrix, differences, name_matches};

use agents::{Job, Prober, Server};

use crate::control::ControlPod;
use crate::netns::Netns;
use crate::pod::Pod;
use crate::poll;

/// How long a probe waits for its answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// The local ports probes are sent from: below the kernel's ephemeral range
/// (32768 and up by default), so no other socket in a pod holds one.
pub const SOURCE_PORTS: RangeInclusive<u16> = 10_000..=29_999;
/// How long servers may take to answer their own namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A workload that sends probes and is probed: a pod.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// Its name in the matrix (`namespace/name` for pods).
    pub name: String,
    /// Its network namespace.
    pub netns: &'a Netns,
    /// The address it is probed at (and serves on).
    pub ip: IpAddr,
}

impl<'a> Member<'a> {
    /// A member named `name` in `netns`, probed at `ip`.
    pub fn new(name: impl Into<String>, netns: &'a Netns, ip: IpAddr) -> Self {
        Self {
            name: name.into(),
            netns,
            ip,
        }
    }

    /// A pod attached through the daemon, `namespace/name`, at its IPv4 address.
    pub fn pod(pod: &'a ControlPod) -> Self {
        Self::new(
            format!("{}/{}", pod.info.namespace, pod.info.name),
            &pod.netns,
            pod.ipv4(),
        )
    }

    /// A pod attached to a bare dataplane (`port_add`), named as its port,
    /// at its IPv4 address.
    pub fn port(pod: &'a Pod) -> Self {
        Self::new(pod.name.clone(), &pod.netns, IpAddr::V4(pod.ipv4()))
    }
}

/// A target that only is probed: a plain address, e.g. the node's, or one
/// outside the cluster.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Its name in the matrix.
    pub name: String,
    /// Its address.
    pub ip: IpAddr,
    /// The namespace the harness serves `ip` in; `None` when something else
    /// answers there (or nothing does, and probes are refused or time out).
    pub serve_in: Option<&'a Netns>,
}

impl<'a> Target<'a> {
    /// `ip`, served by the harness inside `netns`.
    pub fn served(name: impl Into<String>, netns: &'a Netns, ip: IpAddr) -> Self {
        Self {
            name: name.into(),
            ip,
            serve_in: Some(netns),
        }
    }

    /// `ip`, served by whatever is there.
    pub fn unserved(name: impl Into<String>, ip: IpAddr) -> Self {
        Self {
            name: name.into(),
            ip,
            serve_in: None,
        }
    }
}

/// Probe servers in every member (and served target), and the means to
/// probe the whole matrix; the servers stop when it drops.
#[derive(Debug)]
pub struct Harness<'a> {
    members: Vec<Member<'a>>,
    /// Every target's address, in axis order (members first).
    addresses: Vec<IpAddr>,
    axes: Axes,
    timeout: Duration,
    next_port: Mutex<u16>,
    _servers: Vec<Server>,
}

impl<'a> Harness<'a> {
    /// Starts the servers for `members` (each probes and is probed) and
    /// `targets` (only probed) on `probes`, and waits until every server
    /// answers inside its own namespace. Panics if one does not.
    pub fn start(members: Vec<Member<'a>>, targets: Vec<Target<'a>>, probes: &[Probe]) -> Self {
        for p in probes {
            assert!(
                !SOURCE_PORTS.contains(&p.port),
                "probe {p} is in the source port range {SOURCE_PORTS:?}"
            );
        }
        let from: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        let mut to = from.clone();
        to.extend(targets.iter().map(|t| t.name.clone()));
        let axes = Axes::new(from, to, probes.to_vec());
        let mut addresses: Vec<IpAddr> = members.iter().map(|m| m.ip).collect();
        addresses.extend(targets.iter().map(|t| t.ip));
        let served: Vec<(&Netns, IpAddr)> = members
            .iter()
            .map(|m| (m.netns, m.ip))
            .chain(targets.iter().filter_map(|t| Some((t.serve_in?, t.ip))))
            .collect();
        let servers = Server::start_all(&served, probes);
        let harness = Self {
            members,
            addresses,
            axes,
            timeout: DEFAULT_TIMEOUT,
            next_port: Mutex::new(*SOURCE_PORTS.start()),
            _servers: servers,
        };
        harness.wait_served(&served);
        harness
    }

    /// Sets how long each probe waits for its answer.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The matrix's axes: members × (members, then targets) × probes.
    pub fn axes(&self) -> &Axes {
        &self.axes
    }

    /// An expectation with every cell allowed, to refine with
    /// [`Expected::deny`].
    pub fn all_allowed(&self) -> Expected {
        Expected::all_allowed(&self.axes)
    }

    /// Probes every cell once, all members at the same moment.
    pub fn probe(&self) -> Matrix {
        let ports = self.take_ports(self.axes.cells().count() / self.members.len());
        let probers: Vec<Prober> = self
            .members
            .iter()
            .map(|member| {
                // The member's row, in the order of `Axes::cells`: targets
                // but itself, each with every probe.
                let jobs: Vec<Job> = (0..self.addresses.len())
                    .filter(|t| self.axes.to()[*t] != member.name)
                    .flat_map(|t| self.axes.probes().iter().map(move |p| (t, *p)))
                    .zip(ports.clone())
                    .map(|((t, probe), sport)| Job {
                        to: self.addresses[t],
                        probe,
                        sport,
                    })
                    .collect();
                Prober::start(member.netns, &jobs, self.timeout)
            })
            .collect();
        let outcomes: Vec<Vec<Outcome>> = probers.into_iter().map(Prober::finish).collect();
        let mut outcomes = outcomes.into_iter().flatten();
        Matrix::from_fn(self.axes.clone(), |_| {
            outcomes.next().expect("one outcome per probed cell")
        })
    }

    /// Probes every cell once and asserts the result is `expected` (see
    /// [`assert_matrix`]); returns the matrix.
    pub fn check(&self, expected: &Expected) -> Matrix {
        let actual = self.probe();
        assert_matrix(&actual, expected);
        actual
    }

    /// `count` consecutive source ports no earlier round of this harness
    /// used (wrapping around after [`SOURCE_PORTS`], thousands of rounds on).
    fn take_ports(&self, count: usize) -> RangeInclusive<u16> {
        let width = usize::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
        assert!(
            count <= width,
            "{count} probes per member do not fit {SOURCE_PORTS:?}"
        );
        let count = u16::try_from(count).expect("fits the port range");
        let mut next = self.next_port.lock().unwrap_or_else(|e| e.into_inner());
        if *next + count - 1 > *SOURCE_PORTS.end() {
            *next = *SOURCE_PORTS.start();
        }
        let first = *next;
        *next += count;
        first..=first + count - 1
    }

    /// Waits until every server answers all probes from its own namespace.
    fn wait_served(&self, served: &[(&Netns, IpAddr)]) {
        let probes = self.axes.probes();
        let mut pending: Vec<(&Netns, IpAddr)> = served.to_vec();
        let mut last = Vec::new();
        let ready = poll::wait(READY_TIMEOUT, || {
            let ports = self.take_ports(probes.len());
            let probers: Vec<Prober> = pending
                .iter()
                .map(|(ns, ip)| {
                    let jobs: Vec<Job> = probes
                        .iter()
                        .zip(ports.clone())
                        .map(|(probe, sport)| Job {
                            to: *ip,
                            probe: *probe,
                            sport,
                        })
                        .collect();
                    Prober::start(ns, &jobs, self.timeout)
                })
                .collect();
            let results: Vec<Vec<Outcome>> = probers.into_iter().map(Prober::finish).collect();
            let mut still = Vec::new();
            last.clear();
            for (server, outcomes) in pending.iter().zip(results) {
                let good = outcomes
                    .iter()
                    .all(|o| matches!(o, Outcome::Connected | Outcome::Echoed));
                if !good {
                    still.push(*server);
                    last.push(format!("{} in {}: {outcomes:?}", server.1, server.0.name()));
                }
            }
            pending = still;
            pending.is_empty()
        });
        assert!(
            ready,
            "probe servers do not answer in their own namespaces after {READY_TIMEOUT:?}: {last:?}"
        );
    }
}

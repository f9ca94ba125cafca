//! The namespaces of one topology, for both implementations side by side:
//! tweed's (a dataplane per node, pods attached with `port_add`, peers
//! with `peer_set`) and the kernel's ([`super::kernel`]). Every name starts
//! with the bench's prefix (`tb-PID-`), so runs never collide and the
//! teardown finds everything from the prefix alone.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::kernel::{self, Vtep};
use super::plan::{Impl, Topology};
use super::tweed::{self, DataplaneOptions};
use crate::links::{self, UnderlayEnd};
use crate::netns;
use crate::procs::Proc;

/// The pods' MTU (the underlay's is 1500; VXLAN takes 50).
pub const POD_MTU: u32 = 1450;
/// The client pod's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);

/// The server pod's address.
pub fn server_ip(topology: Topology) -> Ipv4Addr {
    match topology {
        Topology::One => Ipv4Addr::new(10, 244, 1, 3),
        Topology::Two => Ipv4Addr::new(10, 244, 2, 2),
    }
}

/// Where a policy for the server pod goes.
#[derive(Debug, Clone)]
pub enum PolicyHook {
    /// tweed: `policy_set` on this port of the dataplane at this socket.
    Tweed {
        /// The server's node's dataplane socket.
        socket: PathBuf,
        /// The server pod's port name.
        port: String,
    },
    /// The kernel: iptables in the server's node namespace, on its host veth.
    Kernel {
        /// The server's node namespace.
        node: String,
        /// The server pod's host veth.
        hostif: String,
    },
}

/// A client pod and a server pod, and where the server's policy goes.
/// Where a pair's Services go: the client's node, whose dataplane (or
/// netfilter) translates its connections.
#[derive(Debug, Clone)]
pub enum ServiceHook {
    /// The client's node's dataplane socket.
    Tweed { socket: PathBuf },
    /// The client's node namespace (kube-proxy's iptables rules).
    Kernel { node: String },
}

#[derive(Debug, Clone)]
pub struct Pair {
    /// Which implementation carries their traffic.
    pub implementation: Impl,
    /// The client pod's namespace name.
    pub client: String,
    /// The server pod's namespace name.
    pub server: String,
    /// The server's address.
    pub server_ip: Ipv4Addr,
    /// Where the server's ingress policy goes.
    pub policy: PolicyHook,
    pub services: ServiceHook,
}

/// Makes the namespace `prefix` + `short` (removed by the teardown).
fn make(prefix: &str, short: &str) -> Result<String, String> {
    let name = format!("{prefix}{short}");
    netns::create(&name).map_err(|e| format!("create namespace {name}: {e}"))?;
    Ok(name)
}

/// tweed's side of `topology`; the dataplanes go into `procs`.
pub fn tweed_pair(
    topology: Topology,
    prefix: &str,
    dir: &Path,
    opts: &DataplaneOptions,
    procs: &mut Vec<Proc>,
    interrupted: &dyn Fn() -> bool,
) -> Result<Pair, String> {
    let server_ip = server_ip(topology);
    match topology {
        Topology::One => {
            let node = make(prefix, "t1n")?;
            let (proc, socket) = tweed::start(
                &node,
                Ipv4Addr::UNSPECIFIED,
                &dir.join("t1n"),
                opts,
                interrupted,
            )?;
            procs.push(proc);
            let client = make(prefix, "t1a")?;
            let server = make(prefix, "t1b")?;
            tweed::port_add(&socket, "bench/a", &client, CLIENT_IP, POD_MTU)?;
            tweed::port_add(&socket, "bench/b", &server, server_ip, POD_MTU)?;
            Ok(Pair {
                implementation: Impl::Tweed,
                client,
                server,
                server_ip,
                policy: PolicyHook::Tweed {
                    socket: socket.clone(),
                    port: "bench/b".to_owned(),
                },
                services: ServiceHook::Tweed { socket },
            })
        }
        Topology::Two => {
            let n1 = make(prefix, "t2n1")?;
            let n2 = make(prefix, "t2n2")?;
            let (u1, u2) = (
                Ipv4Addr::new(192, 168, 77, 1),
                Ipv4Addr::new(192, 168, 77, 2),
            );
            links::underlay(
                UnderlayEnd {
                    netns: &netns::path(&n1),
                    ip: u1,
                },
                UnderlayEnd {
                    netns: &netns::path(&n2),
                    ip: u2,
                },
            )?;
            let (p1, s1) = tweed::start(&n1, u1, &dir.join("t2n1"), opts, interrupted)?;
            procs.push(p1);
            let (p2, s2) = tweed::start(&n2, u2, &dir.join("t2n2"), opts, interrupted)?;
            procs.push(p2);
            let client = make(prefix, "t2a")?;
            let server = make(prefix, "t2b")?;
            tweed::port_add(&s1, "bench/a", &client, CLIENT_IP, POD_MTU)?;
            tweed::port_add(&s2, "bench/b", &server, server_ip, POD_MTU)?;
            let (m1, m2) = (tweed::vtep_mac(&s1)?, tweed::vtep_mac(&s2)?);
            let net = |ip: Ipv4Addr| Ipv4Net::new(ip, 24).map(|n| n.trunc()).expect("/24");
            tweed::peer_set(&s1, "node2", net(server_ip), u2, m2)?;
            tweed::peer_set(&s2, "node1", net(CLIENT_IP), u1, m1)?;
            Ok(Pair {
                implementation: Impl::Tweed,
                client,
                server,
                server_ip,
                policy: PolicyHook::Tweed {
                    socket: s2,
                    port: "bench/b".to_owned(),
                },
                services: ServiceHook::Tweed { socket: s1 },
            })
        }
    }
}

/// The kernel's side of `topology`.
pub fn kernel_pair(topology: Topology, prefix: &str) -> Result<Pair, String> {
    let server_ip = server_ip(topology);
    let (client_node, server_node) = match topology {
        Topology::One => {
            let node = make(prefix, "k1n")?;
            kernel::node(&node)?;
            (node.clone(), node)
        }
        Topology::Two => {
            let n1 = make(prefix, "k2n1")?;
            let n2 = make(prefix, "k2n2")?;
            kernel::node(&n1)?;
            kernel::node(&n2)?;
            let v1 = Vtep {
                underlay: Ipv4Addr::new(192, 168, 77, 1),
                mac: [0x02, 0xe2, 0xe2, 0, 0, 1],
                addr: Ipv4Addr::new(10, 244, 1, 0),
            };
            let v2 = Vtep {
                underlay: Ipv4Addr::new(192, 168, 77, 2),
                mac: [0x02, 0xe2, 0xe2, 0, 0, 2],
                addr: Ipv4Addr::new(10, 244, 2, 0),
            };
            links::underlay(
                UnderlayEnd {
                    netns: &netns::path(&n1),
                    ip: v1.underlay,
                },
                UnderlayEnd {
                    netns: &netns::path(&n2),
                    ip: v2.underlay,
                },
            )?;
            kernel::vxlan(&n1, v1, v2, POD_MTU)?;
            kernel::vxlan(&n2, v2, v1, POD_MTU)?;
            (n1, n2)
        }
    };
    let short = |s: &str| match topology {
        Topology::One => format!("k1{s}"),
        Topology::Two => format!("k2{s}"),
    };
    let client = make(prefix, &short("a"))?;
    let server = make(prefix, &short("b"))?;
    kernel::pod(&client_node, &client, CLIENT_IP, "cali-a", POD_MTU)?;
    kernel::pod(&server_node, &server, server_ip, "cali-b", POD_MTU)?;
    Ok(Pair {
        implementation: Impl::Kernel,
        client,
        server,
        server_ip,
        policy: PolicyHook::Kernel {
            node: server_node,
            hostif: "cali-b".to_owned(),
        },
        services: ServiceHook::Kernel { node: client_node },
    })
}

//! What `tweed bench` measures, in which order, and how each line is named.
//! Pure: the topologies, the workloads, the lines (one or two per workload)
//! and the steps of a run, from the command line's choices.

use clap::ValueEnum;
use serde::Serialize;

/// Where the two pods are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Both pods on one node.
    One,
    /// One pod on each of two nodes (VXLAN between them).
    Two,
}

impl Topology {
    /// Both, in order.
    pub const ALL: [Topology; 2] = [Topology::One, Topology::Two];

    /// For people: `one node`, `two nodes`.
    pub fn label(self) -> &'static str {
        match self {
            Topology::One => "one node",
            Topology::Two => "two nodes",
        }
    }
}

/// One kind of traffic, run once per implementation and repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// iperf3, TCP, one stream.
    Tcp1,
    /// iperf3, TCP, four streams.
    Tcp4,
    /// iperf3, UDP, 64-byte datagrams, as fast as it can.
    Udp,
    /// sockperf ping-pong: request/response latency, each request sent as
    /// soon as the last response came.
    Rr,
    /// sockperf ping-pong at 100 requests a second: the latency of a lone
    /// request, which finds the path idle.
    RrSparse,
    /// New TCP connections per second to a pod with 1,000 ingress rules.
    Conn1k,
    /// New TCP connections per second to a pod with 10,000 ingress rules.
    Conn10k,
    /// New TCP connections per second (and p99 connect time) to a
    /// ClusterIP among 1,000 Services: native tweed against kube-proxy's
    /// iptables rules on the kernel's path.
    Svc1k,
    /// The same among 10,000 Services.
    Svc10k,
    /// Svc1k against kube-proxy's nftables rules (its verdict map) instead.
    Svc1kNft,
    /// Svc10k against kube-proxy's nftables rules.
    Svc10kNft,
}

/// Which of kube-proxy's modes writes the kernel side's Service rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KubeProxy {
    /// `iptables`: a chain walked rule by rule (`KUBE-SERVICES`).
    Iptables,
    /// `nftables`: one lookup in a verdict map (`service-ips`).
    Nftables,
}

impl Workload {
    /// Every workload, in the order they run (the Service lines before the
    /// policy lines, whose rules stay on the server pod; the Services are
    /// removed after their lines).
    pub const ALL: [Workload; 11] = [
        Workload::Tcp1,
        Workload::Tcp4,
        Workload::Udp,
        Workload::Rr,
        Workload::RrSparse,
        Workload::Svc1k,
        Workload::Svc10k,
        Workload::Svc1kNft,
        Workload::Svc10kNft,
        Workload::Conn1k,
        Workload::Conn10k,
    ];

    /// The lines one run of it gives.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Workload::Tcp1 => &[Metric::Tcp1],
            Workload::Tcp4 => &[Metric::Tcp4],
            Workload::Udp => &[Metric::Udp64],
            Workload::Rr => &[Metric::RttP50, Metric::RttP99],
            Workload::RrSparse => &[Metric::SparseRttP50, Metric::SparseRttP99],
            Workload::Conn1k => &[Metric::Conn1k],
            Workload::Conn10k => &[Metric::Conn10k],
            Workload::Svc1k => &[Metric::Svc1k, Metric::SvcConnect1k],
            Workload::Svc10k => &[Metric::Svc10k, Metric::SvcConnect10k],
            Workload::Svc1kNft => &[Metric::Svc1kNft, Metric::SvcConnect1kNft],
            Workload::Svc10kNft => &[Metric::Svc10kNft, Metric::SvcConnect10kNft],
        }
    }

    /// For the progress line.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Tcp1 => "TCP 1 stream",
            Workload::Tcp4 => "TCP 4 streams",
            Workload::Udp => "UDP 64 B",
            Workload::Rr => "sockperf ping-pong",
            Workload::RrSparse => "sockperf ping-pong, 100 requests/s",
            Workload::Conn1k => "connections, 1,000 rules",
            Workload::Conn10k => "connections, 10,000 rules",
            Workload::Svc1k => "connections to a Service, 1,000 Services",
            Workload::Svc10k => "connections to a Service, 10,000 Services",
            Workload::Svc1kNft => "connections to a Service, 1,000 Services (kube-proxy nftables)",
            Workload::Svc10kNft => {
                "connections to a Service, 10,000 Services (kube-proxy nftables)"
            }
        }
    }

    /// The number of ingress rules on the server pod, for the policy lines.
    pub fn rules(self) -> Option<usize> {
        match self {
            Workload::Conn1k => Some(1_000),
            Workload::Conn10k => Some(10_000),
            _ => None,
        }
    }

    /// The number of Services on the client's node, for the Service lines.
    pub fn services(self) -> Option<usize> {
        match self {
            Workload::Svc1k | Workload::Svc1kNft => Some(1_000),
            Workload::Svc10k | Workload::Svc10kNft => Some(10_000),
            _ => None,
        }
    }

    /// The kube-proxy mode whose rules the kernel side's Services are in.
    pub fn kube_proxy(self) -> KubeProxy {
        match self {
            Workload::Svc1kNft | Workload::Svc10kNft => KubeProxy::Nftables,
            _ => KubeProxy::Iptables,
        }
    }
}

/// What one line of the table measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// TCP throughput, one stream.
    Tcp1,
    /// TCP throughput, four streams.
    Tcp4,
    /// 64-byte UDP datagrams the server received per second.
    Udp64,
    /// Median round trip.
    RttP50,
    /// 99th percentile round trip.
    RttP99,
    /// Median round trip of requests 10 ms apart.
    SparseRttP50,
    /// 99th percentile round trip of requests 10 ms apart.
    SparseRttP99,
    /// Connections per second, 1,000 rules.
    Conn1k,
    /// Connections per second, 10,000 rules.
    Conn10k,
    /// Connections per second to a Service among 1,000.
    Svc1k,
    /// 99th percentile connect time to a Service among 1,000.
    SvcConnect1k,
    /// Connections per second to a Service among 10,000.
    Svc10k,
    /// 99th percentile connect time to a Service among 10,000.
    SvcConnect10k,
    /// Svc1k, the kernel with kube-proxy's nftables rules.
    Svc1kNft,
    /// SvcConnect1k, the kernel with kube-proxy's nftables rules.
    SvcConnect1kNft,
    /// Svc10k, the kernel with kube-proxy's nftables rules.
    Svc10kNft,
    /// SvcConnect10k, the kernel with kube-proxy's nftables rules.
    SvcConnect10kNft,
}

/// The unit a metric's value is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Bits per second.
    #[serde(rename = "bit/s")]
    BitsPerSecond,
    /// Packets per second.
    #[serde(rename = "packet/s")]
    PacketsPerSecond,
    /// Microseconds.
    #[serde(rename = "us")]
    Micros,
    /// Connections per second.
    #[serde(rename = "connection/s")]
    ConnectionsPerSecond,
}

impl Metric {
    /// The line's name, without the topology.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Tcp1 => "TCP 1 stream",
            Metric::Tcp4 => "TCP 4 streams",
            Metric::Udp64 => "UDP 64 B received",
            Metric::RttP50 => "RTT p50 (sockperf)",
            Metric::RttP99 => "RTT p99 (sockperf)",
            Metric::SparseRttP50 => "RTT p50, 100 requests/s",
            Metric::SparseRttP99 => "RTT p99, 100 requests/s",
            Metric::Conn1k => "conn/s, 1,000 rules",
            Metric::Conn10k => "conn/s, 10,000 rules",
            Metric::Svc1k => "conn/s, 1,000 Services",
            Metric::SvcConnect1k => "connect p99, 1,000 Services",
            Metric::Svc10k => "conn/s, 10,000 Services",
            Metric::SvcConnect10k => "connect p99, 10,000 Services",
            Metric::Svc1kNft => "conn/s, 1,000 Services (nft)",
            Metric::SvcConnect1kNft => "connect p99, 1,000 Services (nft)",
            Metric::Svc10kNft => "conn/s, 10,000 Services (nft)",
            Metric::SvcConnect10kNft => "connect p99, 10,000 Services (nft)",
        }
    }

    /// Its unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::Tcp1 | Metric::Tcp4 => Unit::BitsPerSecond,
            Metric::Udp64 => Unit::PacketsPerSecond,
            Metric::RttP50
            | Metric::RttP99
            | Metric::SparseRttP50
            | Metric::SparseRttP99
            | Metric::SvcConnect1k
            | Metric::SvcConnect10k
            | Metric::SvcConnect1kNft
            | Metric::SvcConnect10kNft => Unit::Micros,
            Metric::Conn1k
            | Metric::Conn10k
            | Metric::Svc1k
            | Metric::Svc10k
            | Metric::Svc1kNft
            | Metric::Svc10kNft => Unit::ConnectionsPerSecond,
        }
    }

    /// Whether more is better (false for latencies).
    pub fn higher_is_better(self) -> bool {
        self.unit() != Unit::Micros
    }
}

/// The implementation a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impl {
    /// tweed's dataplane (native Services on the Service lines).
    Tweed,
    /// The kernel's path (Calico-style veths; flannel-style VXLAN; kube-proxy's
    /// iptables rules on the Service lines).
    Kernel,
}

impl Impl {
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Impl::Tweed => "tweed",
            Impl::Kernel => "kernel",
        }
    }
}

/// One measurement to take: a workload on a topology, one implementation, one repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Where.
    pub topology: Topology,
    /// What.
    pub workload: Workload,
    /// Which implementation.
    pub implementation: Impl,
    /// Which repeat, from 1.
    pub run: u32,
}

/// The steps of a bench: per topology, per workload, the repeats, each
/// tweed then the kernel back to back (so background load hits both alike).
pub fn steps(topologies: &[Topology], workloads: &[Workload], runs: u32) -> Vec<Step> {
    let mut out = Vec::new();
    for &topology in Topology::ALL.iter().filter(|t| topologies.contains(t)) {
        for &workload in Workload::ALL.iter().filter(|w| workloads.contains(w)) {
            for run in 1..=runs {
                for implementation in [Impl::Tweed, Impl::Kernel] {
                    out.push(Step {
                        topology,
                        workload,
                        implementation,
                        run,
                    });
                }
            }
        }
    }
    out
}

/// The progress line of step `index` (from 0) of `total`.
pub fn progress(step: &Step, index: usize, total: usize, runs: u32) -> String {
    let run = if runs > 1 {
        format!(" (run {}/{runs})", step.run)
    } else {
        String::new()
    };
    format!(
        "[{}/{total}] {} {}: {}{run}…",
        index + 1,
        step.topology.label(),
        step.workload.label(),
        step.implementation.label()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_alternate_tweed_and_kernel_per_repeat() {
        let s = steps(
            &[Topology::Two, Topology::One],
            &[Workload::Rr, Workload::Tcp1],
            2,
        );
        assert_eq!(s.len(), 2 * 2 * 2 * 2);
        assert_eq!(s[0].topology, Topology::One);
        assert_eq!(s[0].workload, Workload::Tcp1);
        assert_eq!(
            s[..4]
                .iter()
                .map(|s| (s.implementation, s.run))
                .collect::<Vec<_>>(),
            [
                (Impl::Tweed, 1),
                (Impl::Kernel, 1),
                (Impl::Tweed, 2),
                (Impl::Kernel, 2)
            ]
        );
        assert_eq!(s[4].workload, Workload::Rr);
        assert_eq!(s[8].topology, Topology::Two);
    }

    #[test]
    fn progress_names_the_step() {
        let step = Step {
            topology: Topology::Two,
            workload: Workload::Tcp4,
            implementation: Impl::Tweed,
            run: 2,
        };
        assert_eq!(
            progress(&step, 2, 14, 3),
            "[3/14] two nodes TCP 4 streams: tweed (run 2/3)…"
        );
        assert_eq!(
            progress(&step, 0, 1, 1),
            "[1/1] two nodes TCP 4 streams: tweed…"
        );
    }

    #[test]
    fn latency_is_the_only_lower_is_better() {
        assert!(!Metric::RttP99.higher_is_better());
        assert!(!Metric::SparseRttP50.higher_is_better());
        assert!(Metric::Conn10k.higher_is_better());
        assert_eq!(Workload::Rr.metrics().len(), 2);
        assert_eq!(Workload::Conn10k.rules(), Some(10_000));
    }
}

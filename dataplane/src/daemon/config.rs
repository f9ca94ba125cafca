//! The dataplane process's settings, from its command line.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::idle::IdlePolicy;
use super::io::IoMode;
use crate::table::endpoints::Mac;
use crate::table::peers::PortRange;
use crate::table::tables::NodeConfig;
use crate::wire::vxlan;

/// The gateway MAC every pod sees (the same on every node, like Calico's).
pub const DEFAULT_GATEWAY_MAC: Mac = [0xee, 0xee, 0xee, 0xee, 0xee, 0xee];

/// How the dataplane runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the config API listens.
    pub socket: PathBuf,
    /// Where the state file lives (ports, peers, routes, policy).
    pub state_dir: PathBuf,
    /// Worker threads (and queues per tap).
    pub workers: usize,
    /// The underlay address the VXLAN and UDP sockets bind to.
    pub underlay_ip: IpAddr,
    /// VXLAN's UDP port (4789; flannel uses 8472).
    pub vxlan_port: u16,
    /// flannel-UDP's port.
    pub udp_port: u16,
    /// The VXLAN network identifier.
    pub vni: u32,
    /// The pods' MTU: the largest packet that crosses the overlay.
    pub mtu: u16,
    /// The host port's name, or `None` for no host port.
    pub host_port: Option<String>,
    /// The gateway MAC.
    pub gateway_mac: Mac,
    /// This node's VTEP MAC (default: derived from the underlay address).
    pub vtep_mac: Mac,
    /// Most flows tracked at once.
    pub conntrack_capacity: usize,
    /// The ports VXLAN leaves from; `None`: [`DEFAULT_VXLAN_SENDERS`] ports
    /// the kernel picks.
    pub vxlan_source_ports: Option<PortRange>,
    /// The cluster's Service address ranges (see `NodeConfig::service_cidrs`).
    pub service_cidrs: Vec<IpNet>,
    /// The workers' tap I/O back end.
    pub io: IoMode,
    /// How workers wait when idle: sleep, linger after traffic (the
    /// default) or busy-poll (a core each, for the lowest latency).
    pub idle: IdlePolicy,
}

/// VXLAN sending sockets when no source ports are given.
pub const DEFAULT_VXLAN_SENDERS: usize = 8;
/// The most VXLAN source ports (sending sockets per worker).
pub const MAX_VXLAN_SOURCE_PORTS: usize = 64;

impl Config {
    /// The node settings for the tables (the host MAC is filled in once the
    /// host port exists).
    pub fn node(&self) -> NodeConfig {
        NodeConfig {
            gateway_mac: self.gateway_mac,
            vtep_mac: self.vtep_mac,
            host_mac: [0; 6],
            vni: self.vni,
            vxlan_port: self.vxlan_port,
            udp_port: self.udp_port,
            overlay_mtu: self.mtu,
            underlay_ip: (!self.underlay_ip.is_unspecified()).then_some(self.underlay_ip),
            service_cidrs: self.service_cidrs.clone(),
        }
    }

    /// The state file's path.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("dataplane-state.json")
    }
}

/// A VTEP MAC derived from the underlay address: locally administered,
/// unicast, and the same across restarts, so peers' neighbour entries stay valid.
pub fn vtep_mac_for(underlay: IpAddr) -> Mac {
    let tail: [u8; 4] = match underlay {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x77, tail[0], tail[1], tail[2], tail[3]]
}

/// Default VXLAN port.
pub const DEFAULT_VXLAN_PORT: u16 = vxlan::DEFAULT_PORT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtep_mac_is_unicast_local_and_follows_the_address() {
        let mac = vtep_mac_for("192.168.0.2".parse().expect("ip"));
        assert_eq!(mac, [0x02, 0x77, 192, 168, 0, 2]);
        assert_eq!(mac[0] & 1, 0, "unicast");
        assert_eq!(mac[0] & 2, 2, "locally administered");
    }
}

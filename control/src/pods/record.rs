//! A pod attachment as the store holds it: its durable IPAM lease plus what
//! the dataplane needs to (re)create its port and policy needs to select it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use tweed_api::dataplane::proto::{MacAddr, PortAdd, PortInfo};

use crate::dataplane::resync::WantedPort;
use crate::ipam::{Allocation, Attachment, Lease};

/// One interface of one pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodRecord {
    /// The runtime's container id.
    pub container_id: String,
    /// The interface name in the pod.
    pub ifname: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's netns path, as the runtime named it.
    pub netns: String,
    /// Where the daemon mounted the netns for the dataplane, when the
    /// runtime's path does not name it in the daemon's mount namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_netns: Option<String>,
    /// The dataplane port's name (`NAMESPACE/NAME`, see [`port_name`]).
    pub port: String,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// The interface's MAC.
    pub mac: MacAddr,
    /// The interface's MTU.
    pub mtu: u16,
    /// The pod's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl PodRecord {
    /// The attachment it is keyed by.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            container_id: self.container_id.clone(),
            ifname: self.ifname.clone(),
        }
    }

    /// Its IPAM lease.
    pub fn lease(&self) -> Lease {
        Lease {
            attachment: self.attachment(),
            allocation: Allocation {
                ipv4: self.ipv4,
                ipv6: self.ipv6,
            },
        }
    }

    /// The netns path the dataplane opens.
    pub fn dataplane_path(&self) -> &str {
        self.dataplane_netns.as_deref().unwrap_or(&self.netns)
    }

    /// The dataplane request that creates its port.
    pub fn port_add(&self) -> PortAdd {
        PortAdd {
            name: self.port.clone(),
            netns: self.dataplane_path().to_owned(),
            ifname: self.ifname.clone(),
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            mac: Some(self.mac),
            mtu: Some(u32::from(self.mtu)),
        }
    }

    /// Decodes a stored record.
    pub fn decode(value: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(value)
    }

    /// Encodes for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a pod record always serializes")
    }
}

impl WantedPort for PodRecord {
    fn port_name(&self) -> &str {
        &self.port
    }

    fn matches(&self, port: &PortInfo) -> bool {
        port.ipv4 == self.ipv4
            && port.ipv6 == self.ipv6
            && port.netns == self.dataplane_path()
            && port.ifname == self.ifname
    }
}

/// The pod interface's MAC: `0a:58:` and the last four bytes of its address
/// (IPv4 first), like the dataplane's own choice, so it is stable per address.
pub fn pod_mac(allocation: &Allocation) -> MacAddr {
    let tail = match allocation.addrs().next() {
        Some(IpAddr::V4(a)) => a.octets(),
        Some(IpAddr::V6(a)) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
        None => [0, 0, 0, 1],
    };
    MacAddr([0x0a, 0x58, tail[0], tail[1], tail[2], tail[3]])
}

/// Checks an interface MTU against the addresses it will carry, as the
/// dataplane checks the port (IPv6 needs 1280): a pod whose port the
/// dataplane would refuse is refused before its address is taken.
pub fn check_mtu(mtu: u16, allocation: &Allocation) -> Result<(), String> {
    tweed_dataplane::api::validate::mtu("pod_add.mtu", u32::from(mtu), allocation.ipv6.is_some())
        .map_err(|e| e.message)
}

/// The dataplane port name of a pod interface: `NAMESPACE/NAME`, with
/// `:IFNAME` for interfaces other than `eth0`; if another attachment already
/// uses that name (a pod recreated under the same name before the old one was
/// deleted) the container id's first 12 characters are appended after `@`.
pub fn port_name(
    namespace: &str,
    name: &str,
    ifname: &str,
    container_id: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let mut base = format!("{namespace}/{name}");
    if ifname != "eth0" {
        base = format!("{base}:{ifname}");
    }
    if taken(&base) {
        let short: String = container_id.chars().take(12).collect();
        base = format!("{base}@{short}");
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `control_api` fuzz target: `pod_add` with an MTU under
    /// 1280 passed the daemon's checks on a dual-stack node, and the
    /// dataplane then refused the port.
    #[test]
    fn an_mtu_under_1280_is_refused_only_with_ipv6() {
        let v4 = Allocation {
            ipv4: Some(Ipv4Addr::new(10, 244, 1, 2)),
            ipv6: None,
        };
        let dual = Allocation {
            ipv6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            ..v4
        };
        assert_eq!(check_mtu(600, &v4), Ok(()));
        assert_eq!(check_mtu(1280, &dual), Ok(()));
        let e = check_mtu(600, &dual).expect_err("IPv6 needs 1280");
        assert!(e.contains("pod_add.mtu") && e.contains("1280"), "{e}");
    }

    #[test]
    fn port_names_are_namespace_slash_name_and_stay_unique() {
        assert_eq!(port_name("ns", "web", "eth0", "c1", |_| false), "ns/web");
        assert_eq!(
            port_name("ns", "web", "net1", "c1", |_| false),
            "ns/web:net1"
        );
        assert_eq!(
            port_name("ns", "web", "eth0", "0123456789abcdef", |n| n == "ns/web"),
            "ns/web@0123456789ab"
        );
    }

    #[test]
    fn the_mac_follows_the_first_address() {
        let v4 = Allocation {
            ipv4: Some("10.244.1.7".parse().unwrap()),
            ipv6: Some("fd00::9".parse().unwrap()),
        };
        assert_eq!(pod_mac(&v4).to_string(), "0a:58:0a:f4:01:07");
        let v6 = Allocation {
            ipv4: None,
            ipv6: Some("fd00::1:9".parse().unwrap()),
        };
        assert_eq!(pod_mac(&v6).to_string(), "0a:58:00:01:00:09");
    }
}

//! CHECK's comparisons: the daemon's record (the truth) against the
//! runtime's `prevResult`, and against what the pod's netns holds now.
//! Each difference is one sentence; CHECK fails listing all of them.
//!
//! In the netns, the interface must exist, be up, and carry the record's MAC,
//! MTU and host addresses (IPv6 link-local addresses are the kernel's and
//! ignored), with a default route per family via the record's gateway.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use super::result::{Attached, host_cidr};

/// What the pod's netns holds for the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    /// Its MAC, lowercase `aa:bb:..`.
    pub mac: Option<String>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// Its addresses with prefix lengths.
    pub addrs: Vec<IpNet>,
    /// The main table's routes through it.
    pub routes: Vec<ObservedRoute>,
}

/// A route through the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    /// Its destination.
    pub dst: IpNet,
    /// Its gateway, if any.
    pub gateway: Option<IpAddr>,
}

/// How `prevResult` differs from the record.
pub fn diff_prev_result(expected: &Attached, prev: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let interfaces = list(prev, "interfaces");
    let found = interfaces.iter().position(|i| {
        str_at(i, "name") == Some(&expected.ifname)
            && str_at(i, "sandbox").is_none_or(|s| s == expected.netns)
    });
    let Some(index) = found else {
        out.push(format!(
            "prevResult has no interface {:?} in sandbox {}",
            expected.ifname, expected.netns
        ));
        return out;
    };
    if let Some(mac) = str_at(&interfaces[index], "mac")
        && !mac.eq_ignore_ascii_case(&expected.mac)
    {
        out.push(format!(
            "prevResult gives interface {} the mac {mac}, the daemon gave it {}",
            expected.ifname, expected.mac
        ));
    }
    let ips: Vec<&Value> = list(prev, "ips")
        .iter()
        .filter(|ip| ip.get("interface").and_then(Value::as_u64) == Some(index as u64))
        .collect();
    for (addr, gateway) in expected.addresses() {
        let cidr = host_cidr(addr);
        match ips.iter().find(|ip| str_at(ip, "address") == Some(&cidr)) {
            None => out.push(format!(
                "prevResult lacks the address {cidr} on interface {}",
                expected.ifname
            )),
            Some(ip) => {
                let given = str_at(ip, "gateway").and_then(|g| g.parse::<IpAddr>().ok());
                if given.is_some() && given != gateway {
                    out.push(format!(
                        "prevResult gives {cidr} the gateway {}, the daemon's is {}",
                        given.map_or_else(String::new, |g| g.to_string()),
                        gateway.map_or_else(|| "none".to_owned(), |g| g.to_string())
                    ));
                }
            }
        }
    }
    let expected_cidrs: Vec<String> = expected
        .addresses()
        .into_iter()
        .map(|(a, _)| host_cidr(a))
        .collect();
    for ip in &ips {
        if let Some(address) = str_at(ip, "address")
            && !expected_cidrs.iter().any(|c| c == address)
        {
            out.push(format!(
                "prevResult gives interface {} the address {address}, which the daemon did not",
                expected.ifname
            ));
        }
    }
    out
}

/// How the pod's netns differs from the record (`link`: `None` if the
/// interface does not exist).
pub fn diff_netns(expected: &Attached, link: Option<&ObservedLink>) -> Vec<String> {
    let name = &expected.ifname;
    let Some(link) = link else {
        return vec![format!(
            "interface {name} does not exist in netns {}",
            expected.netns
        )];
    };
    let mut out = Vec::new();
    match &link.mac {
        Some(mac) if mac.eq_ignore_ascii_case(&expected.mac) => {}
        other => out.push(format!(
            "interface {name} has the mac {}, the daemon gave it {}",
            other.as_deref().unwrap_or("(none)"),
            expected.mac
        )),
    }
    if link.mtu != Some(u32::from(expected.mtu)) {
        out.push(format!(
            "interface {name} has the mtu {}, the daemon gave it {}",
            link.mtu
                .map_or_else(|| "(none)".to_owned(), |m| m.to_string()),
            expected.mtu
        ));
    }
    if !link.up {
        out.push(format!("interface {name} is down"));
    }
    let wanted: Vec<IpNet> = expected
        .addresses()
        .into_iter()
        .map(|(a, _)| IpNet::from(a))
        .collect();
    for want in &wanted {
        if !link.addrs.contains(want) {
            out.push(format!("interface {name} lacks the address {want}"));
        }
    }
    for have in &link.addrs {
        let kernel_link_local = matches!(have.addr(), IpAddr::V6(a) if a.is_unicast_link_local());
        if !kernel_link_local && !wanted.contains(have) {
            out.push(format!(
                "interface {name} has the unexpected address {have}"
            ));
        }
    }
    for (addr, gateway) in expected.addresses() {
        let Some(gateway) = gateway else { continue };
        let default = if addr.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        let present = link.routes.iter().any(|r| {
            r.dst.prefix_len() == 0
                && r.dst.addr().is_ipv4() == addr.is_ipv4()
                && r.gateway == Some(gateway)
        });
        if !present {
            out.push(format!(
                "netns {} has no route {default} via {gateway} dev {name}",
                expected.netns
            ));
        }
    }
    out
}

fn list<'a>(map: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    map.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::result::add_result;
    use crate::spec::version::CniVersion;

    fn attached() -> Attached {
        Attached {
            ifname: "eth0".into(),
            netns: "/run/netns/p".into(),
            mac: "0a:58:0a:f4:00:02".into(),
            mtu: 1450,
            ipv4: Some("10.244.0.2".parse().unwrap()),
            ipv6: None,
            gateway_v4: Some("169.254.1.1".parse().unwrap()),
            gateway_v6: None,
        }
    }

    fn good_link() -> ObservedLink {
        ObservedLink {
            mac: Some("0A:58:0A:F4:00:02".into()),
            mtu: Some(1450),
            up: true,
            addrs: vec![
                "10.244.0.2/32".parse().unwrap(),
                "fe80::858:aff:fef4:2/64".parse().unwrap(),
            ],
            routes: vec![
                ObservedRoute {
                    dst: "169.254.1.1/32".parse().unwrap(),
                    gateway: None,
                },
                ObservedRoute {
                    dst: "0.0.0.0/0".parse().unwrap(),
                    gateway: Some("169.254.1.1".parse().unwrap()),
                },
            ],
        }
    }

    #[test]
    fn our_own_result_matches_in_every_version() {
        for v in CniVersion::ALL {
            let r = add_result(v, &attached(), None, None);
            assert_eq!(
                diff_prev_result(&attached(), r.as_object().unwrap()),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn prev_result_differences_are_named() {
        let prev = json!({
            "interfaces": [{"name":"eth0","mac":"0a:58:00:00:00:09","sandbox":"/run/netns/p"}],
            "ips": [{"address":"10.244.0.9/32","gateway":"169.254.1.1","interface":0}]
        });
        let d = diff_prev_result(&attached(), prev.as_object().unwrap());
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("mac 0a:58:00:00:00:09"));
        assert!(d[1].contains("lacks the address 10.244.0.2/32"));
        assert!(d[2].contains("10.244.0.9/32"));
        let other_netns = json!({"interfaces":[{"name":"eth0","sandbox":"/run/netns/q"}]});
        let d = diff_prev_result(&attached(), other_netns.as_object().unwrap());
        assert!(d[0].contains("no interface \"eth0\""), "{d:?}");
    }

    #[test]
    fn a_healthy_netns_has_no_difference() {
        assert_eq!(
            diff_netns(&attached(), Some(&good_link())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn netns_differences_are_named() {
        assert!(diff_netns(&attached(), None)[0].contains("does not exist"));
        let mut link = good_link();
        link.up = false;
        link.mtu = Some(1500);
        link.addrs = vec!["10.1.1.1/32".parse().unwrap()];
        link.routes.pop();
        let d = diff_netns(&attached(), Some(&link));
        assert_eq!(d.len(), 5, "{d:?}");
        assert!(d[0].contains("mtu 1500"));
        assert!(d[1].contains("down"));
        assert!(d[2].contains("lacks the address 10.244.0.2/32"));
        assert!(d[3].contains("unexpected address 10.1.1.1/32"));
        assert!(d[4].contains("no route 0.0.0.0/0 via 169.254.1.1"));
    }
}

//! The ADD result, per version, and its merge into a chained `prevResult`.
//!
//! tweed's part: one interface `{name, mac, sandbox}` (plus `mtu` in 1.1.0),
//! one IP per family (`IP/32`, `IP/128`) with the dataplane's gateway
//! (`169.254.1.1`, `fe80::1`) and the index of that interface, a default
//! route per family, and the configured `dns`. When chained, the previous
//! result is passed on with tweed's interface, IPs and routes appended (a
//! route whose `dst` is already there is not repeated) and tweed's `dns`,
//! when configured, replacing the previous one; other keys pass unchanged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};

use super::config::Dns;
use super::version::CniVersion;

/// An attachment as the daemon made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The interface name in the pod.
    pub ifname: String,
    /// The pod's netns path (the result's `sandbox`).
    pub netns: String,
    /// The interface's MAC (`0a:58:..`).
    pub mac: String,
    /// The interface's MTU.
    pub mtu: u16,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// IPv4 gateway.
    pub gateway_v4: Option<Ipv4Addr>,
    /// IPv6 gateway.
    pub gateway_v6: Option<Ipv6Addr>,
}

impl Attached {
    /// Each address with its gateway, IPv4 first.
    pub fn addresses(&self) -> Vec<(IpAddr, Option<IpAddr>)> {
        let mut out = Vec::new();
        if let Some(a) = self.ipv4 {
            out.push((IpAddr::V4(a), self.gateway_v4.map(IpAddr::V4)));
        }
        if let Some(a) = self.ipv6 {
            out.push((IpAddr::V6(a), self.gateway_v6.map(IpAddr::V6)));
        }
        out
    }
}

/// `IP/32` or `IP/128`: a pod address as a result spells it.
pub fn host_cidr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// The ADD result in `version`: tweed's attachment, appended to `prev` when
/// chained.
pub fn add_result(
    version: CniVersion,
    attached: &Attached,
    dns: Option<&Dns>,
    prev: Option<&Map<String, Value>>,
) -> Value {
    let mut out = prev.cloned().unwrap_or_default();
    out.insert("cniVersion".into(), version.as_str().into());

    let mut interfaces = take_list(&mut out, "interfaces");
    let index = interfaces.len();
    let mut interface = json!({
        "name": attached.ifname,
        "mac": attached.mac,
        "sandbox": attached.netns,
    });
    if version.interface_has_mtu() {
        interface["mtu"] = attached.mtu.into();
    }
    interfaces.push(interface);

    let mut ips = take_list(&mut out, "ips");
    let mut routes = take_list(&mut out, "routes");
    for (addr, gateway) in attached.addresses() {
        let mut ip = json!({ "address": host_cidr(addr), "interface": index });
        if let Some(gw) = gateway {
            ip["gateway"] = gw.to_string().into();
        }
        if version.ip_has_version_field() {
            ip["version"] = (if addr.is_ipv4() { "4" } else { "6" }).into();
        }
        ips.push(ip);
        let dst = if addr.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        if !routes
            .iter()
            .any(|r| r.get("dst").and_then(Value::as_str) == Some(dst))
        {
            routes.push(json!({ "dst": dst }));
        }
    }
    out.insert("interfaces".into(), interfaces.into());
    out.insert("ips".into(), ips.into());
    out.insert("routes".into(), routes.into());
    if let Some(dns) = dns {
        out.insert("dns".into(), json!(dns));
    }
    Value::Object(out)
}

/// Removes and returns the list at `key` (empty when absent or not a list;
/// `config::parse` refuses a `prevResult` whose lists are not lists).
fn take_list(map: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match map.remove(key) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attached(v6: bool) -> Attached {
        Attached {
            ifname: "eth0".into(),
            netns: "/run/netns/p".into(),
            mac: "0a:58:0a:f4:00:02".into(),
            mtu: 1450,
            ipv4: Some("10.244.0.2".parse().unwrap()),
            ipv6: v6.then(|| "fd00::2".parse().unwrap()),
            gateway_v4: Some("169.254.1.1".parse().unwrap()),
            gateway_v6: v6.then(|| "fe80::1".parse().unwrap()),
        }
    }

    #[test]
    fn a_1_1_0_result_has_mtu_and_no_ip_version() {
        let dns = Dns {
            nameservers: vec!["10.96.0.10".into()],
            ..Dns::default()
        };
        let r = add_result(CniVersion::V1_1_0, &attached(true), Some(&dns), None);
        assert_eq!(
            r,
            json!({
                "cniVersion": "1.1.0",
                "interfaces": [{"name":"eth0","mac":"0a:58:0a:f4:00:02","mtu":1450,"sandbox":"/run/netns/p"}],
                "ips": [
                    {"address":"10.244.0.2/32","gateway":"169.254.1.1","interface":0},
                    {"address":"fd00::2/128","gateway":"fe80::1","interface":0}
                ],
                "routes": [{"dst":"0.0.0.0/0"},{"dst":"::/0"}],
                "dns": {"nameservers":["10.96.0.10"]}
            })
        );
    }

    #[test]
    fn older_results_carry_the_ip_version_and_no_mtu() {
        for v in [CniVersion::V0_3_0, CniVersion::V0_3_1, CniVersion::V0_4_0] {
            let r = add_result(v, &attached(false), None, None);
            assert_eq!(r["cniVersion"], v.as_str());
            assert_eq!(r["ips"][0]["version"], "4");
            assert!(r["interfaces"][0].get("mtu").is_none());
            assert!(r.get("dns").is_none());
            assert_eq!(r["routes"], json!([{"dst":"0.0.0.0/0"}]));
        }
        let r = add_result(CniVersion::V1_0_0, &attached(false), None, None);
        assert!(r["ips"][0].get("version").is_none());
        assert!(r["interfaces"][0].get("mtu").is_none());
    }

    #[test]
    fn a_chained_result_appends_and_keeps_the_rest() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name":"lo0"}, {"name":"veth0"}],
            "ips": [{"address":"192.0.2.5/24","interface":1}],
            "routes": [{"dst":"0.0.0.0/0","gw":"192.0.2.1"}],
            "dns": {"domain":"old"},
            "custom": true
        });
        let r = add_result(CniVersion::V1_0_0, &attached(false), None, prev.as_object());
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(r["interfaces"][2]["name"], "eth0");
        assert_eq!(r["ips"][1]["interface"], 2);
        assert_eq!(r["ips"][0]["address"], "192.0.2.5/24");
        assert_eq!(
            r["routes"].as_array().unwrap().len(),
            1,
            "no duplicate default route"
        );
        assert_eq!(r["dns"]["domain"], "old");
        assert_eq!(r["custom"], true);
    }
}

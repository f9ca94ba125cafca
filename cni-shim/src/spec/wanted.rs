//! What the runtime asks the attachment to be: static addresses and a MAC.
//!
//! Two spellings each (CNI CONVENTIONS.md): `IP=` and `MAC=` in `CNI_ARGS`
//! (`IP=` may list addresses, comma-separated, as host-local reads it), and
//! the `ips` and `mac` capabilities, which libcni passes in `runtimeConfig`
//! when the conflist declares them (`"ips": ["10.244.0.9/24"]`, `"mac":
//! "…"`). An address's prefix length is the runtime's guess at the subnet and
//! is not used: the pod gets the address as a `/32` (`/128`) like any other.
//! Both spellings may be given (podman passes both) and must then agree.
//! A malformed value is error 4 (`CNI_ARGS`) or 7 (`runtimeConfig`), naming
//! it; tweed then asks the daemon for exactly these, and the daemon either
//! gives them or refuses.

use std::net::IpAddr;

use ipnet::IpNet;
use tweed_api::proto::MacAddr;

use super::error::{CniError, code};

/// The addresses and MAC asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Addresses, in the order given, without repeats.
    pub ips: Vec<IpAddr>,
    /// The MAC.
    pub mac: Option<MacAddr>,
}

/// The raw values: `IP=` and `MAC=` of `CNI_ARGS`, `runtimeConfig.ips` and
/// `runtimeConfig.mac`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// `CNI_ARGS` `IP=`.
    pub arg_ip: Option<&'a str>,
    /// `CNI_ARGS` `MAC=`.
    pub arg_mac: Option<&'a str>,
    /// `runtimeConfig.ips`.
    pub cap_ips: &'a [String],
    /// `runtimeConfig.mac`.
    pub cap_mac: Option<&'a str>,
}

/// Decodes and reconciles what was asked.
pub fn wanted(asked: Asked<'_>) -> Result<Wanted, CniError> {
    let from_args: Vec<IpAddr> = asked
        .arg_ip
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| address(v).map_err(|why| env_error(format!("CNI_ARGS IP={v:?}: {why}"))))
        .collect::<Result<_, _>>()?;
    let from_caps: Vec<IpAddr> = asked
        .cap_ips
        .iter()
        .enumerate()
        .map(|(i, v)| {
            address(v).map_err(|why| config_error(format!("runtimeConfig.ips[{i}]: {v:?}: {why}")))
        })
        .collect::<Result<_, _>>()?;
    if !from_args.is_empty() && !from_caps.is_empty() && !same_set(&from_args, &from_caps) {
        return Err(config_error(format!(
            "CNI_ARGS IP= asks for {} but runtimeConfig.ips for {}: give the same addresses",
            list(&from_args),
            list(&from_caps)
        )));
    }
    let mut ips = Vec::new();
    for ip in from_args.into_iter().chain(from_caps) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let arg_mac = asked
        .arg_mac
        .filter(|v| !v.is_empty())
        .map(|v| mac(v).map_err(|why| env_error(format!("CNI_ARGS MAC={v:?}: {why}"))))
        .transpose()?;
    let cap_mac = asked
        .cap_mac
        .map(|v| mac(v).map_err(|why| config_error(format!("runtimeConfig.mac: {v:?}: {why}"))))
        .transpose()?;
    if let (Some(a), Some(c)) = (arg_mac, cap_mac)
        && a != c
    {
        return Err(config_error(format!(
            "CNI_ARGS MAC= asks for {a} but runtimeConfig.mac for {c}: give the same MAC"
        )));
    }
    Ok(Wanted {
        ips,
        mac: arg_mac.or(cap_mac),
    })
}

/// `ADDR` or `ADDR/LEN`.
fn address(v: &str) -> Result<IpAddr, &'static str> {
    v.parse::<IpAddr>()
        .or_else(|_| v.parse::<IpNet>().map(|n| n.addr()))
        .map_err(|_| "not an IP address (like 10.244.0.9 or 10.244.0.9/24)")
}

/// `aa:bb:cc:dd:ee:ff`, either case; `-` separators accepted too.
fn mac(v: &str) -> Result<MacAddr, String> {
    let m: MacAddr = v.replace('-', ":").to_ascii_lowercase().parse()?;
    if m.0[0] & 1 != 0 {
        return Err("a multicast MAC; clear the low bit of the first octet".into());
    }
    if m.0 == [0; 6] {
        return Err("00:00:00:00:00:00 is not a usable MAC".into());
    }
    Ok(m)
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn env_error(msg: String) -> CniError {
    CniError::new(code::INVALID_ENV, msg)
}

fn config_error(msg: String) -> CniError {
    CniError::new(code::INVALID_CONFIG, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn nothing_asked_is_nothing_wanted() {
        assert_eq!(wanted(Asked::default()).unwrap(), Wanted::default());
    }

    #[test]
    fn both_spellings_agree_and_merge() {
        let caps = ["10.244.0.250/24".to_owned()];
        let w = wanted(Asked {
            arg_ip: Some("10.244.0.250"),
            arg_mac: Some("0A:58:0a:f4:00:fa"),
            cap_ips: &caps,
            cap_mac: Some("0a:58:0a:f4:00:fa"),
        })
        .unwrap();
        assert_eq!(w.ips, ips(&["10.244.0.250"]));
        assert_eq!(w.mac.unwrap().to_string(), "0a:58:0a:f4:00:fa");
        let w = wanted(Asked {
            arg_ip: Some("10.244.0.5,fd00::5"),
            ..Asked::default()
        })
        .unwrap();
        assert_eq!(w.ips, ips(&["10.244.0.5", "fd00::5"]));
    }

    #[test]
    fn malformed_or_disagreeing_values_are_refused_with_their_source() {
        let e = wanted(Asked {
            arg_ip: Some("10.244.0.300"),
            ..Asked::default()
        })
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(
            e.msg.starts_with("CNI_ARGS IP=\"10.244.0.300\""),
            "{}",
            e.msg
        );
        let caps = ["nope".to_owned()];
        let e = wanted(Asked {
            cap_ips: &caps,
            ..Asked::default()
        })
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.starts_with("runtimeConfig.ips[0]"), "{}", e.msg);
        for bad in [
            "01:00:00:00:00:01",
            "00:00:00:00:00:00",
            "0a:58",
            "zz:00:00:00:00:00",
        ] {
            let e = wanted(Asked {
                arg_mac: Some(bad),
                ..Asked::default()
            })
            .unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{bad}");
        }
        let caps = ["10.244.0.6".to_owned()];
        let e = wanted(Asked {
            arg_ip: Some("10.244.0.5"),
            cap_ips: &caps,
            ..Asked::default()
        })
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        let e = wanted(Asked {
            arg_mac: Some("0a:00:00:00:00:01"),
            cap_mac: Some("0a:00:00:00:00:02"),
            ..Asked::default()
        })
        .unwrap_err();
        assert!(e.msg.contains("same MAC"), "{}", e.msg);
    }
}

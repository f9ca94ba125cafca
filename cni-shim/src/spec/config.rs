//! The network configuration a runtime writes on stdin.
//!
//! The standard keys (`cniVersion`, `name`, `type`, `args.cni.labels`,
//! `prevResult`, `runtimeConfig.ips` and `.mac`, `cni.dev/valid-attachments`) plus tweed's
//! own: `socket` (the daemon's control socket, default
//! [`DEFAULT_SOCKET`]), `dns` (copied into the result) and `mtu` (the pod
//! interface's; the node's when absent). Unknown keys are ignored, as CNI
//! configurations carry keys for other plugins; an `ipam` section is refused
//! (error 2) because tweed allocates addresses itself and would silently
//! ignore it otherwise.
//!
//! Decoding order: not JSON → 6; `cniVersion` missing → 7, unsupported → 1
//! (before anything else, since other versions may shape fields
//! differently); a known key of the wrong shape → 7, naming its path.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{CniError, code};
use super::version::CniVersion;

/// The daemon's control socket when the configuration names none.
pub const DEFAULT_SOCKET: &str = "/run/tweed/control.sock";

/// A decoded, checked network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    /// `cniVersion`: the version results and errors are written in.
    pub version: CniVersion,
    /// `name`: the network's name.
    pub name: String,
    /// The daemon's control socket.
    pub socket: PathBuf,
    /// DNS settings for the result.
    pub dns: Option<Dns>,
    /// The pod interface's MTU.
    pub mtu: Option<u16>,
    /// The pod's labels, from `args.cni.labels`.
    pub labels: BTreeMap<String, String>,
    /// The previous plugin's result, when chained (an object).
    pub prev_result: Option<Map<String, Value>>,
    /// `cni.dev/valid-attachments` (GC).
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// `runtimeConfig.ips` (the `ips` capability), as given.
    pub runtime_ips: Vec<String>,
    /// `runtimeConfig.mac` (the `mac` capability), as given.
    pub runtime_mac: Option<String>,
}

/// The `runtimeConfig` keys tweed reads (`portMappings` is portmap's).
#[derive(Deserialize, Default)]
struct RawRuntime {
    #[serde(default)]
    ips: Vec<String>,
    mac: Option<String>,
}

/// The result's `dns`: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name server addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ValidAttachment {
    /// The sandbox's id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface inside it.
    pub ifname: String,
}

/// The keys tweed reads, as they arrive (unknown keys ignored).
#[derive(Deserialize)]
struct Raw {
    name: Option<String>,
    #[serde(rename = "type")]
    _type: Option<String>,
    socket: Option<String>,
    dns: Option<Dns>,
    mtu: Option<u16>,
    args: Option<RawArgs>,
    #[serde(rename = "prevResult")]
    prev_result: Option<Map<String, Value>>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<ValidAttachment>>,
    #[serde(rename = "runtimeConfig")]
    runtime_config: Option<RawRuntime>,
}

#[derive(Deserialize)]
struct RawArgs {
    cni: Option<RawCniArgs>,
}

#[derive(Deserialize)]
struct RawCniArgs {
    labels: Option<Vec<Label>>,
}

/// `args.cni.labels` entries (CNI CONVENTIONS.md).
#[derive(Deserialize)]
struct Label {
    key: String,
    value: String,
}

/// The `cniVersion` stdin names, if it is JSON naming a supported one: what
/// errors and VERSION are written in.
pub fn peek_version(stdin: &[u8]) -> Option<CniVersion> {
    let value: Value = serde_json::from_slice(stdin).ok()?;
    CniVersion::parse(value.get("cniVersion")?.as_str()?)
}

/// Decodes and checks a network configuration.
pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
    let value: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            code::DECODE,
            format!("the network configuration on stdin is not JSON: {e}"),
        )
    })?;
    let Value::Object(object) = &value else {
        return Err(CniError::new(
            code::DECODE,
            "the network configuration on stdin is not a JSON object",
        ));
    };
    let supported = CniVersion::supported().join(", ");
    let version = match object.get("cniVersion") {
        None | Some(Value::Null) => {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                format!("cniVersion is missing: set it to one of {supported}"),
            ));
        }
        Some(Value::String(s)) => CniVersion::parse(s).ok_or_else(|| {
            CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {s:?} is not supported: tweed speaks {supported}"),
            )
        })?,
        Some(other) => {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                format!("cniVersion must be a string like \"1.1.0\", not {other}"),
            ));
        }
    };
    if let Some(ipam) = object.get("ipam") {
        return Err(CniError::new(
            code::UNSUPPORTED_FIELD,
            format!(
                "ipam: {ipam}: tweed allocates pod addresses itself; \
                 remove the ipam section from the network configuration"
            ),
        ));
    }
    let raw: Raw = serde_path_to_error::deserialize(&value).map_err(|e| {
        CniError::new(
            code::INVALID_CONFIG,
            format!("network configuration: {}: {}", e.path(), e.inner()),
        )
    })?;
    let name = raw.name.ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "name is missing: a network configuration names its network",
        )
    })?;
    let socket = raw.socket.unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
    if !socket.starts_with('/') {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            format!("socket: {socket:?} is not an absolute path (default {DEFAULT_SOCKET})"),
        ));
    }
    if let Some(mtu) = raw.mtu
        && mtu < 576
    {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            format!("mtu: {mtu} is below 576, the least an IPv4 host must accept"),
        ));
    }
    if let Some(prev) = &raw.prev_result {
        check_prev_result(prev)?;
    }
    let runtime = raw.runtime_config.unwrap_or_default();
    let labels = raw
        .args
        .and_then(|a| a.cni)
        .and_then(|c| c.labels)
        .unwrap_or_default()
        .into_iter()
        .map(|l| (l.key, l.value))
        .collect();
    Ok(NetConf {
        version,
        name,
        socket: PathBuf::from(socket),
        dns: raw.dns,
        mtu: raw.mtu,
        labels,
        prev_result: raw.prev_result,
        valid_attachments: raw.valid_attachments,
        runtime_ips: runtime.ips,
        runtime_mac: runtime.mac,
    })
}

/// The lists tweed appends to must be lists, so a result can always be
/// built (checked before the daemon is asked for anything), and an IP's
/// `interface` must index one of `interfaces`: tweed appends its interface
/// after them, so an IP pointing past them would land on tweed's own
/// interface in the result, and CHECK would then refuse it.
fn check_prev_result(prev: &Map<String, Value>) -> Result<(), CniError> {
    let invalid = |msg: String| CniError::new(code::INVALID_CONFIG, msg);
    for key in ["interfaces", "ips", "routes"] {
        match prev.get(key) {
            None | Some(Value::Null) | Some(Value::Array(_)) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "prevResult.{key} must be a list, not {other}"
                )));
            }
        }
    }
    let count = prev
        .get("interfaces")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ips = prev.get("ips").and_then(Value::as_array);
    for (i, ip) in ips.into_iter().flatten().enumerate() {
        match ip.get("interface") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n < count as u64) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "prevResult.ips[{i}].interface: {other} is not an index of \
                     prevResult.interfaces ({count} listed)"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<NetConf, CniError> {
        parse(s.as_bytes())
    }

    #[test]
    fn the_minimal_configuration_takes_the_defaults() {
        let c = parse_str(r#"{"cniVersion":"1.1.0","name":"tweed","type":"tweed"}"#).unwrap();
        assert_eq!(c.version, CniVersion::V1_1_0);
        assert_eq!(c.name, "tweed");
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(c.dns, None);
        assert!(c.labels.is_empty());
        assert_eq!(c.prev_result, None);
    }

    #[test]
    fn tweed_keys_labels_and_unknown_keys() {
        let c = parse_str(
            r#"{"cniVersion":"0.4.0","name":"n","type":"tweed","socket":"/tmp/c.sock",
                "dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]},
                "mtu":1400,"runtimeConfig":{"portMappings":[]},"other":1,
                "args":{"cni":{"labels":[{"key":"app","value":"web"}]}},
                "cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.socket, PathBuf::from("/tmp/c.sock"));
        assert_eq!(c.dns.unwrap().nameservers, ["10.96.0.10"]);
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(c.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "c");
    }

    #[test]
    fn error_codes_follow_the_decoding_order() {
        assert_eq!(parse_str("{not json").unwrap_err().code, code::DECODE);
        assert_eq!(parse_str("[1]").unwrap_err().code, code::DECODE);
        assert_eq!(
            parse_str(r#"{"name":"n"}"#).unwrap_err().code,
            code::INVALID_CONFIG
        );
        let e = parse_str(r#"{"cniVersion":"0.2.0","name":"n","dns":7}"#).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(e.msg.contains("1.1.0"), "{}", e.msg);
        let e = parse_str(r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}"#)
            .unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        let e = parse_str(r#"{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"x"}}"#)
            .unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        assert!(e.msg.contains("dns.nameservers"), "{}", e.msg);
        let e = parse_str(r#"{"cniVersion":"1.0.0","type":"tweed"}"#).unwrap_err();
        assert!(e.msg.starts_with("name"), "{}", e.msg);
        let e = parse_str(r#"{"cniVersion":"1.0.0","name":"n","socket":"x.sock"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        let e =
            parse_str(r#"{"cniVersion":"1.0.0","name":"n","prevResult":{"ips":{}}}"#).unwrap_err();
        assert!(e.msg.starts_with("prevResult.ips"), "{}", e.msg);
    }

    /// Found by the `cni_stdin` fuzz target: an IP of `prevResult` naming
    /// an interface that is not listed ended up on tweed's own interface in
    /// the ADD result, and CHECK then failed that result (code 101).
    #[test]
    fn a_prev_result_ip_must_name_a_listed_interface() {
        let conf =
            |prev: &str| format!(r#"{{"cniVersion":"1.0.0","name":"n","prevResult":{prev}}}"#);
        let ok = r#"{"interfaces":[{"name":"lo"}],"ips":[{"address":"127.0.0.1/8","interface":0},{"address":"10.0.0.1/8"}]}"#;
        parse_str(&conf(ok)).expect("index 0 of one interface");
        for bad in [
            r#"{"ips":[{"address":"10.0.0.1/8","interface":0}]}"#,
            r#"{"interfaces":[{"name":"lo"}],"ips":[{"address":"10.0.0.1/8","interface":1}]}"#,
            r#"{"interfaces":[{"name":"lo"}],"ips":[{"address":"10.0.0.1/8","interface":"0"}]}"#,
        ] {
            let e = parse_str(&conf(bad)).expect_err(bad);
            assert_eq!(e.code, code::INVALID_CONFIG, "{bad}");
            assert!(e.msg.contains("prevResult.ips[0].interface"), "{}", e.msg);
        }
    }

    #[test]
    fn the_version_is_peeked_for_errors() {
        assert_eq!(
            peek_version(br#"{"cniVersion":"0.3.1"}"#),
            Some(CniVersion::V0_3_1)
        );
        assert_eq!(peek_version(br#"{"cniVersion":"9"}"#), None);
        assert_eq!(peek_version(b"nope"), None);
    }
}

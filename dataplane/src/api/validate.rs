//! Checks a request can pass without looking at any state: names, addresses,
//! prefixes, MTUs, MACs, rule sets. Pure.
//!
//! Every error is [`ErrorKind::Invalid`](tweed_api::dataplane::proto::ErrorKind::Invalid)
//! with a message that names the field (`port_add.mtu`,
//! `policy_set.ingress.rules[2].ports`) and says what to fix. Checks that
//! need state (duplicates, existence) belong to the handler.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::table::acl::{
    PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PortRange, Rule, RuleAction,
    RuleId, RuleSet, Verdict, has_ports,
};
use tweed_api::dataplane::proto::{
    ApiError, PeerSpec, PolicySet, PolicySetMany, PortAdd, Protocol, Request, RouteSpec, RouteVia,
    RuleActionSpec, RuleSetSpec, ServiceSet, TraceFrom, TraceRequest, VerdictSpec,
};

/// The longest name (a DNS name's limit).
pub const MAX_NAME: usize = 253;
/// The longest port name: a `NAMESPACE/POD` whose halves may each be a
/// [`MAX_NAME`] name (a Kubernetes pod name alone may be 253 characters, so
/// the pair may not fit in one name), with room for the suffixes the control
/// daemon adds (`:IFNAME`, `@CONTAINER`).
pub const MAX_PORT_NAME: usize = 1024;
/// The longest Linux interface name (`IFNAMSIZ - 1`).
pub const MAX_IFNAME: usize = 15;
/// The smallest MTU (the IPv4 minimum datagram every host accepts, RFC 791).
pub const MIN_MTU: u32 = 576;
/// The smallest MTU with IPv6 (RFC 8200 §5).
pub const MIN_MTU_V6: u32 = 1280;
/// The largest MTU.
pub const MAX_MTU: u32 = 65535;

fn invalid(field: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("{field}: {what}"))
}

/// Checks every field of `request` that can be checked without state.
pub fn request(request: &Request) -> Result<(), ApiError> {
    match request {
        Request::PortAdd(args) => port_add(args),
        Request::PortRemove(args) => port_name("port_remove.name", &args.name),
        Request::PeerSet(args) => peer(args),
        Request::PeerRemove(args) => name("peer_remove.name", &args.name),
        Request::RouteSet(args) => route(args),
        Request::RouteRemove(args) => prefix("route_remove.prefix", &args.prefix),
        Request::PolicySet(args) => policy(args).map(|_| ()),
        Request::PolicySetMany(args) => policy_many(args),
        Request::ServiceSet(args) => services(args),
        Request::Trace(args) => trace(args).map(|_| ()),
        Request::PortList(_)
        | Request::PeerList(_)
        | Request::RouteList(_)
        | Request::Stats(_)
        | Request::Dump(_) => Ok(()),
    }
}

/// A name: non-empty, at most [`MAX_NAME`] characters, no whitespace or control characters.
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    name_within(field, value, MAX_NAME)
}

/// A [`name`] of at most `max` characters.
fn name_within(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            format!("{value:?} contains {c:?}; use no whitespace or control characters"),
        ));
    }
    Ok(())
}

/// A port name: a [`name`] of up to [`MAX_PORT_NAME`] characters, of the
/// form `NAMESPACE/POD`.
pub fn port_name(field: &str, value: &str) -> Result<(), ApiError> {
    name_within(field, value, MAX_PORT_NAME)?;
    match value.split_once('/') {
        Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => Ok(()),
        _ => Err(invalid(
            field,
            format!("{value:?} is not of the form NAMESPACE/POD"),
        )),
    }
}

/// An interface name: 1 to 15 bytes, no `/`, no whitespace or control characters.
pub fn ifname(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_IFNAME {
        return Err(invalid(
            field,
            format!("{value:?} must be 1 to {MAX_IFNAME} bytes long"),
        ));
    }
    if value == "." || value == ".." {
        return Err(invalid(
            field,
            format!("{value:?} is not an interface name"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            field,
            format!("{value:?} contains {c:?}; interface names have no '/', ':' or whitespace"),
        ));
    }
    Ok(())
}

/// A netns path: absolute, without control characters.
pub fn netns(field: &str, value: &str) -> Result<(), ApiError> {
    if !value.starts_with('/') {
        return Err(invalid(
            field,
            format!("{value:?} must be an absolute path like /run/netns/NAME or /proc/PID/ns/net"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(())
}

/// A pod address: unicast, not loopback, unspecified, broadcast or link-local
/// (the link-local range holds the gateway).
pub fn pod_address(field: &str, ip: IpAddr) -> Result<(), ApiError> {
    let bad = match ip {
        IpAddr::V4(v4) => v4_problem(v4).or(v4.is_link_local().then_some("link-local")),
        IpAddr::V6(v6) => v6_problem(v6).or(is_v6_link_local(v6).then_some("link-local")),
    };
    match bad {
        Some(what) => Err(invalid(
            field,
            format!("{ip} is {what}; give the pod a unicast address"),
        )),
        None => Ok(()),
    }
}

fn v4_problem(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

fn v6_problem(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

fn is_v6_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// An MTU in [`MIN_MTU`]..=[`MAX_MTU`], at least [`MIN_MTU_V6`] with IPv6.
pub fn mtu(field: &str, mtu: u32, ipv6: bool) -> Result<(), ApiError> {
    let min = if ipv6 { MIN_MTU_V6 } else { MIN_MTU };
    if !(min..=MAX_MTU).contains(&mtu) {
        let why = if ipv6 {
            " (IPv6 needs at least 1280)"
        } else {
            ""
        };
        return Err(invalid(
            field,
            format!("{mtu} is outside {min}..={MAX_MTU}{why}"),
        ));
    }
    Ok(())
}

/// A MAC for an interface: unicast (low bit of the first octet clear), not all zero.
pub fn mac(field: &str, mac: [u8; 6]) -> Result<(), ApiError> {
    let shown = tweed_api::dataplane::proto::MacAddr(mac);
    if mac[0] & 1 != 0 {
        return Err(invalid(
            field,
            format!("{shown} is a multicast MAC; clear the low bit of the first octet"),
        ));
    }
    if mac == [0; 6] {
        return Err(invalid(field, "00:00:00:00:00:00 is not a usable MAC"));
    }
    Ok(())
}

/// A prefix without host bits.
pub fn prefix(field: &str, net: &IpNet) -> Result<(), ApiError> {
    if net.trunc() != *net {
        return Err(invalid(
            field,
            format!("{net} has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(())
}

/// Checks `port_add`.
pub fn port_add(args: &PortAdd) -> Result<(), ApiError> {
    port_name("port_add.name", &args.name)?;
    netns("port_add.netns", &args.netns)?;
    ifname("port_add.ifname", &args.ifname)?;
    if args.ipv4.is_none() && args.ipv6.is_none() {
        return Err(invalid(
            "port_add",
            "give at least one of `ipv4` and `ipv6`",
        ));
    }
    if let Some(ip) = args.ipv4 {
        pod_address("port_add.ipv4", IpAddr::V4(ip))?;
    }
    if let Some(ip) = args.ipv6 {
        pod_address("port_add.ipv6", IpAddr::V6(ip))?;
    }
    if let Some(m) = args.mac {
        mac("port_add.mac", m.0)?;
    }
    if let Some(m) = args.mtu {
        mtu("port_add.mtu", m, args.ipv6.is_some())?;
    }
    Ok(())
}

/// Checks `peer_set`.
pub fn peer(args: &PeerSpec) -> Result<(), ApiError> {
    name("peer_set.name", &args.name)?;
    if args.subnets.is_empty() {
        return Err(invalid("peer_set.subnets", "give at least one pod subnet"));
    }
    let mut seen = HashSet::new();
    for (i, subnet) in args.subnets.iter().enumerate() {
        let field = format!("peer_set.subnets[{i}]");
        prefix(&field, subnet)?;
        if !seen.insert(*subnet) {
            return Err(invalid(&field, format!("{subnet} is listed twice")));
        }
    }
    let problem = match args.underlay_ip {
        IpAddr::V4(v4) => {
            (v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()).then_some(())
        }
        IpAddr::V6(v6) => (v6.is_unspecified() || v6.is_multicast()).then_some(()),
    };
    if problem.is_some() {
        return Err(invalid(
            "peer_set.underlay_ip",
            format!("{} is not a unicast address", args.underlay_ip),
        ));
    }
    if let Some(ports) = args.source_ports
        && (ports.first == 0 || ports.last < ports.first)
    {
        return Err(invalid(
            "peer_set.source_ports",
            format!(
                "{}-{} is no port range: give first and last, first at least 1 and last not below it",
                ports.first, ports.last
            ),
        ));
    }
    if args.partial_checksums && args.backend != crate::table::peers::Backend::Vxlan {
        return Err(invalid(
            "peer_set.partial_checksums",
            "only a VXLAN peer can be sent partial checksums (the flag lives in the VXLAN header): drop it or use backend vxlan",
        ));
    }
    mac("peer_set.vtep_mac", args.vtep_mac.0)
}

/// Checks `route_set`: a prefix without host bits; `via: node` names one
/// unicast address (the node's own address on the overlay), since peers may
/// reach what it covers.
pub fn route(args: &RouteSpec) -> Result<(), ApiError> {
    let field = "route_set.prefix";
    prefix(field, &args.prefix)?;
    if args.via != RouteVia::Node {
        return Ok(());
    }
    if args.prefix.prefix_len() != args.prefix.max_prefix_len() {
        return Err(invalid(
            field,
            format!(
                "{} via node must be one address (/32 or /128): the node's own address on the overlay",
                args.prefix
            ),
        ));
    }
    let ip = args.prefix.addr();
    let bad = match ip {
        IpAddr::V4(v4) => v4_problem(v4),
        IpAddr::V6(v6) => v6_problem(v6),
    };
    match bad {
        Some(what) => Err(invalid(
            field,
            format!("{ip} is {what}; the node's overlay address must be unicast"),
        )),
        None => Ok(()),
    }
}

/// Checks `policy_set` and returns the ingress and egress rule sets.
pub fn policy(args: &PolicySet) -> Result<(RuleSet, RuleSet), ApiError> {
    port_name("policy_set.name", &args.name)?;
    Ok((
        rule_set("policy_set.ingress", &args.ingress)?,
        rule_set("policy_set.egress", &args.egress)?,
    ))
}

/// Checks `policy_set_many`: each set as `policy_set` checks it, and no port twice.
pub fn policy_many(args: &PolicySetMany) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for (i, set) in args.sets.iter().enumerate() {
        let field = format!("policy_set_many.sets[{i}]");
        port_name(&format!("{field}.name"), &set.name)?;
        if !seen.insert(set.name.as_str()) {
            return Err(invalid(
                &format!("{field}.name"),
                format!("port {:?} is given twice; give each port once", set.name),
            ));
        }
        rule_set(&format!("{field}.ingress"), &set.ingress)?;
        rule_set(&format!("{field}.egress"), &set.egress)?;
    }
    Ok(())
}

/// Checks a rule set and converts it to the classifier's model.
pub fn rule_set(field: &str, spec: &RuleSetSpec) -> Result<RuleSet, ApiError> {
    let mut ids = HashSet::new();
    let mut rules = Vec::with_capacity(spec.rules.len());
    for (i, rule) in spec.rules.iter().enumerate() {
        let field = format!("{field}.rules[{i}]");
        if !ids.insert(rule.id) {
            return Err(invalid(
                &format!("{field}.id"),
                format!(
                    "rule id {} is used twice; ids must be unique in a rule set",
                    rule.id
                ),
            ));
        }
        for (list, nets) in [
            ("remote", &rule.remote),
            ("remote_except", &rule.remote_except),
        ] {
            for (j, net) in nets.iter().enumerate() {
                prefix(&format!("{field}.{list}[{j}]"), net)?;
            }
        }
        let ports = match rule.ports {
            None => None,
            Some(range) => {
                if !rule.protocol.is_some_and(has_ports) {
                    return Err(invalid(
                        &format!("{field}.ports"),
                        "a port range needs protocol 6 (TCP), 17 (UDP) or 132 (SCTP)",
                    ));
                }
                if range.first > range.last {
                    return Err(invalid(
                        &format!("{field}.ports"),
                        format!(
                            "first ({}) is greater than last ({})",
                            range.first, range.last
                        ),
                    ));
                }
                Some(PortRange {
                    first: range.first,
                    last: range.last,
                })
            }
        };
        rules.push(Rule {
            id: RuleId(rule.id),
            tier: rule.tier,
            action: match rule.action {
                RuleActionSpec::Allow => RuleAction::Allow,
                RuleActionSpec::Deny => RuleAction::Deny,
                RuleActionSpec::Log => RuleAction::Log,
                RuleActionSpec::Pass => RuleAction::Pass,
            },
            remote: rule.remote.clone(),
            remote_except: rule.remote_except.clone(),
            protocol: rule.protocol,
            ports,
        });
    }
    Ok(RuleSet {
        rules,
        default: match spec.default {
            VerdictSpec::Allow => Verdict::Allow,
            VerdictSpec::Deny => Verdict::Deny,
        },
    })
}

/// Resolves a protocol name or number.
pub fn protocol(field: &str, protocol: &Protocol) -> Result<u8, ApiError> {
    match protocol {
        Protocol::Number(n) => Ok(*n),
        Protocol::Name(name) => match name.to_ascii_lowercase().as_str() {
            "tcp" => Ok(PROTO_TCP),
            "udp" => Ok(PROTO_UDP),
            "sctp" => Ok(PROTO_SCTP),
            "icmp" => Ok(PROTO_ICMP),
            "icmpv6" | "ipv6-icmp" => Ok(PROTO_ICMPV6),
            _ => Err(invalid(
                field,
                format!("{name:?} is not tcp, udp, sctp, icmp, icmpv6 or a protocol number"),
            )),
        },
    }
}

/// Checks `trace` and returns the protocol number.
pub fn trace(args: &TraceRequest) -> Result<u8, ApiError> {
    match &args.from {
        TraceFrom::Port(port) => port_name("trace.from.port", port)?,
        TraceFrom::Peer(peer) => name("trace.from.peer", peer)?,
        TraceFrom::Host(_) => {}
    }
    if args.src.is_ipv4() != args.dst.is_ipv4() {
        return Err(invalid(
            "trace.dst",
            format!(
                "{} and src {} are of different IP versions",
                args.dst, args.src
            ),
        ));
    }
    protocol("trace.protocol", &args.protocol)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

/// `service_set`: names once each, ports named, frontends on TCP, UDP or
/// SCTP ports other than 0, endpoints on ports other than 0.
pub fn services(args: &ServiceSet) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::new();
    for (i, service) in args.services.iter().enumerate() {
        let field = format!("service_set.services[{i}]");
        name(&format!("{field}.name"), &service.name)?;
        if !seen.insert(service.name.as_str()) {
            return Err(invalid(
                &format!("{field}.name"),
                format!("{:?} is named twice", service.name),
            ));
        }
        for (j, port) in service.ports.iter().enumerate() {
            let field = format!("{field}.ports[{j}]");
            name(&format!("{field}.name"), &port.name)?;
            for (k, frontend) in port.frontends.iter().enumerate() {
                let key = frontend.key;
                if !matches!(key.protocol, PROTO_TCP | PROTO_UDP | PROTO_SCTP) {
                    return Err(invalid(
                        &format!("{field}.frontends[{k}].key.protocol"),
                        format!("{} is not TCP (6), UDP (17) or SCTP (132)", key.protocol),
                    ));
                }
                if key.port == 0 {
                    return Err(invalid(
                        &format!("{field}.frontends[{k}].key.port"),
                        "0 is no port",
                    ));
                }
            }
            if let Some(k) = port.endpoints.iter().position(|e| e.port == 0) {
                return Err(invalid(
                    &format!("{field}.endpoints[{k}].port"),
                    "0 is no port",
                ));
            }
        }
    }
    Ok(())
}

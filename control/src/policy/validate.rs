//! The checks a policy must pass before it is accepted, and the warnings for
//! what is accepted but probably not meant. Pure.
//!
//! The checks mirror the API server's validation of NetworkPolicy (names,
//! label syntax, selector operators, ports, ipBlocks, peers) so a manifest
//! that `kubectl apply` takes is taken here, and one it refuses is refused
//! with the field at fault.

use std::net::IpAddr;

use super::error::Invalid;
use super::model::{
    Cidr, Direction, IpBlock, NetworkPolicy, OrderedPolicy, Peer, Policy, PolicyType, Port,
    PortValue, Scope,
};
use super::selector::{LabelSelector, Operator};

/// The longest DNS-1123 subdomain (object names, label key prefixes).
const MAX_SUBDOMAIN: usize = 253;
/// The longest DNS-1123 label (namespace names) and label name or value.
const MAX_LABEL: usize = 63;
/// The longest IANA service name (named ports).
const MAX_SERVICE_NAME: usize = 15;

type Check = Result<(), Invalid>;

/// Checks every field of `policy`.
pub(crate) fn policy(policy: &Policy) -> Check {
    match policy {
        Policy::Kubernetes(p) => network_policy(p),
        Policy::Ordered(p) => ordered(p),
    }
}

fn network_policy(p: &NetworkPolicy) -> Check {
    namespace("metadata.namespace", &p.namespace)?;
    object_name("metadata.name", &p.name)?;
    selector("spec.podSelector", &p.spec.pod_selector)?;
    for (i, rule) in p.spec.ingress.iter().enumerate() {
        let at = format!("spec.ingress[{i}]");
        peers(&format!("{at}.from"), &rule.from)?;
        ports(&format!("{at}.ports"), &rule.ports)?;
    }
    for (i, rule) in p.spec.egress.iter().enumerate() {
        let at = format!("spec.egress[{i}]");
        peers(&format!("{at}.to"), &rule.to)?;
        ports(&format!("{at}.ports"), &rule.ports)?;
    }
    Ok(())
}

fn ordered(p: &OrderedPolicy) -> Check {
    match &p.scope {
        Scope::Namespace(ns) => {
            namespace("metadata.namespace", ns)?;
            if p.spec.namespace_selector.is_some() {
                return Err(Invalid::new(
                    "spec.namespaceSelector",
                    "a Policy applies in its own namespace only; remove namespaceSelector, \
                     or make it a GlobalPolicy",
                ));
            }
        }
        Scope::Global => {
            if let Some(ns) = &p.spec.namespace_selector {
                selector("spec.namespaceSelector", ns)?;
            }
        }
    }
    object_name("metadata.name", &p.name)?;
    if let Some(order) = p.spec.order
        && !order.is_finite()
    {
        return Err(Invalid::new(
            "spec.order",
            format!("{order} is not a finite number; give a number such as 100"),
        ));
    }
    selector("spec.podSelector", &p.spec.pod_selector)?;
    for (i, rule) in p.spec.ingress.iter().enumerate() {
        let at = format!("spec.ingress[{i}]");
        peers(&format!("{at}.from"), &rule.from)?;
        ports(&format!("{at}.ports"), &rule.ports)?;
    }
    for (i, rule) in p.spec.egress.iter().enumerate() {
        let at = format!("spec.egress[{i}]");
        peers(&format!("{at}.to"), &rule.to)?;
        ports(&format!("{at}.ports"), &rule.ports)?;
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain: object names, label key prefixes.
pub(crate) fn object_name(field: &str, name: &str) -> Check {
    if let Some(problem) = subdomain_problem(name) {
        return Err(Invalid::new(
            field,
            format!(
                "{name:?} {problem}; a name is lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit, at most {MAX_SUBDOMAIN} characters"
            ),
        ));
    }
    Ok(())
}

/// Checks a DNS-1123 label: namespace names.
pub(crate) fn namespace(field: &str, name: &str) -> Check {
    if let Some(problem) = dns_label_problem(name) {
        return Err(Invalid::new(
            field,
            format!(
                "{name:?} {problem}; a namespace is lowercase letters, digits and '-', \
                 starting and ending with a letter or digit, at most {MAX_LABEL} characters"
            ),
        ));
    }
    Ok(())
}

fn dns_label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        return Some("is empty");
    }
    if label.len() > MAX_LABEL {
        return Some("is too long");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("has a character other than a lowercase letter, digit or '-'");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some("starts or ends with '-'");
    }
    None
}

fn subdomain_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > MAX_SUBDOMAIN {
        return Some("is too long");
    }
    for part in name.split('.') {
        if part.is_empty() {
            return Some("has an empty part between dots");
        }
        if let Some(problem) = dns_label_problem(part) {
            return Some(match problem {
                "is too long" => "has a part between dots longer than 63 characters",
                other => other,
            });
        }
    }
    None
}

/// Whether `name` is a label name or non-empty label value: at most 63 of
/// `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn label_name_ok(name: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(name.chars().next())
        && alnum(name.chars().last())
}

/// Checks a label key: `[PREFIX/]NAME`, PREFIX a DNS subdomain.
pub(crate) fn label_key(field: &str, key: &str) -> Check {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Some(problem) = subdomain_problem(prefix)
    {
        return Err(Invalid::new(
            field,
            format!(
                "label key {key:?}: its prefix {prefix:?} {problem}; the prefix before '/' \
                 must be a DNS subdomain such as app.kubernetes.io"
            ),
        ));
    }
    if !label_name_ok(name) {
        return Err(Invalid::new(
            field,
            format!(
                "label key {key:?}: the name {name:?} must be 1 to 63 letters, digits, '-', '_' \
                 or '.', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or a label name.
pub(crate) fn label_value(field: &str, value: &str) -> Check {
    if !value.is_empty() && !label_name_ok(value) {
        return Err(Invalid::new(
            field,
            format!(
                "label value {value:?} must be empty or up to 63 letters, digits, '-', '_' or \
                 '.', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Checks a label selector's keys, values and operators.
pub(crate) fn selector(field: &str, s: &LabelSelector) -> Check {
    for (key, value) in &s.match_labels {
        label_key(&format!("{field}.matchLabels"), key)?;
        label_value(&format!("{field}.matchLabels.{key}"), value)?;
    }
    for (i, req) in s.match_expressions.iter().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        label_key(&format!("{at}.key"), &req.key)?;
        match req.operator {
            Operator::In | Operator::NotIn if req.values.is_empty() => {
                return Err(Invalid::new(
                    format!("{at}.values"),
                    format!("{:?} needs at least one value", req.operator),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !req.values.is_empty() => {
                return Err(Invalid::new(
                    format!("{at}.values"),
                    format!(
                        "{:?} takes no values; remove them, or use In/NotIn",
                        req.operator
                    ),
                ));
            }
            _ => {}
        }
        for (j, value) in req.values.iter().enumerate() {
            label_value(&format!("{at}.values[{j}]"), value)?;
        }
    }
    Ok(())
}

fn peers(field: &str, peers: &[Peer]) -> Check {
    for (i, peer) in peers.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let selects = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
        match (&peer.ip_block, selects) {
            (None, false) => {
                return Err(Invalid::new(
                    at,
                    "an empty peer; give podSelector and/or namespaceSelector, or ipBlock \
                     (to allow every address, leave the whole list out)",
                ));
            }
            (Some(_), true) => {
                return Err(Invalid::new(
                    at,
                    "ipBlock cannot be combined with podSelector or namespaceSelector; \
                     make them separate peers",
                ));
            }
            (Some(block), false) => ip_block(&format!("{at}.ipBlock"), block)?,
            (None, true) => {
                if let Some(s) = &peer.pod_selector {
                    selector(&format!("{at}.podSelector"), s)?;
                }
                if let Some(s) = &peer.namespace_selector {
                    selector(&format!("{at}.namespaceSelector"), s)?;
                }
            }
        }
    }
    Ok(())
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn ip_block(field: &str, block: &IpBlock) -> Check {
    let cidr = block.cidr.network();
    for (i, except) in block.except.iter().enumerate() {
        let at = format!("{field}.except[{i}]");
        let net = except.network();
        if net.addr().is_ipv4() != cidr.addr().is_ipv4() {
            return Err(Invalid::new(
                at,
                format!(
                    "{except} is {} but cidr {} is {}; an except must be of the cidr's family",
                    family(net.addr()),
                    block.cidr,
                    family(cidr.addr())
                ),
            ));
        }
        if !cidr.contains(&net) || net.prefix_len() <= cidr.prefix_len() {
            return Err(Invalid::new(
                at,
                format!(
                    "{except} is not a strict subset of cidr {}; an except must lie inside \
                     the cidr and be smaller",
                    block.cidr
                ),
            ));
        }
    }
    Ok(())
}

fn ports(field: &str, ports: &[Port]) -> Check {
    for (i, port) in ports.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match &port.port {
            Some(PortValue::Number(n)) if !(1..=65535).contains(n) => {
                return Err(Invalid::new(
                    format!("{at}.port"),
                    format!("{n} is outside 1..=65535"),
                ));
            }
            Some(PortValue::Name(name)) => service_name(&format!("{at}.port"), name)?,
            Some(PortValue::Number(_)) | None => {}
        }
        if let Some(end) = port.end_port {
            match &port.port {
                Some(PortValue::Number(first)) => {
                    if end > 65535 {
                        return Err(Invalid::new(
                            format!("{at}.endPort"),
                            format!("{end} is outside 1..=65535"),
                        ));
                    }
                    if end < *first {
                        return Err(Invalid::new(
                            format!("{at}.endPort"),
                            format!(
                                "{end} is less than port {first}; endPort is the last port of \
                                 the range and must be at least port"
                            ),
                        ));
                    }
                }
                Some(PortValue::Name(_)) => {
                    return Err(Invalid::new(
                        format!("{at}.endPort"),
                        "endPort needs a numeric port, not a named one",
                    ));
                }
                None => {
                    return Err(Invalid::new(
                        format!("{at}.endPort"),
                        "endPort needs port, the first port of the range",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks an IANA service name (RFC 6335 §5.1), the syntax of a named port.
fn service_name(field: &str, name: &str) -> Check {
    let ok = !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !ok {
        return Err(Invalid::new(
            field,
            format!(
                "{name:?} is neither a port number nor a port name (1 to 15 lowercase letters, \
                 digits and single '-', with at least one letter); write the number unquoted"
            ),
        ));
    }
    Ok(())
}

/// What is accepted but probably not meant, each naming the field.
pub fn warnings(policy: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    let mut rules = |dir: &str, list: &str, peers_of: Vec<(&[Peer], &[Port])>| {
        for (i, (peers, ports)) in peers_of.into_iter().enumerate() {
            for (j, port) in ports.iter().enumerate() {
                if let Some(PortValue::Name(name)) = &port.port {
                    out.push(format!(
                        "spec.{dir}[{i}].ports[{j}].port: named port {name:?} matches no traffic: \
                         tweed cannot see container ports, so this entry allows nothing; \
                         use the port number"
                    ));
                }
            }
            for (j, peer) in peers.iter().enumerate() {
                if let Some(block) = &peer.ip_block {
                    let at = format!("spec.{dir}[{i}].{list}[{j}].ipBlock");
                    host_bits(&mut out, &format!("{at}.cidr"), &block.cidr);
                    for (k, except) in block.except.iter().enumerate() {
                        host_bits(&mut out, &format!("{at}.except[{k}]"), except);
                    }
                }
            }
        }
    };
    for (dir, list, direction) in [
        ("ingress", "from", Direction::Ingress),
        ("egress", "to", Direction::Egress),
    ] {
        let refs = policy.rules(direction);
        rules(dir, list, refs.iter().map(|r| (r.peers, r.ports)).collect());
    }
    if let Policy::Kubernetes(p) = policy {
        let types = &p.spec.policy_types;
        if !types.is_empty() {
            for (dir, kind, len) in [
                ("ingress", PolicyType::Ingress, p.spec.ingress.len()),
                ("egress", PolicyType::Egress, p.spec.egress.len()),
            ] {
                if len > 0 && !types.contains(&kind) {
                    out.push(format!(
                        "spec.{dir}: {len} rule(s) are ignored because spec.policyTypes \
                         does not list {kind:?}"
                    ));
                }
            }
        }
    }
    out
}

fn host_bits(out: &mut Vec<String>, field: &str, cidr: &Cidr) {
    if cidr.network() != cidr.0 {
        out.push(format!(
            "{field}: {cidr} has host bits set; it is read as {}",
            cidr.network()
        ));
    }
}

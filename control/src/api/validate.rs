//! Checks a request can pass without looking at any state: names, ids,
//! interface names, paths, prefixes, MTUs, MACs. Pure.
//!
//! Every error is [`ErrorKind::Invalid`](super::proto::ErrorKind::Invalid)
//! with a message that names the field (`pod_add.mtu`, `gc.valid[2].ifname`)
//! and says what to fix. The checks the dataplane makes of the same values
//! are reused from `tweed_dataplane::api::validate`, so a request this
//! daemon accepts is not refused by the dataplane for a stateless reason.
//! Checks that need state (duplicates, existence) belong to the handler.

use std::collections::HashSet;
use std::net::IpAddr;

use tweed_dataplane::api::validate as dp;

use super::node::PeerAdd;
use super::pod::{PodAdd, PodKey};
use super::proto::{ApiError, Request};

/// The longest container id (runtimes use 64 hex digits; this leaves room).
pub const MAX_CONTAINER_ID: usize = 256;
/// The smallest pod MTU (RFC 791's minimum datagram).
pub const MIN_MTU: u16 = 576;

fn invalid(field: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("{field}: {what}"))
}

/// Checks every field of `request` that can be checked without state.
pub fn request(request: &Request) -> Result<(), ApiError> {
    match request {
        Request::PodAdd(args) => pod_add(args),
        Request::PodDel(args) => {
            container_id("pod_del.container_id", &args.container_id)?;
            match &args.ifname {
                Some(ifname) => dp::ifname("pod_del.ifname", ifname),
                None => Ok(()),
            }
        }
        Request::PodGet(key) => pod_key("pod_get", key),
        Request::Gc(args) => args
            .valid
            .iter()
            .enumerate()
            .try_for_each(|(i, key)| pod_key(&format!("gc.valid[{i}]"), key)),
        Request::PeerAdd(args) => peer_add(args),
        Request::PeerRemove(args) => name("peer_remove.name", &args.name),
        Request::Trace(args) => dp::trace(args)
            .map(|_| ())
            .map_err(|e| ApiError::invalid(e.message)),
        Request::PolicyApply(args) => {
            if args.text.trim().is_empty() {
                return Err(invalid(
                    "policy_apply.text",
                    "is empty; give the policy documents",
                ));
            }
            Ok(())
        }
        Request::PolicyDelete(key) => {
            name("policy_delete.name", &key.name)?;
            match (&key.namespace, key.kind) {
                (Some(_), crate::policy::PolicyKind::GlobalPolicy) => Err(invalid(
                    "policy_delete.namespace",
                    "a globalpolicy has no namespace; leave it out",
                )),
                (None, kind) if kind != crate::policy::PolicyKind::GlobalPolicy => Err(invalid(
                    "policy_delete.namespace",
                    format!("a {} lives in a namespace; give it", kind.name()),
                )),
                (Some(ns), _) => name("policy_delete.namespace", ns),
                (None, _) => Ok(()),
            }
        }
        Request::PolicyExplain(args) => {
            pod_ref("policy_explain.from", &args.from)?;
            if args.to.parse::<IpAddr>().is_err() {
                pod_ref("policy_explain.to", &args.to)?;
            }
            Ok(())
        }
        Request::LabelPod(args) => {
            pod_name_part("label_pod.namespace", &args.namespace)?;
            pod_name_part("label_pod.name", &args.name)?;
            crate::policy::check_labels("label_pod", &args.labels, &args.remove)
                .map_err(ApiError::invalid)
        }
        Request::ServiceApply(args) => {
            if args.text.trim().is_empty() {
                return Err(invalid(
                    "service_apply.text",
                    "is empty; give the Service and EndpointSlice documents",
                ));
            }
            Ok(())
        }
        Request::ServiceDelete(args) => {
            crate::policy::check_namespace("service_delete.namespace", &args.namespace)
                .map_err(ApiError::invalid)?;
            name("service_delete.name", &args.name)
        }
        Request::LabelNamespace(args) => {
            crate::policy::check_namespace("label_namespace.namespace", &args.namespace)
                .map_err(ApiError::invalid)?;
            crate::policy::check_labels("label_namespace", &args.labels, &args.remove)
                .map_err(ApiError::invalid)
        }
        Request::Status(_)
        | Request::ServiceList(_)
        | Request::PolicyList(_)
        | Request::PodList(_)
        | Request::NodeList(_)
        | Request::RouteList(_)
        | Request::PeerList(_)
        | Request::Stats(_) => Ok(()),
    }
}

/// A name: non-empty, at most 253 characters, no whitespace or control characters.
pub fn name(field: &str, value: &str) -> Result<(), ApiError> {
    dp::name(field, value)
}

/// A container id: 1 to [`MAX_CONTAINER_ID`] characters of `[A-Za-z0-9_.-]`.
pub fn container_id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_CONTAINER_ID {
        return Err(invalid(
            field,
            format!("is longer than {MAX_CONTAINER_ID} characters"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(
            field,
            format!("{value:?} contains {c:?}; use only letters, digits, '_', '.' and '-'"),
        ));
    }
    Ok(())
}

/// A pod's namespace or name: a [`name`] without `/` (it becomes half of the
/// dataplane's `NAMESPACE/NAME` port name).
fn pod_name_part(field: &str, value: &str) -> Result<(), ApiError> {
    name(field, value)?;
    if value.contains('/') {
        return Err(invalid(field, format!("{value:?} must not contain '/'")));
    }
    Ok(())
}

/// A pod named `NAMESPACE/NAME`.
fn pod_ref(field: &str, value: &str) -> Result<(), ApiError> {
    let Some((ns, pod)) = value.split_once('/') else {
        return Err(invalid(
            field,
            format!("{value:?} is neither NAMESPACE/POD nor an IP address"),
        ));
    };
    pod_name_part(field, ns)?;
    pod_name_part(field, pod)
}

/// A pod attachment's key, under `op`.
fn pod_key(op: &str, key: &PodKey) -> Result<(), ApiError> {
    container_id(&format!("{op}.container_id"), &key.container_id)?;
    dp::ifname(&format!("{op}.ifname"), &key.ifname)
}

/// Checks `pod_add`.
pub fn pod_add(args: &PodAdd) -> Result<(), ApiError> {
    container_id("pod_add.container_id", &args.container_id)?;
    dp::netns("pod_add.netns", &args.netns)?;
    dp::ifname("pod_add.ifname", &args.ifname)?;
    if let Some(namespace) = &args.namespace {
        pod_name_part("pod_add.namespace", namespace)?;
    }
    if let Some(name) = &args.name {
        pod_name_part("pod_add.name", name)?;
    }
    // The same rules as `tweed label pod`: a pod cannot be given labels at
    // ADD that it could never be given, or removed, later.
    crate::policy::check_labels("pod_add", &args.labels, &[]).map_err(ApiError::invalid)?;
    if let Some(mtu) = args.mtu
        && mtu < MIN_MTU
    {
        return Err(invalid(
            "pod_add.mtu",
            format!("{mtu} is outside {MIN_MTU}..=65535"),
        ));
    }
    if let Some(mac) = args.mac {
        dp::mac("pod_add.mac", mac.0)?;
    }
    if args.ips.len() > 2 {
        return Err(invalid(
            "pod_add.ips",
            format!(
                "{} addresses asked for: an interface gets one per family",
                args.ips.len()
            ),
        ));
    }
    if let Some(fd) = args.netns_fd
        && fd < 0
    {
        return Err(invalid(
            "pod_add.netns_fd",
            format!("{fd} is not a descriptor"),
        ));
    }
    Ok(())
}

/// Checks `peer_add`: a name, at least one subnet without host bits and
/// without duplicates, a unicast underlay address and a unicast VTEP MAC.
pub fn peer_add(args: &PeerAdd) -> Result<(), ApiError> {
    name("peer_add.name", &args.name)?;
    if args.subnets.is_empty() {
        return Err(invalid("peer_add.subnets", "give at least one pod subnet"));
    }
    let mut seen = HashSet::new();
    for (i, subnet) in args.subnets.iter().enumerate() {
        let field = format!("peer_add.subnets[{i}]");
        dp::prefix(&field, subnet)?;
        if !seen.insert(*subnet) {
            return Err(invalid(&field, format!("{subnet} is listed twice")));
        }
    }
    let not_unicast = match args.underlay_ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if not_unicast {
        return Err(invalid(
            "peer_add.underlay_ip",
            format!("{} is not a unicast address", args.underlay_ip),
        ));
    }
    dp::mac("peer_add.vtep_mac", args.vtep_mac.0)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

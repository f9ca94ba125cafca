//! Test helpers: small worlds built from YAML manifests, and verdicts asked of explain.

use std::net::IpAddr;

use super::explain::{Decision, Explanation, Target, explain};
use super::model::{Labels, PodIdentity, PolicyKey, PolicyKind, World};
use super::parse::parse_documents;

/// A pod with an IPv4 (and, if given, IPv6) address.
pub fn pod(ns: &str, name: &str, labels: &[(&str, &str)], ip: &str) -> PodIdentity {
    let mut pod = PodIdentity {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ipv4: None,
        ipv6: None,
    };
    for ip in ip.split(',').filter(|s| !s.is_empty()) {
        match ip.parse::<IpAddr>().expect("fixture address") {
            IpAddr::V4(v4) => pod.ipv4 = Some(v4),
            IpAddr::V6(v6) => pod.ipv6 = Some(v6),
        }
    }
    pod
}

/// Namespace labels.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The usual cast: two namespaces, prod (team=a) and dev (team=b), three pods each.
pub fn cast() -> Vec<PodIdentity> {
    vec![
        pod("prod", "web", &[("app", "web")], "10.0.1.1"),
        pod("prod", "db", &[("app", "db")], "10.0.1.2"),
        pod(
            "prod",
            "cache",
            &[("app", "cache"), ("tier", "be")],
            "10.0.1.3",
        ),
        pod("dev", "web", &[("app", "web")], "10.0.2.1"),
        pod("dev", "db", &[("app", "db")], "10.0.2.2"),
        pod(
            "dev",
            "tool",
            &[("app", "tool"), ("tier", "be")],
            "10.0.2.3",
        ),
    ]
}

/// A world of `pods` and the policies in `yaml`; prod has `team: a`, dev `team: b`.
pub fn world(pods: Vec<PodIdentity>, yaml: &str) -> World {
    World {
        pods,
        namespaces: [
            ("prod".to_owned(), labels(&[("team", "a")])),
            ("dev".to_owned(), labels(&[("team", "b")])),
        ]
        .into_iter()
        .collect(),
        policies: parse_documents(yaml).expect("fixture policies parse"),
        node_addrs: Vec::new(),
    }
}

/// The index of pod `NS/NAME`.
pub fn index(world: &World, full: &str) -> usize {
    world
        .pods
        .iter()
        .position(|p| p.full_name() == full)
        .expect("fixture pod exists")
}

/// Explains `from` (`NS/NAME`) to `to` (`NS/NAME` or an address) over TCP `port`.
pub fn why(world: &World, from: &str, to: &str, port: u16) -> Explanation {
    why_proto(world, from, to, 6, port)
}

/// Like [`why`] with a protocol number.
pub fn why_proto(world: &World, from: &str, to: &str, protocol: u8, port: u16) -> Explanation {
    let target = match to.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Pod(index(world, to)),
    };
    explain(world, index(world, from), target, protocol, port)
}

/// Whether TCP `port` from `from` to `to` is allowed.
pub fn allowed(world: &World, from: &str, to: &str, port: u16) -> bool {
    why(world, from, to, port).allowed
}

/// A NetworkPolicy isolating every pod of `prod` for ingress.
pub const DENY_INGRESS_PROD: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: prod}
spec:
  podSelector: {}
  policyTypes: [Ingress]
";

/// A policy key.
pub fn key(kind: PolicyKind, ns: Option<&str>, name: &str) -> PolicyKey {
    PolicyKey {
        kind,
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    }
}

/// The key of NetworkPolicy `ns/name`.
pub fn np(ns: &str, name: &str) -> PolicyKey {
    key(PolicyKind::NetworkPolicy, Some(ns), name)
}

/// The origin of the step that decided, as `KEY DIR[i]`.
pub fn decided_by(e: &Explanation, step: usize) -> String {
    match &e.steps[step].decision {
        Decision::Rule(origin) => origin.to_string(),
        other => format!("{other:?}"),
    }
}

//! Text given to `tweed policy apply` (the `policy_apply` request): YAML or
//! JSON, one or many NetworkPolicy, Policy and GlobalPolicy documents. Each
//! input is parsed; what is accepted is taken on as the daemon does.
//!
//! Beyond "nothing panics":
//! - every accepted policy serializes to JSON (the store's form) and reads
//!   back as the same policy (what the enforcer and a restarted daemon see);
//! - compiled for a small cluster (six pods in two namespaces, IPv4 and
//!   IPv6), every endpoint's rule sets pass the dataplane's checks and
//!   compile (the dataplane refuses a `policy_set_many` otherwise), and the
//!   classifier agrees with the reference walk;
//! - `explain` answers for a few pairs of pods and an address.

#![no_main]

use std::collections::BTreeMap;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use tweed_control::policy::{
    Compiler, Labels, PodIdentity, Policy, Target, World, parse_documents,
};
use tweed_dataplane::api::validate as dp;

fn pod(ns: &str, name: &str, labels: &[(&str, &str)], n: u8) -> PodIdentity {
    PodIdentity {
        namespace: ns.into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ipv4: Some([10, 244, 1, n].into()),
        ipv6: n
            .is_multiple_of(2)
            .then(|| [0xfd00, 0, 0, 0, 0, 0, 0, u16::from(n)].into()),
    }
}

fn world(policies: Vec<Policy>) -> World {
    let team = |t: &str| -> Labels { BTreeMap::from([("team".to_owned(), t.to_owned())]) };
    World {
        pods: vec![
            pod("prod", "web", &[("app", "web")], 2),
            pod("prod", "db", &[("app", "db"), ("tier", "be")], 3),
            pod("prod", "cache", &[("app", "cache"), ("tier", "be")], 4),
            pod("dev", "web", &[("app", "web")], 5),
            pod("dev", "tool", &[("app", "tool")], 6),
            pod("default", "x", &[], 7),
        ],
        namespaces: BTreeMap::from([
            ("prod".to_owned(), team("a")),
            ("dev".to_owned(), team("b")),
        ]),
        policies,
        node_addrs: vec![IpAddr::from([10, 244, 1, 1])],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policies) = parse_documents(text) else {
        return;
    };
    for policy in &policies {
        let _ = tweed_control::policy::validate::warnings(policy);
        let stored = serde_json::to_vec(policy).expect("a policy always serializes");
        let back: Policy = match serde_json::from_slice(&stored) {
            Ok(back) => back,
            Err(e) => panic!(
                "{policy:?} was accepted but its stored form does not read back: {e}\n{}",
                String::from_utf8_lossy(&stored)
            ),
        };
        assert_eq!(&back, policy, "the stored form reads back the same");
    }
    let world = world(policies);
    let compiler = Compiler::new(&world);
    for i in 0..world.pods.len() {
        let endpoint = compiler.endpoint(i);
        for (field, spec) in [("ingress", &endpoint.ingress), ("egress", &endpoint.egress)] {
            let set = match dp::rule_set(field, spec) {
                Ok(set) => set,
                Err(e) => {
                    panic!("pod {i}: the compiled {field} set is refused by the dataplane: {e}")
                }
            };
            if let Err(e) = tweed_fuzz::check_classifier(&set) {
                panic!("pod {i}: the compiled {field} set does not compile: {e}");
            }
        }
    }
    for (from, to) in [(0, 1), (3, 2), (5, 0)] {
        let _ = compiler.explain(from, Target::Pod(to), 6, 80);
    }
    let _ = compiler.explain(1, Target::Ip(IpAddr::from([192, 0, 2, 1])), 17, 53);
});

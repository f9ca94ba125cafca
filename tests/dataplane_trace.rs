//! `trace` tells the truth: with an ingress policy on pod B that allows TCP
//! 80 and denies TCP 22, a traced packet to 22 is denied at the ingress stage
//! and one to 80 is delivered — without creating a flow (a dry run) — and
//! real connections agree: 80 connects, 22 does not, and the denial is counted.

use std::net::IpAddr;
use std::time::Duration;

use tweed_api::dataplane::proto::{
    PolicySet, PortRangeSpec, Protocol, RuleActionSpec, RuleSetSpec, RuleSpec, TraceFrom,
    TraceRequest, VerdictSpec,
};
use tweed_api::dataplane::trace::{TraceReply, TraceStage};
use tweed_suite::node::Node;
use tweed_suite::pod::Pod;
use tweed_suite::poll;
use tweed_suite::privileged::require_root;
use tweed_suite::traffic::{Listener, tcp_connect, wait_ping};

fn tcp_rule(id: u32, action: RuleActionSpec, port: u16) -> RuleSpec {
    RuleSpec {
        id,
        tier: 0,
        action,
        remote: vec![],
        remote_except: vec![],
        protocol: Some(6),
        ports: Some(PortRangeSpec {
            first: port,
            last: port,
        }),
        name: None,
    }
}

fn ingress_stage(reply: &TraceReply) -> (VerdictSpec, Option<u32>) {
    reply
        .stages
        .iter()
        .find_map(|s| match s {
            TraceStage::IngressPolicy { verdict, rule, .. } => Some((*verdict, *rule)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the trace has an ingress_policy stage: {reply:?}"))
}

fn action(reply: &TraceReply) -> String {
    match reply.stages.last() {
        Some(TraceStage::Action { action }) => action.clone(),
        _ => panic!("the trace ends with its action: {reply:?}"),
    }
}

#[test]
fn trace_and_real_traffic_agree_on_an_ingress_policy() {
    if !require_root() {
        return;
    }
    let prefix = "trc";
    let node = Node::standalone(prefix, "192.168.208.1", &[]);
    let a = Pod::attach(
        &node,
        prefix,
        "a",
        Some("10.244.8.2".parse().unwrap()),
        None,
    );
    let b = Pod::attach(
        &node,
        prefix,
        "b",
        Some("10.244.8.3".parse().unwrap()),
        None,
    );
    let b4 = IpAddr::V4(b.ipv4());
    assert!(
        wait_ping(&a.netns, b4, Duration::from_secs(10)),
        "a → b before the policy"
    );

    node.api
        .policy_set(PolicySet {
            name: b.name.clone(),
            ingress: RuleSetSpec {
                default: VerdictSpec::Deny,
                rules: vec![
                    tcp_rule(1, RuleActionSpec::Allow, 80),
                    tcp_rule(2, RuleActionSpec::Deny, 22),
                ],
            },
            egress: RuleSetSpec::default(),
        })
        .unwrap();

    let trace = |dst_port: u16| {
        node.api
            .trace(TraceRequest {
                from: TraceFrom::Port(a.name.clone()),
                src: IpAddr::V4(a.ipv4()),
                dst: b4,
                protocol: Protocol::Name("tcp".into()),
                src_port: 40000,
                dst_port,
            })
            .unwrap_or_else(|e| panic!("trace to port {dst_port}: {e:?}"))
    };
    let to_22 = trace(22);
    assert_eq!(
        ingress_stage(&to_22),
        (VerdictSpec::Deny, Some(2)),
        "22 is denied by rule 2: {to_22:?}"
    );
    assert_eq!(action(&to_22), "drop policy_ingress", "{to_22:?}");
    let to_80 = trace(80);
    assert_eq!(
        ingress_stage(&to_80),
        (VerdictSpec::Allow, Some(1)),
        "80 is allowed by rule 1: {to_80:?}"
    );
    assert_eq!(
        action(&to_80),
        format!("deliver port {}", b.name),
        "{to_80:?}"
    );
    let flows = node.api.dump().flows;
    assert!(
        !flows.iter().any(|f| f.src_port == 40000),
        "trace is a dry run and creates no flow: {flows:?}"
    );

    let _http = Listener::start(&b.netns, b4, 80);
    let _ssh = Listener::start(&b.netns, b4, 22);
    let denied_before = node.api.drops("policy_ingress");
    assert!(
        tcp_connect(&a.netns, b4, 80, Duration::from_secs(5)),
        "a connects to b:80"
    );
    assert!(
        !tcp_connect(&a.netns, b4, 22, Duration::from_secs(3)),
        "a cannot connect to b:22"
    );
    assert!(
        poll::wait(Duration::from_secs(5), || node.api.drops("policy_ingress")
            > denied_before),
        "the denied SYNs are counted as policy_ingress"
    );
    let flows = node.api.dump().flows;
    assert!(
        flows.iter().any(|f| f.dst_port == 80),
        "the allowed connection is tracked: {flows:?}"
    );
    assert!(
        !flows
            .iter()
            .any(|f| f.dst_port == 22 && f.state == "established"),
        "{flows:?}"
    );
    // The policy is stateful: b's replies to a pass although b's ingress
    // default is deny, and b can still open connections itself.
    let _a_http = Listener::start(&a.netns, IpAddr::V4(a.ipv4()), 8080);
    assert!(
        tcp_connect(&b.netns, IpAddr::V4(a.ipv4()), 8080, Duration::from_secs(5)),
        "b connects out to a:8080"
    );
}

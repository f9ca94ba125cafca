//! Policy, connection tracking and trace, through the whole decision.

use super::*;
use crate::pipeline::DropReason;
use crate::pipeline::counters::DeniedBy;
use crate::pipeline::trace::{Recorder, Stage};
use crate::table::acl::{PortRange, Rule, RuleAction, RuleId, Verdict};
use crate::table::conntrack::Direction;

/// Allows TCP to `port` from `remote`, denies the rest.
fn allow_tcp_from(id: u32, remote: &str, port: u16) -> RuleSet {
    RuleSet {
        rules: vec![Rule {
            remote: vec![net(remote)],
            protocol: Some(6),
            ports: Some(PortRange::single(port)),
            ..Rule::any(id, 1, RuleAction::Allow)
        }],
        default: Verdict::Deny,
    }
}

#[test]
fn egress_policy_denies_and_counts_the_default() {
    let mut fx = Fixture::new();
    fx.set_policy(PORT_A, &allow_all(), &deny_all());
    let (action, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::PolicyEgress));
    assert_eq!(
        counters
            .denied_by_rule
            .get(&DeniedBy::unnamed(PORT_A, false, None)),
        Some(&1)
    );
    assert_eq!(fx.conntrack.len(), 0, "a denied packet creates no flow");
}

#[test]
fn ingress_policy_allows_by_rule_and_denies_the_rest() {
    let mut fx = Fixture::new();
    fx.set_policy(
        PORT_B,
        &allow_tcp_from(7, "10.244.1.2/32", 80),
        &allow_all(),
    );
    let (allowed, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")),
    );
    assert_eq!(allowed, Action::Deliver(PORT_B));
    let (denied, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, POD_B, 22, b"")),
    );
    assert_eq!(denied, Action::Drop(DropReason::PolicyIngress));
    assert_eq!(counters.drops_of(DropReason::PolicyIngress), 1);
}

#[test]
fn a_deny_rule_is_counted_by_its_id() {
    let mut fx = Fixture::new();
    let set = RuleSet {
        rules: vec![Rule {
            protocol: Some(17),
            ..Rule::any(42, 0, RuleAction::Deny)
        }],
        default: Verdict::Allow,
    };
    fx.set_policy(PORT_A, &allow_all(), &set);
    let (action, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, OUTSIDE, 64, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::PolicyEgress));
    assert_eq!(
        counters
            .denied_by_rule
            .get(&DeniedBy::unnamed(PORT_A, false, Some(RuleId(42)))),
        Some(&1)
    );
}

#[test]
fn replies_of_an_allowed_flow_pass_a_deny_all_policy() {
    let mut fx = Fixture::new();
    // A may send anywhere but accepts nothing new.
    fx.set_policy(PORT_A, &deny_all(), &allow_all());
    let (out, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, POD_B, 64, b"query")),
    );
    assert_eq!(out, Action::Deliver(PORT_B));
    let (reply, _, counters) = fx.run(Ingress::Port(PORT_B), &tap(udp_reply(MAC_B, POD_B, POD_A)));
    assert_eq!(
        reply,
        Action::Deliver(PORT_A),
        "the reply is part of A's flow"
    );
    assert_eq!(counters.conntrack_hits, 1);
    // A new flow towards A is still refused.
    let (fresh, _, _) = fx.run(
        Ingress::Port(PORT_B),
        &tap(tcp4(MAC_B, POD_B, POD_A, 80, b"")),
    );
    assert_eq!(fresh, Action::Drop(DropReason::PolicyIngress));
}

#[test]
fn replies_from_a_remote_pod_pass_after_decapsulation() {
    let mut fx = Fixture::new();
    fx.set_policy(PORT_A, &deny_all(), &allow_all());
    let (out, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, REMOTE_VX, 64, b"q")),
    );
    assert!(matches!(out, Action::Encap(_)));
    let mut reply = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    PacketBuilder::ethernet2(PEER2_VTEP, VTEP_MAC)
        .ipv4(REMOTE_VX.octets(), POD_A.octets(), 63)
        .udp(53, 5353)
        .write(&mut reply, b"a")
        .unwrap();
    let (back, _, _) = fx.run(from_underlay(Backend::Vxlan, NODE2), &reply);
    assert_eq!(back, Action::Deliver(PORT_A));
}

#[test]
fn a_log_rule_records_the_flow_and_lets_the_next_rule_decide() {
    let mut fx = Fixture::new();
    let set = RuleSet {
        rules: vec![
            Rule::any(5, 0, RuleAction::Log),
            Rule::any(6, 0, RuleAction::Deny),
        ],
        default: Verdict::Allow,
    };
    fx.set_policy(PORT_B, &set, &allow_all());
    let (action, _, counters) = fx.run(
        Ingress::Port(PORT_A),
        &tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")),
    );
    assert_eq!(action, Action::Drop(DropReason::PolicyIngress));
    assert_eq!(counters.flow_logs.len(), 1);
    let log = &counters.flow_logs[0];
    assert_eq!(log.rule, RuleId(5));
    assert!(log.ingress);
    assert!(!log.allowed);
    assert_eq!(log.endpoint, "default/pod-1");
    assert_eq!(log.flow.dst_port, 80);
}

#[test]
fn trace_reports_every_stage_and_changes_no_state() {
    let mut fx = Fixture::new();
    fx.set_policy(
        PORT_B,
        &allow_tcp_from(9, "10.244.1.2/32", 443),
        &allow_all(),
    );
    let mut frame = Frame::from_bytes(&tap(tcp4(MAC_A, POD_A, POD_B, 80, b"")));
    let mut recorder = Recorder::default();
    let action = fx.pipeline().process_traced(
        Ingress::Port(PORT_A),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    assert_eq!(action, Action::Drop(DropReason::PolicyIngress));
    let stages = &recorder.stages;
    assert!(matches!(stages[0], Stage::Parsed(_)));
    assert_eq!(stages[1], Stage::SpoofCheck { passed: true });
    assert_eq!(stages[2], Stage::Conntrack(None));
    assert!(matches!(
        stages[3],
        Stage::EgressPolicy {
            verdict: Verdict::Allow,
            rule: None,
            ..
        }
    ));
    assert_eq!(
        stages[4],
        Stage::Route {
            prefix: Some(net("10.244.1.3/32")),
            next_hop: Some(NextHop::Local(PORT_B))
        }
    );
    assert!(matches!(
        stages[5],
        Stage::IngressPolicy {
            verdict: Verdict::Deny,
            rule: None,
            ..
        }
    ));
    assert_eq!(stages[6], Stage::Action(action));
    assert_eq!(stages.len(), 7);

    // An allowed trace creates no flow either.
    let mut frame = Frame::from_bytes(&tap(tcp4(MAC_A, POD_A, POD_B, 443, b"")));
    let mut recorder = Recorder::default();
    let action = fx.pipeline().process_traced(
        Ingress::Port(PORT_A),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    assert_eq!(action, Action::Deliver(PORT_B));
    assert!(recorder.stages.contains(&Stage::IngressPolicy {
        verdict: Verdict::Allow,
        rule: Some(RuleId(9)),
        logged: vec![]
    }));
    assert_eq!(fx.conntrack.len(), 0);
}

#[test]
fn trace_sees_an_existing_flow() {
    let fx = Fixture::new();
    let (first, _, _) = fx.run(
        Ingress::Port(PORT_A),
        &tap(udp4(MAC_A, POD_A, POD_B, 64, b"")),
    );
    assert_eq!(first, Action::Deliver(PORT_B));
    let mut frame = Frame::from_bytes(&tap(udp_reply(MAC_B, POD_B, POD_A)));
    let mut recorder = Recorder::default();
    fx.pipeline().process_traced(
        Ingress::Port(PORT_B),
        &mut frame,
        &mut Counters::default(),
        &mut recorder,
    );
    let hit = recorder.stages.iter().find_map(|s| match s {
        Stage::Conntrack(hit) => *hit,
        _ => None,
    });
    assert_eq!(hit.map(|h| h.direction), Some(Direction::Reply));
}

#[test]
fn an_icmp_error_about_a_tracked_flow_is_related_and_passes() {
    let mut fx = Fixture::new();
    fx.set_policy(PORT_A, &deny_all(), &allow_all());
    let query = udp4(MAC_A, POD_A, POD_B, 64, b"q");
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &tap(query.clone())).0,
        Action::Deliver(PORT_B)
    );
    // B answers with port unreachable, quoting A's packet.
    let mut error = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW_MAC)
        .ipv4(POD_B.octets(), POD_A.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut error, &query[14..])
        .unwrap();
    assert_eq!(
        fx.run(Ingress::Port(PORT_B), &tap(error)).0,
        Action::Deliver(PORT_A)
    );
}

#[test]
fn denials_stay_with_the_rule_that_denied_after_its_number_is_reused() {
    let mut fx = Fixture::new();
    let deny_7 = RuleSet {
        rules: vec![Rule {
            protocol: Some(17),
            ..Rule::any(7, 1, RuleAction::Deny)
        }],
        default: Verdict::Allow,
    };
    let named = |fx: &mut Fixture, name: &str| {
        let mut ep = fx.writer.endpoints().get(PORT_A).cloned().unwrap();
        ep.rule_names = std::sync::Arc::new(
            [((false, RuleId(7)), std::sync::Arc::<str>::from(name))]
                .into_iter()
                .collect(),
        );
        fx.writer.upsert_endpoint(ep).unwrap();
        fx.tables = fx.writer.publish();
    };
    fx.set_policy(PORT_A, &allow_all(), &deny_7);
    named(&mut fx, "policy a rule 0");
    let udp = tap(udp4(MAC_A, POD_A, OUTSIDE, 64, b""));
    let (_, _, before) = fx.run(Ingress::Port(PORT_A), &udp);
    // Another rule set gives number 7 to another rule of another policy.
    named(&mut fx, "policy b rule 3");
    let (_, _, after) = fx.run(Ingress::Port(PORT_A), &udp);
    let mut all = before.clone();
    all.merge(&after);
    let names: Vec<_> = all
        .denied_by_rule
        .keys()
        .map(|k| k.name.as_deref().unwrap_or("-").to_owned())
        .collect();
    assert_eq!(all.denied_by_rule.len(), 2, "{names:?}");
    for name in ["policy a rule 0", "policy b rule 3"] {
        let key = DeniedBy {
            name: Some(name.into()),
            ..DeniedBy::unnamed(PORT_A, false, Some(RuleId(7)))
        };
        assert_eq!(all.denied_by_rule.get(&key), Some(&1), "{name}");
    }
}

#[test]
fn a_new_connection_on_a_closed_flows_tuple_meets_policy_again() {
    let mut fx = Fixture::new();
    let syn = tap(tcp4(MAC_A, POD_A, POD_B, 80, b""));
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &syn).0,
        Action::Deliver(PORT_B)
    );
    // B resets the connection, then its policy starts denying A.
    let mut rst = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW_MAC)
        .ipv4(POD_B.octets(), POD_A.octets(), 64)
        .tcp(80, 40000, 1, 64000)
        .rst()
        .write(&mut rst, b"")
        .unwrap();
    assert_eq!(
        fx.run(Ingress::Port(PORT_B), &tap(rst)).0,
        Action::Deliver(PORT_A)
    );
    fx.set_policy(PORT_B, &deny_all(), &allow_all());
    assert_eq!(
        fx.run(Ingress::Port(PORT_A), &syn).0,
        Action::Drop(DropReason::PolicyIngress),
        "the same 5-tuple's new connection is a new flow"
    );
}

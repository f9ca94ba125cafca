//! Case-by-case semantics: each case checks the compiled classifier against
//! [`classify_linear`] and against the expected answer.

use std::net::IpAddr;

use super::*;

fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("test prefix")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn rule(id: u32, tier: u8, action: RuleAction) -> Rule {
    Rule::any(id, tier, action)
}

fn from(mut r: Rule, remote: &[&str]) -> Rule {
    r.remote = remote.iter().map(|s| net(s)).collect();
    r
}

fn except(mut r: Rule, nets: &[&str]) -> Rule {
    r.remote_except = nets.iter().map(|s| net(s)).collect();
    r
}

fn proto(mut r: Rule, protocol: u8, ports: Option<(u16, u16)>) -> Rule {
    r.protocol = Some(protocol);
    r.ports = ports.map(|(first, last)| PortRange { first, last });
    r
}

fn set(rules: Vec<Rule>, default: Verdict) -> RuleSet {
    RuleSet { rules, default }
}

/// Classifies with both implementations, checks they agree, returns the result.
fn check(set: &RuleSet, remote: &str, protocol: u8, port: u16) -> Outcome {
    let compiled = Classifier::compile(set).expect("compiles");
    let remote = ip(remote);
    let linear = classify_linear(set, remote, protocol, port);
    let fast = compiled.classify(remote, protocol, port);
    assert_eq!(fast, &linear, "{remote} {protocol} {port}");
    let index = match remote {
        IpAddr::V4(a) => compiled.classify_index_v4(u32::from(a), protocol, port),
        IpAddr::V6(a) => compiled.classify_index_v6(u128::from(a), protocol, port),
    };
    assert_eq!(&compiled.outcomes()[index as usize], fast);
    linear
}

/// (verdict, deciding rule, logged rules) of a packet.
fn decide(
    set: &RuleSet,
    remote: &str,
    protocol: u8,
    port: u16,
) -> (Verdict, Option<u32>, Vec<u32>) {
    let o = check(set, remote, protocol, port);
    (
        o.verdict,
        o.rule.map(|r| r.0),
        o.logged.iter().map(|r| r.0).collect(),
    )
}

use Verdict::{Allow, Deny};

#[test]
fn empty_set_gives_the_default() {
    for default in [Allow, Deny] {
        let s = set(vec![], default);
        assert_eq!(decide(&s, "10.0.0.1", 6, 80), (default, None, vec![]));
        assert_eq!(decide(&s, "2001:db8::1", 17, 53), (default, None, vec![]));
        assert_eq!(Classifier::compile(&s).unwrap().rule_count(), 0);
    }
    let allow = Classifier::allow_all();
    assert_eq!(allow.classify(ip("1.2.3.4"), 6, 1).verdict, Allow);
    assert_eq!(allow.classify_v6(1, 58, 0).verdict, Allow);
    let deny = Classifier::deny_all();
    assert_eq!(deny.classify_v4(0, 0, 0), &Outcome::default_verdict(Deny));
    assert_eq!(deny.outcomes().len(), 1);
}

#[test]
fn first_matching_rule_decides() {
    let s = set(
        vec![
            proto(rule(1, 0, RuleAction::Deny), PROTO_TCP, Some((22, 22))),
            proto(rule(2, 0, RuleAction::Allow), PROTO_TCP, None),
            rule(3, 0, RuleAction::Deny),
        ],
        Allow,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 22), (Deny, Some(1), vec![]));
    assert_eq!(decide(&s, "10.0.0.1", 6, 23), (Allow, Some(2), vec![]));
    assert_eq!(decide(&s, "10.0.0.1", 17, 22), (Deny, Some(3), vec![]));
}

#[test]
fn tiers_are_evaluated_ascending_whatever_the_order_given() {
    let s = set(
        vec![
            rule(10, 2, RuleAction::Allow),
            rule(20, 1, RuleAction::Deny),
            rule(21, 1, RuleAction::Allow),
        ],
        Allow,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 80), (Deny, Some(20), vec![]));
}

#[test]
fn pass_skips_the_rest_of_its_tier() {
    let s = set(
        vec![
            from(rule(1, 0, RuleAction::Pass), &["10.0.0.0/8"]),
            rule(2, 0, RuleAction::Deny),
            from(rule(3, 1, RuleAction::Allow), &["10.1.0.0/16"]),
            from(rule(4, 2, RuleAction::Log), &["10.2.0.0/16"]),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.1.2.3", 6, 80), (Allow, Some(3), vec![]));
    assert_eq!(decide(&s, "10.2.2.3", 6, 80), (Deny, None, vec![4]));
    assert_eq!(decide(&s, "11.0.0.1", 6, 80), (Deny, Some(2), vec![]));
    // A Pass in the last tier falls through to the default.
    let last = set(
        vec![rule(1, 5, RuleAction::Pass), rule(2, 5, RuleAction::Deny)],
        Allow,
    );
    assert_eq!(decide(&last, "10.0.0.1", 1, 0), (Allow, None, vec![]));
}

#[test]
fn log_records_and_continues() {
    let s = set(
        vec![
            rule(1, 0, RuleAction::Log),
            proto(rule(2, 0, RuleAction::Log), PROTO_UDP, None),
            rule(3, 0, RuleAction::Pass),
            rule(4, 0, RuleAction::Log), // skipped by the Pass
            proto(rule(5, 1, RuleAction::Log), PROTO_UDP, Some((53, 53))),
            proto(rule(6, 1, RuleAction::Allow), PROTO_UDP, None),
        ],
        Deny,
    );
    assert_eq!(
        decide(&s, "10.0.0.1", 17, 53),
        (Allow, Some(6), vec![1, 2, 5])
    );
    assert_eq!(decide(&s, "10.0.0.1", 17, 54), (Allow, Some(6), vec![1, 2]));
    assert_eq!(decide(&s, "10.0.0.1", 6, 53), (Deny, None, vec![1]));
}

#[test]
fn except_carves_holes_and_nested_prefixes_refill_them() {
    let s = set(
        vec![
            except(
                from(rule(1, 0, RuleAction::Allow), &["10.0.0.0/8"]),
                &["10.1.0.0/16"],
            ),
            from(rule(2, 0, RuleAction::Log), &["10.1.2.0/24"]),
            from(rule(3, 0, RuleAction::Allow), &["10.1.2.128/25"]),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 80), (Allow, Some(1), vec![]));
    assert_eq!(decide(&s, "10.1.0.1", 6, 80), (Deny, None, vec![]));
    assert_eq!(decide(&s, "10.1.2.1", 6, 80), (Deny, None, vec![2]));
    assert_eq!(decide(&s, "10.1.2.200", 6, 80), (Allow, Some(3), vec![2]));
    assert_eq!(
        decide(&s, "10.255.255.255", 6, 80),
        (Allow, Some(1), vec![])
    );
    assert_eq!(decide(&s, "11.0.0.0", 6, 80), (Deny, None, vec![]));
}

#[test]
fn empty_remote_with_except_means_everything_else() {
    let s = set(
        vec![except(
            rule(1, 0, RuleAction::Allow),
            &["192.168.0.0/16", "fd00::/8"],
        )],
        Deny,
    );
    assert_eq!(decide(&s, "8.8.8.8", 6, 443), (Allow, Some(1), vec![]));
    assert_eq!(decide(&s, "192.168.1.1", 6, 443), (Deny, None, vec![]));
    assert_eq!(decide(&s, "fd00::1", 6, 443), (Deny, None, vec![]));
    assert_eq!(decide(&s, "2001:db8::1", 6, 443), (Allow, Some(1), vec![]));
}

#[test]
fn a_prefix_both_in_remote_and_except_never_matches() {
    let s = set(
        vec![except(
            from(rule(1, 0, RuleAction::Allow), &["10.0.0.0/8"]),
            &["10.0.0.0/8"],
        )],
        Deny,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 80), (Deny, None, vec![]));
}

#[test]
fn protocol_any_and_protocol_only() {
    let s = set(
        vec![
            proto(rule(1, 0, RuleAction::Allow), PROTO_ICMP, None),
            proto(rule(2, 0, RuleAction::Deny), PROTO_TCP, None),
            rule(3, 0, RuleAction::Log),
            proto(rule(4, 0, RuleAction::Allow), 255, None),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.0.0.1", 1, 0), (Allow, Some(1), vec![]));
    assert_eq!(decide(&s, "10.0.0.1", 6, 0), (Deny, Some(2), vec![]));
    assert_eq!(decide(&s, "10.0.0.1", 47, 0), (Deny, None, vec![3]));
    assert_eq!(
        decide(&s, "10.0.0.1", 255, 65535),
        (Allow, Some(4), vec![3])
    );
    assert_eq!(decide(&s, "10.0.0.1", 0, 0), (Deny, None, vec![3]));
}

#[test]
fn port_range_edges() {
    let s = set(
        vec![
            proto(rule(1, 0, RuleAction::Allow), PROTO_TCP, Some((0, 0))),
            proto(
                rule(2, 0, RuleAction::Allow),
                PROTO_TCP,
                Some((65535, 65535)),
            ),
            proto(rule(3, 0, RuleAction::Allow), PROTO_UDP, Some((1000, 2000))),
            proto(rule(4, 0, RuleAction::Allow), PROTO_SCTP, Some((0, 65535))),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 0).1, Some(1));
    assert_eq!(decide(&s, "10.0.0.1", 6, 1).1, None);
    assert_eq!(decide(&s, "10.0.0.1", 6, 65534).1, None);
    assert_eq!(decide(&s, "10.0.0.1", 6, 65535).1, Some(2));
    assert_eq!(decide(&s, "10.0.0.1", 17, 999).1, None);
    assert_eq!(decide(&s, "10.0.0.1", 17, 1000).1, Some(3));
    assert_eq!(decide(&s, "10.0.0.1", 17, 2000).1, Some(3));
    assert_eq!(decide(&s, "10.0.0.1", 17, 2001).1, None);
    assert_eq!(decide(&s, "10.0.0.1", 132, 0).1, Some(4));
    assert_eq!(decide(&s, "10.0.0.1", 132, 65535).1, Some(4));
    // Same port, other protocol: no match.
    assert_eq!(decide(&s, "10.0.0.1", 7, 0).1, None);
    assert_eq!(decide(&s, "10.0.0.1", 18, 1500).1, None);
}

#[test]
fn address_families_do_not_cross() {
    let s = set(
        vec![
            from(rule(1, 0, RuleAction::Deny), &["::/0"]),
            from(
                rule(2, 0, RuleAction::Allow),
                &["10.0.0.0/8", "2001:db8::/32"],
            ),
            from(rule(3, 0, RuleAction::Log), &["0.0.0.0/0"]),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.0.0.1", 6, 80), (Allow, Some(2), vec![]));
    assert_eq!(decide(&s, "11.0.0.1", 6, 80), (Deny, None, vec![3]));
    assert_eq!(decide(&s, "2001:db8::1", 6, 80), (Deny, Some(1), vec![]));
    // IPv4-mapped IPv6 is IPv6.
    assert_eq!(
        decide(&s, "::ffff:10.0.0.1", 6, 80),
        (Deny, Some(1), vec![])
    );
    let v6_only = set(
        vec![from(rule(1, 0, RuleAction::Allow), &["2001:db8::/32"])],
        Deny,
    );
    assert_eq!(decide(&v6_only, "10.0.0.1", 6, 80), (Deny, None, vec![]));
    assert_eq!(
        decide(&v6_only, "2001:db8:1::1", 6, 80),
        (Allow, Some(1), vec![])
    );
}

#[test]
fn host_bits_in_prefixes_are_ignored_and_shared_prefixes_merge() {
    let s = set(
        vec![
            from(rule(1, 0, RuleAction::Log), &["10.1.2.3/16"]),
            from(
                rule(2, 0, RuleAction::Allow),
                &["10.1.0.0/16", "10.1.0.0/16"],
            ),
            from(rule(3, 0, RuleAction::Deny), &["10.1.0.7/32"]),
        ],
        Deny,
    );
    assert_eq!(decide(&s, "10.1.200.1", 6, 80), (Allow, Some(2), vec![1]));
    assert_eq!(decide(&s, "10.1.0.7", 6, 80), (Allow, Some(2), vec![1]));
    assert_eq!(decide(&s, "10.2.0.7", 6, 80), (Deny, None, vec![]));
}

#[test]
fn invalid_rules_are_refused_by_name() {
    let bad = |r: Rule| Classifier::compile(&set(vec![rule(1, 0, RuleAction::Allow), r], Deny));
    let icmp_ports = proto(rule(7, 0, RuleAction::Allow), PROTO_ICMP, Some((1, 2)));
    assert_eq!(
        bad(icmp_ports).unwrap_err(),
        CompileError::PortsWithoutPortProtocol {
            index: 1,
            id: RuleId(7),
            protocol: Some(1)
        }
    );
    let mut any_ports = rule(8, 0, RuleAction::Allow);
    any_ports.ports = Some(PortRange::single(80));
    let err = bad(any_ports).unwrap_err();
    assert!(err.to_string().contains("rule 8"), "{err}");
    let inverted = proto(rule(9, 0, RuleAction::Allow), PROTO_TCP, Some((90, 80)));
    assert_eq!(
        bad(inverted).unwrap_err(),
        CompileError::EmptyPortRange {
            index: 1,
            id: RuleId(9),
            first: 90,
            last: 80
        }
    );
}

#[test]
fn outcomes_are_shared_and_indexed() {
    let rules = (0..100u32)
        .map(|i| {
            let r = from(rule(i, 0, RuleAction::Allow), &[&format!("10.0.{i}.0/24")]);
            proto(r, PROTO_TCP, Some((80, 80)))
        })
        .collect();
    let s = set(rules, Deny);
    let c = Classifier::compile(&s).unwrap();
    assert_eq!(c.rule_count(), 100);
    // One Allow per rule plus the default.
    assert_eq!(c.outcomes().len(), 101);
    assert_eq!(c.classify_v4(0x0a00_0505, 6, 80).rule, Some(RuleId(5)));
    assert_eq!(c.classify_v4(0x0a00_0505, 6, 81).rule, None);
}

#[test]
fn classifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Classifier>();
}

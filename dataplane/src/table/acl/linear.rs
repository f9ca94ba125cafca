//! The reference semantics: a direct walk over the rules.
//!
//! Slow (a walk over every rule, after a sort if the rules are not already in
//! tier order) and obviously correct; the compiled
//! [`super::Classifier`] must agree with it on every packet.

use std::net::IpAddr;

use super::rule::{Outcome, Rule, RuleAction, RuleSet, Verdict};

/// Classifies one packet by walking `set` as the module documentation says.
pub fn classify_linear(set: &RuleSet, remote: IpAddr, protocol: u8, port: u16) -> Outcome {
    if set.rules.is_sorted_by_key(|rule| rule.tier) {
        return walk(set.rules.iter(), set.default, remote, protocol, port);
    }
    let mut order: Vec<&Rule> = set.rules.iter().collect();
    // Stable: tier by tier, ascending; within a tier in the order given.
    order.sort_by_key(|rule| rule.tier);
    walk(order.into_iter(), set.default, remote, protocol, port)
}

/// Walks `rules`, already in evaluation order.
fn walk<'a>(
    rules: impl Iterator<Item = &'a Rule>,
    default: Verdict,
    remote: IpAddr,
    protocol: u8,
    port: u16,
) -> Outcome {
    let mut logged = Vec::new();
    let mut passed_tier = None;
    for rule in rules {
        if passed_tier == Some(rule.tier) || !matches(rule, remote, protocol, port) {
            continue;
        }
        let verdict = match rule.action {
            RuleAction::Allow => Verdict::Allow,
            RuleAction::Deny => Verdict::Deny,
            RuleAction::Log => {
                logged.push(rule.id);
                continue;
            }
            RuleAction::Pass => {
                // Rules are in tier order, so skipping this tier's rules
                // continues with the first rule of the next higher tier.
                passed_tier = Some(rule.tier);
                continue;
            }
        };
        return Outcome {
            verdict,
            rule: Some(rule.id),
            logged: logged.into(),
        };
    }
    Outcome {
        verdict: default,
        rule: None,
        logged: logged.into(),
    }
}

/// Whether `rule`'s conditions all hold for the packet.
fn matches(rule: &Rule, remote: IpAddr, protocol: u8, port: u16) -> bool {
    let in_remote = rule.remote.is_empty() || rule.remote.iter().any(|net| net.contains(&remote));
    let in_except = rule.remote_except.iter().any(|net| net.contains(&remote));
    in_remote
        && !in_except
        && rule.protocol.is_none_or(|p| p == protocol)
        && rule.ports.is_none_or(|range| range.contains(port))
}

//! Compiling a [`RuleSet`] into the tables of a [`Classifier`].
//!
//! Steps, each bounded by [`MAX_COMPILE_WORK`]:
//! 1. validate the rules and put them in evaluation order (stable by tier);
//! 2. segment the protocol/port key space into port classes ([`super::ports`]);
//! 3. class every rule prefix of both families ([`super::address`]);
//! 4. per address class, walk the rules once per port class, then lay the
//!    results out as an interval map over the key space with adjacent equal
//!    outcomes merged; outcomes and interval maps are deduplicated;
//! 5. put into the LPMs each prefix whose interval map differs from the one
//!    its nearest ancestor (or the root) already yields.

use ahash::AHashMap;
use ipnet::IpNet;

use crate::table::lpm::{LpmWriter, MAX_VALUE};

use super::address::{AddressClasses, PrefixRef};
use super::bitset;
use super::classify::{Classifier, Tables};
use super::error::CompileError;
use super::ports::{self, PortClasses};
use super::rule::{Outcome, Rule, RuleAction, RuleId, RuleSet, Verdict, has_ports};

/// The bound on compile work, in 64-bit word operations (roughly a nanosecond
/// each): a rule set needing more is refused with [`CompileError::TooComplex`]
/// rather than taking seconds and gigabytes. The dominant terms are
/// (distinct prefixes) x (rules / 64) for the address classes and
/// (address classes) x (port classes x rules / 64 + key segments) for the
/// walks. The 10,000-rule Kubernetes-like set of `benches/acl.rs` compiles
/// in about 12 ms, far inside the bound.
pub const MAX_COMPILE_WORK: u64 = 1 << 30;

/// The rules in evaluation order with what a walk needs.
struct Ordered {
    action: Vec<RuleAction>,
    id: Vec<RuleId>,
    /// Position of the first rule of a higher tier: where a Pass continues.
    tier_end: Vec<usize>,
    default: Verdict,
}

impl Ordered {
    /// The outcome for a packet whose matching rules are `a & b`.
    fn walk(&self, a: &[u64], b: &[u64]) -> Outcome {
        let mut logged = Vec::new();
        let mut from = 0;
        while let Some(pos) = bitset::next_common(a, b, from) {
            let verdict = match self.action[pos] {
                RuleAction::Allow => Verdict::Allow,
                RuleAction::Deny => Verdict::Deny,
                RuleAction::Log => {
                    logged.push(self.id[pos]);
                    from = pos + 1;
                    continue;
                }
                RuleAction::Pass => {
                    from = self.tier_end[pos];
                    continue;
                }
            };
            return Outcome {
                verdict,
                rule: Some(self.id[pos]),
                logged: logged.into(),
            };
        }
        Outcome {
            verdict: self.default,
            rule: None,
            logged: logged.into(),
        }
    }
}

/// Refuses a step whose estimated `work` exceeds the bound.
fn budget(step: &'static str, work: u64) -> Result<(), CompileError> {
    if work > MAX_COMPILE_WORK {
        return Err(CompileError::TooComplex {
            step,
            work,
            limit: MAX_COMPILE_WORK,
        });
    }
    Ok(())
}

/// Checks what the model cannot express in types.
fn validate(index: usize, rule: &Rule) -> Result<(), CompileError> {
    if let Some(range) = rule.ports {
        if !rule.protocol.is_some_and(has_ports) {
            return Err(CompileError::PortsWithoutPortProtocol {
                index,
                id: rule.id,
                protocol: rule.protocol,
            });
        }
        if range.first > range.last {
            return Err(CompileError::EmptyPortRange {
                index,
                id: rule.id,
                first: range.first,
                last: range.last,
            });
        }
    }
    Ok(())
}

/// Compiles `set`; see [`Classifier::compile`].
pub(super) fn compile(set: &RuleSet) -> Result<Classifier, CompileError> {
    for (index, rule) in set.rules.iter().enumerate() {
        validate(index, rule)?;
    }
    let mut rules: Vec<&Rule> = set.rules.iter().collect();
    rules.sort_by_key(|rule| rule.tier);
    let n = rules.len();
    let words = bitset::words_for(n) as u64;

    let mut tier_end = vec![n; n];
    for pos in (0..n.saturating_sub(1)).rev() {
        tier_end[pos] = if rules[pos].tier == rules[pos + 1].tier {
            tier_end[pos + 1]
        } else {
            pos + 1
        };
    }
    let ordered = Ordered {
        action: rules.iter().map(|rule| rule.action).collect(),
        id: rules.iter().map(|rule| rule.id).collect(),
        tier_end,
        default: set.default,
    };

    // Dimension 2: protocol and port.
    let intervals: Vec<(u32, u32)> = rules.iter().map(|rule| ports::interval(rule)).collect();
    budget("port classes", (2 * n as u64 + 1) * (words + 1))?;
    let port = PortClasses::build(&intervals);

    // Dimension 1: the remote address, per family.
    let mut root = vec![0u64; words as usize];
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (pos, rule) in rules.iter().enumerate() {
        if rule.remote.is_empty() {
            bitset::set(&mut root, pos);
        }
        let tagged = rule.remote.iter().map(|net| (net, false));
        for (net, except) in tagged.chain(rule.remote_except.iter().map(|net| (net, true))) {
            match net.trunc() {
                IpNet::V4(net) => v4.push(PrefixRef {
                    net: u32::from(net.network()),
                    len: net.prefix_len(),
                    pos,
                    except,
                }),
                IpNet::V6(net) => v6.push(PrefixRef {
                    net: u128::from(net.network()),
                    len: net.prefix_len(),
                    pos,
                    except,
                }),
            }
        }
    }
    budget(
        "address classes",
        (v4.len() + v6.len() + 1) as u64 * 4 * words,
    )?;
    let mut classes = AddressClasses::new(&root);
    let prefixes4 = classes.classify_prefixes(v4);
    let prefixes6 = classes.classify_prefixes(v6);
    let class_count = classes.count();
    if class_count > MAX_VALUE as usize + 1 {
        return Err(CompileError::TooManyClasses {
            count: class_count,
            limit: MAX_VALUE as usize + 1,
        });
    }

    // Per address class: one walk per port class, then the interval map.
    let port_classes = port.class_count() as u64;
    let segments = port.starts.len() as u64;
    budget(
        "interval maps",
        class_count as u64 * (port_classes * (words + 1) + 2 * segments),
    )?;
    let mut tables = Tables::default();
    let mut outcome_index: AHashMap<Outcome, u32> = AHashMap::new();
    let mut map_index: AHashMap<(Vec<u32>, Vec<u32>), u32> = AHashMap::new();
    let mut class_map = Vec::with_capacity(class_count);
    let mut per_port_class = vec![0u32; port.class_count()];
    let (mut starts, mut outs) = (Vec::new(), Vec::new());
    for class in 0..class_count as u32 {
        let bits = classes.class_bits(class);
        for (pc, slot) in per_port_class.iter_mut().enumerate() {
            let outcome = ordered.walk(bits, port.class_bits(pc as u32));
            let next = tables.outcomes.len() as u32;
            *slot = *outcome_index.entry(outcome).or_insert_with_key(|outcome| {
                tables.outcomes.push(outcome.clone());
                next
            });
        }
        starts.clear();
        outs.clear();
        for (&start, &pc) in port.starts.iter().zip(&port.segment_class) {
            let out = per_port_class[pc as usize];
            if outs.last() != Some(&out) {
                starts.push(start);
                outs.push(out);
            }
        }
        let next = map_index.len() as u32;
        let map = *map_index
            .entry((starts.clone(), outs.clone()))
            .or_insert_with(|| {
                tables.push_map(&starts, &outs);
                next
            });
        class_map.push(map);
    }

    // The LPMs: a prefix goes in only where it changes the answer.
    let default_map = class_map[0];
    let mut lpm4 = LpmWriter::<u32>::new();
    let map_of = |class: u32| class_map[class as usize];
    for p in &prefixes4 {
        let parent = p.parent.map_or(default_map, |i| map_of(prefixes4[i].class));
        if map_of(p.class) != parent {
            insert(&mut lpm4, p.net, p.len, map_of(p.class))?;
        }
    }
    let mut lpm6 = LpmWriter::<u128>::new();
    for p in &prefixes6 {
        let parent = p.parent.map_or(default_map, |i| map_of(prefixes6[i].class));
        if map_of(p.class) != parent {
            insert(&mut lpm6, p.net, p.len, map_of(p.class))?;
        }
    }
    tables.default_map = default_map;
    Ok(Classifier::from_tables(
        tables,
        lpm4.publish(),
        lpm6.publish(),
        n,
    ))
}

/// Inserts a route whose value is an interval-map id (always `<= MAX_VALUE`:
/// there are no more maps than classes, which were checked).
fn insert<K: crate::table::lpm::LpmKey>(
    lpm: &mut LpmWriter<K>,
    net: K,
    len: u8,
    map: u32,
) -> Result<(), CompileError> {
    lpm.insert(net, len, map)
        .map(|_| ())
        .map_err(|_| CompileError::TooManyClasses {
            count: map as usize + 1,
            limit: MAX_VALUE as usize + 1,
        })
}

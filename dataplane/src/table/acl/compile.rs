//! Compiling a [`RuleSet`] into the tables of a [`Classifier`].
//!
//! Steps, each bounded by [`MAX_COMPILE_WORK`]:
//! 1. validate the rules and put them in evaluation order (stable by tier);
//! 2. segment the protocol/port key space into port classes ([`super::ports`]);
//! 3. class every rule prefix of both families ([`super::address`]);
//! 4. per address class, build its interval map over the key space, adjacent
//!    equal outcomes merged, the cheaper of two ways: walk the class's rules
//!    once per global port class (few distinct ports), or sweep the ends of
//!    the intervals of the rules that class matches ([`super::sweep`]: many
//!    distinct ports, few rules per class); outcomes and interval maps are
//!    deduplicated;
//! 5. put into the LPMs each prefix whose interval map differs from the one
//!    its nearest ancestor (or the root) already yields.

use ahash::AHashMap;
use ipnet::IpNet;

use crate::table::lpm::{Lpm, LpmWriter, MAX_VALUE};

use super::address::{AddressClasses, PrefixRef};
use super::bitset;
use super::error::CompileError;
use super::maps::Tables;
use super::ports::{self, PortClasses};
use super::rule::{Outcome, Rule, RuleSet, has_ports};
use super::sweep::{Ordered, Sweep};

/// The bound on compile work, in 64-bit word operations (roughly a nanosecond
/// each): a rule set needing more is refused with [`CompileError::TooComplex`]
/// rather than taking seconds and gigabytes. The dominant terms are
/// (distinct prefixes) x (rules / 64) for the address classes and, per
/// address class, the cheaper of (port classes x rules / 64 + key segments)
/// for the walks and (its rules x log) x (1 + its Log and Pass rules) for a
/// sweep. The 10,000-rule Kubernetes-like set of `benches/acl.rs` compiles
/// in about 17 ms, far inside the bound.
pub const MAX_COMPILE_WORK: u64 = 1 << 30;

/// How an address class's interval map is built (tests force one way to
/// check both against the definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MapStrategy {
    /// Whichever is estimated cheaper, class by class.
    Cheaper,
    /// One walk per global port class.
    #[cfg(test)]
    Dense,
    /// A sweep over the class's own rules' intervals.
    #[cfg(test)]
    Sparse,
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

/// A compiled rule set: its interval maps and outcomes, and the LPMs from
/// the remote address to a map.
pub(super) struct Compiled {
    pub tables: Tables,
    pub v4: Lpm<u32>,
    pub v6: Lpm<u128>,
    /// Rules in the set.
    pub rules: usize,
}

/// Compiles `set`; see [`super::Classifier::compile`].
pub(super) fn compile(set: &RuleSet) -> Result<Compiled, CompileError> {
    compile_with(set, MapStrategy::Cheaper)
}

/// Compiles `set`, building interval maps as `strategy` says.
pub(super) fn compile_with(set: &RuleSet, strategy: MapStrategy) -> Result<Compiled, CompileError> {
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

    // Per address class, the interval map, the cheaper way (estimated).
    let port_classes = port.class_count() as u64;
    let segments = port.starts.len() as u64;
    let dense_work = port_classes * (words + 1) + 2 * segments;
    let mut sparse = Vec::with_capacity(class_count);
    let mut work = 0u64;
    for class in 0..class_count as u32 {
        let bits = classes.class_bits(class);
        let matching: u64 = bits.iter().map(|w| u64::from(w.count_ones())).sum();
        let sparse_work = Sweep::work(matching, ordered.detours(bits), words);
        let use_sparse = match strategy {
            MapStrategy::Cheaper => sparse_work < dense_work,
            #[cfg(test)]
            MapStrategy::Dense => false,
            #[cfg(test)]
            MapStrategy::Sparse => true,
        };
        sparse.push(use_sparse);
        work = work.saturating_add(words).saturating_add(if use_sparse {
            sparse_work
        } else {
            dense_work
        });
    }
    budget("interval maps", work)?;
    let mut tables = Tables::default();
    // Apart from `tables` while `intern` holds them, so that maps go into
    // `tables` as they are found.
    let mut outcomes = Vec::new();
    let mut outcome_index: AHashMap<Outcome, u32> = AHashMap::new();
    let mut intern = |outcome: Outcome| -> u32 {
        let next = outcomes.len() as u32;
        *outcome_index.entry(outcome).or_insert_with_key(|outcome| {
            outcomes.push(outcome.clone());
            next
        })
    };
    let mut map_index: AHashMap<(Vec<u32>, Vec<u32>), u32> = AHashMap::new();
    let mut class_map = Vec::with_capacity(class_count);
    let mut per_port_class = vec![0u32; port.class_count()];
    let mut sweep = Sweep::default();
    let (mut starts, mut outs) = (Vec::new(), Vec::new());
    for class in 0..class_count as u32 {
        let bits = classes.class_bits(class);
        if sparse[class as usize] {
            sweep.class_map(
                &ordered,
                &intervals,
                bits,
                &mut intern,
                &mut starts,
                &mut outs,
            );
        } else {
            for (pc, slot) in per_port_class.iter_mut().enumerate() {
                *slot = intern(ordered.walk(bits, port.class_bits(pc as u32)));
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
    tables.outcomes = outcomes;

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
    Ok(Compiled {
        tables,
        v4: lpm4.publish(),
        v6: lpm6.publish(),
        rules: n,
    })
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

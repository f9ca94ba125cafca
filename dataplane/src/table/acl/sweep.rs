//! An address class's interval map by sweeping the key space over the
//! intervals of the rules that class matches, and nothing else.
//!
//! The dense way ([`super::compile`]) walks the class's rules once per
//! global port class: cheap when the rules name few distinct ports, but
//! (address classes) x (port classes) x (rules / 64) when every rule brings
//! its own prefix and its own port, which real policies at 10,000 rules do.
//! A class that matches `k` rules has at most `2k + 1` segments of its own:
//! sweeping their ends in order, with the rules active at each point in an
//! ordered set, costs about `k log k` plus one short walk per segment.

use std::collections::BTreeSet;

use super::bitset::{self, ones};
use super::ports::KEY_MAX;
use super::rule::{Outcome, RuleAction, RuleId, Verdict};

/// The rules in evaluation order, as a walk needs them.
pub(super) struct Ordered {
    /// Each rule's action.
    pub action: Vec<RuleAction>,
    /// Each rule's id.
    pub id: Vec<RuleId>,
    /// Position of the first rule of a higher tier: where a Pass continues.
    pub tier_end: Vec<usize>,
    /// The verdict when no rule decides.
    pub default: Verdict,
}

impl Ordered {
    /// The outcome for a packet whose matching rules are the positions
    /// `next(from)` yields: the first matching position at or after `from`.
    pub fn walk_with(&self, mut next: impl FnMut(usize) -> Option<usize>) -> Outcome {
        let mut logged = Vec::new();
        let mut from = 0;
        while let Some(pos) = next(from) {
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

    /// The outcome for a packet whose matching rules are `a & b`.
    pub fn walk(&self, a: &[u64], b: &[u64]) -> Outcome {
        self.walk_with(|from| bitset::next_common(a, b, from))
    }

    /// Steps a walk may take beyond its first rule in a class: the Log and
    /// Pass rules among `bits`.
    pub fn detours(&self, bits: &[u64]) -> u64 {
        ones(bits)
            .filter(|&pos| matches!(self.action[pos], RuleAction::Log | RuleAction::Pass))
            .count() as u64
    }
}

/// Buffers reused from class to class.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// (key, rule position, entering) for every interval end.
    events: Vec<(u32, usize, bool)>,
    active: BTreeSet<usize>,
}

impl Sweep {
    /// Writes to `starts`/`outs` the interval map (adjacent equal outcomes
    /// merged, first start 0) of the class whose matching rules are `bits`;
    /// `intervals[pos]` is rule `pos`'s key interval and `intern` turns an
    /// outcome into its index.
    pub fn class_map(
        &mut self,
        ordered: &Ordered,
        intervals: &[(u32, u32)],
        bits: &[u64],
        mut intern: impl FnMut(Outcome) -> u32,
        starts: &mut Vec<u32>,
        outs: &mut Vec<u32>,
    ) {
        self.events.clear();
        self.active.clear();
        starts.clear();
        outs.clear();
        for pos in ones(bits) {
            let (lo, hi) = intervals[pos];
            self.events.push((lo, pos, true));
            if hi < KEY_MAX {
                self.events.push((hi + 1, pos, false));
            }
        }
        self.events.sort_unstable();
        let mut at = 0;
        let mut key = 0;
        loop {
            while let Some(&(k, pos, entering)) = self.events.get(at)
                && k == key
            {
                if entering {
                    self.active.insert(pos);
                } else {
                    self.active.remove(&pos);
                }
                at += 1;
            }
            let active = &self.active;
            let outcome = ordered.walk_with(|from| active.range(from..).next().copied());
            let out = intern(outcome);
            if outs.last() != Some(&out) {
                starts.push(key);
                outs.push(out);
            }
            match self.events.get(at) {
                Some(&(next, _, _)) => key = next,
                None => break,
            }
        }
    }

    /// The work [`Sweep::class_map`] does for a class of `rules` matching
    /// rules, `detours` of them Log or Pass, over `words` words, in the
    /// units of [`super::MAX_COMPILE_WORK`]: sorting the interval ends, and
    /// per segment an ordered-set step per rule the walk may visit.
    pub fn work(rules: u64, detours: u64, words: u64) -> u64 {
        let log = u64::from(64 - rules.leading_zeros()) + 1;
        words + 2 * rules * log + (2 * rules + 1) * (1 + detours) * log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_grows_with_rules_and_detours() {
        assert!(Sweep::work(10, 0, 1) < Sweep::work(100, 0, 1));
        assert!(Sweep::work(100, 0, 1) < Sweep::work(100, 5, 1));
        assert!(Sweep::work(0, 0, 157) >= 157);
    }
}

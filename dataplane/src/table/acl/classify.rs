//! The compiled classifier and its hot path.
//!
//! A lookup is one LPM lookup (address -> interval map), one binary search over
//! that map's segment starts (`protocol << 16 | port` -> segment) and two array
//! reads (segment -> outcome index -> outcome). Nothing allocates.

use std::net::IpAddr;

use crate::table::lpm::Lpm;

use super::compile::{self, Compiled};
use super::error::CompileError;
use super::maps::Tables;
use super::ports;
use super::rule::{Outcome, RuleSet, Verdict};

/// A compiled, immutable rule set. `Send + Sync`; share it behind an `Arc`.
///
/// Invariants: every LPM value and `default_map` index `offsets`; every map is
/// non-empty and starts at key 0; every `outs` entry indexes `outcomes`.
#[derive(Debug, Clone)]
pub struct Classifier {
    v4: Lpm<u32>,
    v6: Lpm<u128>,
    default_map: u32,
    offsets: Box<[u32]>,
    starts: Box<[u32]>,
    outs: Box<[u32]>,
    outcomes: Box<[Outcome]>,
    rule_count: usize,
}

impl Classifier {
    /// Compiles `set`, or says which rule is wrong or that it is too complex.
    pub fn compile(set: &RuleSet) -> Result<Classifier, CompileError> {
        compile::compile(set).map(Self::from_compiled)
    }

    /// A classifier allowing everything.
    pub fn allow_all() -> Classifier {
        Self::constant(Verdict::Allow)
    }

    /// A classifier denying everything.
    pub fn deny_all() -> Classifier {
        Self::constant(Verdict::Deny)
    }

    fn constant(verdict: Verdict) -> Classifier {
        let mut tables = Tables::default();
        tables.outcomes.push(Outcome::default_verdict(verdict));
        tables.push_map(&[0], &[0]);
        Self::from_tables(tables, Lpm::empty(), Lpm::empty(), 0)
    }

    /// The classifier of what [`compile::compile`] built.
    pub(super) fn from_compiled(compiled: Compiled) -> Self {
        let Compiled {
            tables,
            v4,
            v6,
            rules,
        } = compiled;
        Self::from_tables(tables, v4, v6, rules)
    }

    fn from_tables(tables: Tables, v4: Lpm<u32>, v6: Lpm<u128>, rules: usize) -> Self {
        Self {
            v4,
            v6,
            default_map: tables.default_map,
            offsets: tables.offsets.into(),
            starts: tables.starts.into(),
            outs: tables.outs.into(),
            outcomes: tables.outcomes.into(),
            rule_count: rules,
        }
    }

    /// The outcome for a packet from or to `remote`.
    #[inline]
    pub fn classify(&self, remote: IpAddr, protocol: u8, port: u16) -> &Outcome {
        let index = match remote {
            IpAddr::V4(a) => self.classify_index_v4(u32::from(a), protocol, port),
            IpAddr::V6(a) => self.classify_index_v6(u128::from(a), protocol, port),
        };
        &self.outcomes[index as usize]
    }

    /// [`Self::classify`] for an IPv4 address in host order.
    #[inline]
    pub fn classify_v4(&self, remote: u32, protocol: u8, port: u16) -> &Outcome {
        &self.outcomes[self.classify_index_v4(remote, protocol, port) as usize]
    }

    /// [`Self::classify`] for an IPv6 address in host order.
    #[inline]
    pub fn classify_v6(&self, remote: u128, protocol: u8, port: u16) -> &Outcome {
        &self.outcomes[self.classify_index_v6(remote, protocol, port) as usize]
    }

    /// The index into [`Self::outcomes`] of the IPv4 packet's outcome.
    #[inline]
    pub fn classify_index_v4(&self, remote: u32, protocol: u8, port: u16) -> u32 {
        let map = self.v4.lookup(remote).unwrap_or(self.default_map);
        self.lookup_map(map, protocol, port)
    }

    /// The index into [`Self::outcomes`] of the IPv6 packet's outcome.
    #[inline]
    pub fn classify_index_v6(&self, remote: u128, protocol: u8, port: u16) -> u32 {
        let map = self.v6.lookup(remote).unwrap_or(self.default_map);
        self.lookup_map(map, protocol, port)
    }

    /// The outcome index of `protocol`/`port` in interval map `map`.
    #[inline]
    fn lookup_map(&self, map: u32, protocol: u8, port: u16) -> u32 {
        let key = ports::key(protocol, port);
        let lo = self.offsets[map as usize] as usize;
        let hi = self.offsets[map as usize + 1] as usize;
        let starts = &self.starts[lo..hi];
        // starts[0] == 0 <= key, so the count is at least 1.
        let segment = starts.partition_point(|&s| s <= key).saturating_sub(1);
        self.outs[lo + segment]
    }

    /// Number of rules compiled in.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Every distinct outcome; `classify_index_*` index into it.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// Number of distinct interval maps (for diagnostics).
    pub fn map_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Total segments over all interval maps (for diagnostics).
    pub fn segment_count(&self) -> usize {
        self.starts.len()
    }
}

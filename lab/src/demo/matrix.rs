//! The connectivity matrix: what each probe found, next to what it should
//! have found, rendered as a table with a summary per kind of path.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::topology::{Endpoint, Expect, PathKind, Topology};

pub use crate::probe::Outcome;

impl Outcome {
    /// Whether this is what `expect` asked for.
    pub fn matches(&self, expect: Expect) -> bool {
        matches!(
            (self, expect),
            (Outcome::Open, Expect::Open) | (Outcome::TimedOut, Expect::Blocked)
        )
    }

    fn cell(&self) -> &'static str {
        match self {
            Outcome::Open => "ok",
            Outcome::TimedOut => "blocked",
            Outcome::Refused => "refused",
            Outcome::Failed(_) => "error",
        }
    }
}

/// The outcomes of one matrix, by (source, destination).
pub type Outcomes = BTreeMap<(Endpoint, Endpoint), Outcome>;

/// A probe that found something else than expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Its source.
    pub src: Endpoint,
    /// Its destination.
    pub dst: Endpoint,
    /// What it should have found.
    pub expected: Expect,
    /// What it found.
    pub found: Outcome,
}

/// The probes whose outcome differs from the expectation (a cell without
/// an outcome counts as failed).
pub fn mismatches(t: &Topology, outcomes: &Outcomes, policy_applied: bool) -> Vec<Mismatch> {
    t.cells()
        .into_iter()
        .filter_map(|(src, dst)| {
            let expected = t.expect(src, dst, policy_applied);
            let found = outcomes
                .get(&(src, dst))
                .cloned()
                .unwrap_or_else(|| Outcome::Failed("not probed".to_owned()));
            (!found.matches(expected)).then_some(Mismatch {
                src,
                dst,
                expected,
                found,
            })
        })
        .collect()
}

/// The table: a row per source, a column per destination. A cell is `ok`
/// or `blocked`, with `!` after it when that is not what was expected; `-`
/// is not probed (itself, node to node).
pub fn render(t: &Topology, outcomes: &Outcomes, policy_applied: bool) -> String {
    let endpoints = t.endpoints();
    let row_label = |e: Endpoint| match e {
        Endpoint::Pod(i) => format!("{} ({})", t.pods[i].key(), t.nodes[t.pods[i].node].name),
        Endpoint::Node(i) => t.nodes[i].name.to_owned(),
    };
    let first = endpoints
        .iter()
        .map(|&e| row_label(e).chars().count())
        .max()
        .unwrap_or(0)
        .max("from \\ to".len());
    let width = endpoints
        .iter()
        .map(|&e| t.label(e).len())
        .max()
        .unwrap_or(0)
        .max("blocked!".len());
    let mut out = String::new();
    let _ = write!(out, "  {:<first$}", "from \\ to");
    for &e in &endpoints {
        let _ = write!(out, "  {:<width$}", t.label(e));
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    for &src in &endpoints {
        let _ = write!(out, "  {:<first$}", row_label(src));
        for &dst in &endpoints {
            let text = match outcomes.get(&(src, dst)) {
                None => "-".to_owned(),
                Some(found) => {
                    let expected = t.expect(src, dst, policy_applied);
                    let mark = if found.matches(expected) { "" } else { "!" };
                    format!("{}{mark}", found.cell())
                }
            };
            let _ = write!(out, "  {text:<width$}");
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// One line per kind of path: how many probes, how many open, how many
/// blocked, and whether all were as expected.
pub fn summary(t: &Topology, outcomes: &Outcomes, policy_applied: bool) -> String {
    let mut kinds: BTreeMap<PathKind, (usize, usize, usize)> = BTreeMap::new();
    for (src, dst) in t.cells() {
        let entry = kinds.entry(t.path_kind(src, dst)).or_default();
        entry.0 += 1;
        match outcomes.get(&(src, dst)) {
            Some(Outcome::Open) => entry.1 += 1,
            Some(Outcome::TimedOut) => entry.2 += 1,
            _ => {}
        }
    }
    let mut out = String::new();
    for (kind, (total, open, blocked)) in kinds {
        let _ = writeln!(
            out,
            "  {:<22} {total:>2} probes: {open} open, {blocked} blocked",
            kind.label()
        );
    }
    let wrong = mismatches(t, outcomes, policy_applied);
    if wrong.is_empty() {
        let _ = writeln!(out, "  every probe as expected");
    }
    for m in wrong {
        let why = match &m.found {
            Outcome::Failed(why) => format!(" ({why})"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  UNEXPECTED: {} → {} should be {} but is {}{why}",
            t.label(m.src),
            t.label(m.dst),
            match m.expected {
                Expect::Open => "open",
                Expect::Blocked => "blocked",
            },
            m.found.cell(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_expected(t: &Topology, policy: bool) -> Outcomes {
        t.cells()
            .into_iter()
            .map(|(s, d)| {
                let o = match t.expect(s, d, policy) {
                    Expect::Open => Outcome::Open,
                    Expect::Blocked => Outcome::TimedOut,
                };
                ((s, d), o)
            })
            .collect()
    }

    #[test]
    fn a_matrix_as_expected_has_no_mismatch_and_says_so() {
        let t = Topology::new("tw", true);
        let outcomes = as_expected(&t, true);
        assert!(mismatches(&t, &outcomes, true).is_empty());
        let text = summary(&t, &outcomes, true);
        assert!(text.contains("every probe as expected"), "{text}");
        assert!(
            text.contains("node→pod                8 probes: 7 open, 1 blocked"),
            "{text}"
        );
        let table = render(&t, &outcomes, true);
        assert_eq!(table.lines().count(), 7, "{table}");
        let web1 = table
            .lines()
            .find(|l| l.contains("frontend/web-1"))
            .unwrap();
        assert!(web1.contains("blocked") && !web1.contains('!'), "{table}");
    }

    #[test]
    fn a_wrong_or_missing_cell_is_marked_and_named() {
        let t = Topology::new("tw", true);
        let mut outcomes = as_expected(&t, false);
        // Before the policy, pretend web-1 → db-1 was dropped.
        let cell = (Endpoint::Pod(0), Endpoint::Pod(3));
        outcomes.insert(cell, Outcome::TimedOut);
        outcomes.remove(&(Endpoint::Node(0), Endpoint::Pod(1)));
        let wrong = mismatches(&t, &outcomes, false);
        assert_eq!(wrong.len(), 2);
        assert_eq!((wrong[0].src, wrong[0].dst), cell);
        let text = summary(&t, &outcomes, false);
        assert!(
            text.contains("UNEXPECTED: web-1 → db-1 should be open but is blocked"),
            "{text}"
        );
        assert!(text.contains("(not probed)"), "{text}");
        assert!(render(&t, &outcomes, false).contains("blocked!"));
    }

    #[test]
    fn refused_and_failed_never_match() {
        for e in [Expect::Open, Expect::Blocked] {
            assert!(!Outcome::Refused.matches(e));
            assert!(!Outcome::Failed("x".into()).matches(e));
        }
    }
}

//! The truth table itself, pure: its axes, what was observed in each cell, what
//! was expected, and the readable difference between the two.
//!
//! A cell is one (from, to, probe): `from` names a workload that sent the
//! probe, `to` a target (a workload or a plain address), `probe` a protocol
//! and port. Cells whose `from` and `to` are the same name are *self* cells:
//! a pod reaching its own address never leaves its kernel, so policy cannot
//! apply; they are neither probed nor compared.
//!
//! Names are free-form, but the selectors of [`Expected`] understand the
//! `namespace/pod` convention: `*` is every name, `ns/*` every name in `ns`,
//! anything else exactly one name. A selector that matches nothing panics, so
//! a misspelt name cannot turn an expectation into a no-op.

use std::fmt::Write as _;

use super::probe::{Probe, ProbeSelector};

/// Who probes, what is probed, and with which probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axes {
    from: Vec<String>,
    to: Vec<String>,
    probes: Vec<Probe>,
}

impl Axes {
    /// Axes over `from` × `to` × `probes`; panics on duplicates or an empty axis.
    pub fn new(from: Vec<String>, to: Vec<String>, probes: Vec<Probe>) -> Self {
        for (what, names) in [("from", &from), ("to", &to)] {
            assert!(!names.is_empty(), "a matrix needs at least one {what} name");
            for (i, name) in names.iter().enumerate() {
                assert!(
                    !names[..i].contains(name),
                    "{what} name {name:?} appears twice in {names:?}"
                );
            }
        }
        assert!(!probes.is_empty(), "a matrix needs at least one probe");
        for (i, probe) in probes.iter().enumerate() {
            assert!(
                !probes[..i].contains(probe),
                "probe {probe} appears twice in {probes:?}"
            );
        }
        Self { from, to, probes }
    }

    /// The names probes are sent from.
    pub fn from(&self) -> &[String] {
        &self.from
    }

    /// The names probes are sent to.
    pub fn to(&self) -> &[String] {
        &self.to
    }

    /// The probes sent from every `from` to every `to`.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// Every cell that is probed (self cells left out), row by row.
    pub fn cells(&self) -> impl Iterator<Item = Cell<'_>> {
        self.from.iter().flat_map(move |from| {
            self.to
                .iter()
                .filter(move |to| *to != from)
                .flat_map(move |to| {
                    self.probes.iter().map(move |probe| Cell {
                        from,
                        to,
                        probe: *probe,
                    })
                })
        })
    }

    fn index(&self, from: &str, to: &str, probe: Probe) -> Option<usize> {
        let f = self.from.iter().position(|n| n == from)?;
        let t = self.to.iter().position(|n| n == to)?;
        let p = self.probes.iter().position(|x| *x == probe)?;
        Some((f * self.to.len() + t) * self.probes.len() + p)
    }

    fn len(&self) -> usize {
        self.from.len() * self.to.len() * self.probes.len()
    }
}

/// One cell of a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell<'a> {
    /// Who sent the probe.
    pub from: &'a str,
    /// Where it went.
    pub to: &'a str,
    /// What was sent.
    pub probe: Probe,
}

impl Cell<'_> {
    /// The namespace part of `from` (before the `/`), if it has one.
    pub fn from_namespace(&self) -> Option<&str> {
        namespace(self.from)
    }

    /// The namespace part of `to` (before the `/`), if it has one.
    pub fn to_namespace(&self) -> Option<&str> {
        namespace(self.to)
    }
}

fn namespace(name: &str) -> Option<&str> {
    name.split_once('/').map(|(ns, _)| ns)
}

/// What one probe observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// TCP: the connection was established.
    Connected,
    /// UDP: the datagram came back.
    Echoed,
    /// The target's kernel refused (TCP reset, ICMP port unreachable): the
    /// network let the probe through, nothing listened.
    Refused,
    /// Nothing came back before the timeout: dropped on the way.
    TimedOut,
    /// Any other error (e.g. `EHOSTUNREACH`): neither allowed nor blocked,
    /// so it never matches an expectation.
    Failed(String),
}

impl Outcome {
    /// Whether the probe got through: `Some(true)` connected, echoed or
    /// refused; `Some(false)` timed out; `None` for another error.
    pub fn allowed(&self) -> Option<bool> {
        match self {
            Outcome::Connected | Outcome::Echoed | Outcome::Refused => Some(true),
            Outcome::TimedOut => Some(false),
            Outcome::Failed(_) => None,
        }
    }

    /// Reads the prober's word for it (`connected`, `timeout`, `error:EX`, ...).
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "connected" => Outcome::Connected,
            "echoed" => Outcome::Echoed,
            "refused" => Outcome::Refused,
            "timeout" => Outcome::TimedOut,
            other => Outcome::Failed(other.strip_prefix("error:")?.to_owned()),
        })
    }

    fn mark(&self) -> char {
        match self.allowed() {
            Some(true) => ALLOWED,
            Some(false) => BLOCKED,
            None => FAILED,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Connected => f.write_str("connected"),
            Outcome::Echoed => f.write_str("echoed"),
            Outcome::Refused => f.write_str("refused"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::Failed(e) => write!(f, "error {e}"),
        }
    }
}

/// The grid's marks.
const ALLOWED: char = '+';
const BLOCKED: char = '.';
const FAILED: char = '!';
const SELF: char = '=';

/// What every cell of one probing round observed.
#[derive(Debug, Clone)]
pub struct Matrix {
    axes: Axes,
    /// `None` for self cells.
    cells: Vec<Option<Outcome>>,
}

impl Matrix {
    /// A matrix over `axes` filled by `outcome` for every probed cell.
    pub fn from_fn(axes: Axes, mut outcome: impl FnMut(Cell<'_>) -> Outcome) -> Self {
        let mut cells = vec![None; axes.len()];
        for cell in axes.cells() {
            let i = axes
                .index(cell.from, cell.to, cell.probe)
                .expect("own cell");
            cells[i] = Some(outcome(cell));
        }
        Self { axes, cells }
    }

    /// Its axes.
    pub fn axes(&self) -> &Axes {
        &self.axes
    }

    /// What the cell observed; `None` for self cells and unknown names.
    pub fn outcome(&self, from: &str, to: &str, probe: Probe) -> Option<&Outcome> {
        self.cells[self.axes.index(from, to, probe)?].as_ref()
    }

    /// Whether the cell's probe got through; panics for a self cell, an
    /// unknown name or an outcome that is neither (an error).
    pub fn allowed(&self, from: &str, to: &str, probe: Probe) -> bool {
        let outcome = self
            .outcome(from, to, probe)
            .unwrap_or_else(|| panic!("{from} -> {to} {probe} is not a probed cell"));
        outcome
            .allowed()
            .unwrap_or_else(|| panic!("{from} -> {to} {probe}: {outcome}"))
    }

    /// The matrix as a text grid: a row per `from`, a column per `to`, a
    /// mark per probe (`+` allowed, `.` blocked, `!` error, `=` self).
    pub fn grid(&self) -> String {
        grid(&self.axes, |i| {
            self.cells[i].as_ref().map_or(SELF, Outcome::mark)
        })
    }
}

/// What every cell should observe: allowed (`true`) or blocked.
#[derive(Debug, Clone)]
pub struct Expected {
    axes: Axes,
    cells: Vec<bool>,
}

impl Expected {
    /// Every cell allowed: a network without policy.
    pub fn all_allowed(axes: &Axes) -> Self {
        Self::from_fn(axes, |_| true)
    }

    /// Every cell blocked.
    pub fn all_blocked(axes: &Axes) -> Self {
        Self::from_fn(axes, |_| false)
    }

    /// Each cell as `allowed` says.
    pub fn from_fn(axes: &Axes, mut allowed: impl FnMut(Cell<'_>) -> bool) -> Self {
        let mut cells = vec![true; axes.len()];
        for cell in axes.cells() {
            let i = axes
                .index(cell.from, cell.to, cell.probe)
                .expect("own cell");
            cells[i] = allowed(cell);
        }
        Self {
            axes: axes.clone(),
            cells,
        }
    }

    /// Expects the selected cells blocked (see [`Expected::set`]).
    pub fn deny(self, from: &str, to: &str, probe: &str) -> Self {
        self.set(from, to, probe, false)
    }

    /// Expects the selected cells allowed (see [`Expected::set`]).
    pub fn allow(self, from: &str, to: &str, probe: &str) -> Self {
        self.set(from, to, probe, true)
    }

    /// Sets every probed cell that `from`, `to` (`*`, `ns/*` or a name) and
    /// `probe` (`*`, `tcp/*`, `udp/53`, `tcp/80-443`) select; panics if a
    /// selector matches nothing on its axis.
    pub fn set(mut self, from: &str, to: &str, probe: &str, allowed: bool) -> Self {
        let probes = ProbeSelector::parse(probe).unwrap_or_else(|e| panic!("{e}"));
        let pick = |pattern: &str, names: &[String], what: &str| -> Vec<String> {
            let picked: Vec<String> = names
                .iter()
                .filter(|n| name_matches(pattern, n))
                .cloned()
                .collect();
            assert!(
                !picked.is_empty(),
                "{what} selector {pattern:?} matches none of {names:?}"
            );
            picked
        };
        let froms = pick(from, self.axes.from(), "from");
        let tos = pick(to, self.axes.to(), "to");
        let chosen: Vec<Probe> = self
            .axes
            .probes()
            .iter()
            .copied()
            .filter(|p| probes.matches(*p))
            .collect();
        assert!(
            !chosen.is_empty(),
            "probe selector {probe:?} matches none of {:?}",
            self.axes.probes()
        );
        let mut touched = false;
        for f in &froms {
            for t in tos.iter().filter(|t| *t != f) {
                for p in &chosen {
                    let i = self.axes.index(f, t, *p).expect("selected from the axes");
                    self.cells[i] = allowed;
                    touched = true;
                }
            }
        }
        assert!(
            touched,
            "({from}, {to}, {probe}) selects only self cells, which are never probed"
        );
        self
    }

    /// Its axes.
    pub fn axes(&self) -> &Axes {
        &self.axes
    }

    /// Whether the cell is expected allowed; panics for an unknown cell.
    pub fn is_allowed(&self, from: &str, to: &str, probe: Probe) -> bool {
        let i = self
            .axes
            .index(from, to, probe)
            .unwrap_or_else(|| panic!("{from} -> {to} {probe} is not a cell"));
        self.cells[i]
    }

    /// The expectation as a text grid, laid out as [`Matrix::grid`].
    pub fn grid(&self) -> String {
        grid(
            &self.axes,
            |i| if self.cells[i] { ALLOWED } else { BLOCKED },
        )
    }
}

/// Whether name selector `pattern` (`*`, `ns/*`, or a name) selects `name`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix("/*") {
        _ if pattern == "*" => true,
        Some(ns) => namespace(name) == Some(ns),
        None => pattern == name,
    }
}

/// Every cell where `actual` and `expected` disagree, one line each:
/// `ns/a -> ns/b tcp/80: expected allow, got block (timed out)`. Panics if
/// the two have different axes.
pub fn differences(actual: &Matrix, expected: &Expected) -> Vec<String> {
    assert_eq!(
        actual.axes, expected.axes,
        "the expectation was built for other axes than the matrix"
    );
    let word = |allowed: bool| if allowed { "allow" } else { "block" };
    let mut lines = Vec::new();
    for cell in actual.axes.cells() {
        let i = actual
            .axes
            .index(cell.from, cell.to, cell.probe)
            .expect("own cell");
        let want = expected.cells[i];
        let outcome = actual.cells[i]
            .as_ref()
            .expect("a probed cell has an outcome");
        let got = match outcome.allowed() {
            Some(got) if got == want => continue,
            Some(got) => word(got),
            None => "error",
        };
        lines.push(format!(
            "{} -> {} {}: expected {}, got {got} ({outcome})",
            cell.from,
            cell.to,
            cell.probe,
            word(want)
        ));
    }
    lines
}

/// Panics unless `actual` observed exactly what `expected` says, listing the
/// differing cells and then both grids.
pub fn assert_matrix(actual: &Matrix, expected: &Expected) {
    let diff = differences(actual, expected);
    if diff.is_empty() {
        return;
    }
    let total = actual.axes.cells().count();
    panic!(
        "policy matrix: {} of {total} cells differ from the expectation:\n  {}\n\n\
         expected:\n{}\nactual:\n{}",
        diff.len(),
        diff.join("\n  "),
        expected.grid(),
        actual.grid()
    );
}

/// A text grid: one row per `from`, one column per `to`, each cell one mark
/// per probe in axis order: `+` allowed, `.` blocked, `!` error, `=` self.
/// `mark(i)` gives the mark of flat cell `i`; it is not asked for self cells.
fn grid(axes: &Axes, mark: impl Fn(usize) -> char) -> String {
    let probes: Vec<String> = axes.probes.iter().map(Probe::to_string).collect();
    let corner = "from \\ to";
    let first = axes
        .from
        .iter()
        .map(String::len)
        .chain([corner.len()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = axes
        .to
        .iter()
        .map(|t| t.len().max(axes.probes.len()))
        .collect();
    let mut out = format!(
        "  per cell: {} ({ALLOWED} allowed, {BLOCKED} blocked, {FAILED} error, {SELF} self)\n",
        probes.join(" ")
    );
    let _ = write!(out, "  {corner:<first$}");
    for (to, w) in axes.to.iter().zip(&widths) {
        let _ = write!(out, "  {to:<w$}");
    }
    out.push('\n');
    for (f, from) in axes.from.iter().enumerate() {
        let _ = write!(out, "  {from:<first$}");
        for (t, w) in widths.iter().enumerate() {
            let is_self = axes.from[f] == axes.to[t];
            let marks: String = (0..axes.probes.len())
                .map(|p| {
                    let i = (f * axes.to.len() + t) * axes.probes.len() + p;
                    if is_self { SELF } else { mark(i) }
                })
                .collect();
            let _ = write!(out, "  {marks:<w$}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes() -> Axes {
        Axes::new(
            vec!["a/x".into(), "a/y".into(), "b/z".into()],
            vec!["a/x".into(), "a/y".into(), "b/z".into(), "node".into()],
            vec![Probe::tcp(80), Probe::tcp(443), Probe::udp(53)],
        )
    }

    #[test]
    fn cells_leave_out_self_cells() {
        let axes = axes();
        assert_eq!(axes.cells().count(), (3 * 4 - 3) * 3);
        assert!(axes.cells().all(|c| c.from != c.to));
    }

    #[test]
    fn selectors_pick_names_namespaces_and_probes() {
        assert!(name_matches("*", "a/x"));
        assert!(name_matches("a/*", "a/x"));
        assert!(!name_matches("a/*", "ab/x"));
        assert!(!name_matches("a/*", "node"));
        assert!(name_matches("node", "node"));
        let e = Expected::all_allowed(&axes())
            .deny("*", "a/*", "tcp/*")
            .allow("b/z", "a/x", "tcp/80");
        assert!(!e.is_allowed("a/y", "a/x", Probe::tcp(443)));
        assert!(e.is_allowed("b/z", "a/x", Probe::tcp(80)));
        assert!(!e.is_allowed("b/z", "a/x", Probe::tcp(443)));
        assert!(e.is_allowed("a/x", "a/y", Probe::udp(53)));
        assert!(e.is_allowed("a/x", "node", Probe::tcp(80)));
    }

    #[test]
    #[should_panic(expected = "matches none")]
    fn a_misspelt_name_panics() {
        let _ = Expected::all_allowed(&axes()).deny("a/xx", "*", "*");
    }

    #[test]
    fn outcomes_parse_and_say_whether_they_got_through() {
        assert_eq!(Outcome::parse("connected"), Some(Outcome::Connected));
        assert_eq!(Outcome::parse("timeout"), Some(Outcome::TimedOut));
        assert_eq!(
            Outcome::parse("error:EHOSTUNREACH"),
            Some(Outcome::Failed("EHOSTUNREACH".into()))
        );
        assert_eq!(Outcome::parse("what"), None);
        assert_eq!(Outcome::Refused.allowed(), Some(true));
        assert_eq!(Outcome::Failed("E".into()).allowed(), None);
    }

    #[test]
    fn differences_name_each_differing_cell_and_errors_always_differ() {
        let axes = axes();
        let actual = Matrix::from_fn(axes.clone(), |c| match (c.from, c.to, c.probe) {
            ("a/x", "b/z", p) if p == Probe::tcp(80) => Outcome::TimedOut,
            ("a/y", "node", p) if p == Probe::udp(53) => Outcome::Failed("ENETUNREACH".into()),
            (_, _, p) if p == Probe::udp(53) => Outcome::Echoed,
            _ => Outcome::Connected,
        });
        let expected = Expected::all_allowed(&axes);
        assert_eq!(
            differences(&actual, &expected),
            [
                "a/x -> b/z tcp/80: expected allow, got block (timed out)",
                "a/y -> node udp/53: expected allow, got error (error ENETUNREACH)",
            ]
        );
        let expected = expected
            .deny("a/x", "b/z", "tcp/80")
            .deny("a/y", "node", "udp/*");
        assert_eq!(
            differences(&actual, &expected),
            ["a/y -> node udp/53: expected block, got error (error ENETUNREACH)"]
        );
    }

    #[test]
    fn the_grid_has_a_row_per_source_and_a_mark_per_probe() {
        let axes = axes();
        let m = Matrix::from_fn(axes.clone(), |c| {
            if c.to == "node" {
                Outcome::TimedOut
            } else {
                Outcome::Connected
            }
        });
        let grid = m.grid();
        let rows: Vec<&str> = grid.lines().collect();
        assert_eq!(rows.len(), 2 + 3, "{grid}");
        assert!(rows[0].contains("tcp/80 tcp/443 udp/53"), "{grid}");
        assert_eq!(
            rows[2].split_whitespace().collect::<Vec<_>>(),
            ["a/x", "===", "+++", "+++", "..."]
        );
        assert_eq!(
            Expected::all_allowed(&axes).deny("*", "node", "*").grid(),
            grid
        );
    }
}

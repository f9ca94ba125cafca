//! The result for people (a table) and for programs (`-o json`). Pure.

use serde::Serialize;

use super::plan::Unit;
use super::stats::Line;
use tweed_control::cli::table::Table;

/// Everything a bench found, and how it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// Runs per line and implementation (the median is shown).
    pub runs: u32,
    /// Seconds per run.
    pub seconds: u32,
    /// The dataplanes' `--io`.
    pub io: String,
    /// The dataplanes' `--workers`.
    pub workers: u32,
    /// Whether the dataplanes' workers busy-polled.
    pub busy_poll: bool,
    /// The dataplanes' `--linger-us`, when given (else their default).
    pub linger_us: Option<u32>,
    /// Where it ran.
    pub machine: Machine,
    /// The lines.
    pub lines: Vec<Line>,
}

/// The machine, so figures are read with their context.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs.
    pub nproc: usize,
    /// The kernel release.
    pub kernel: String,
    /// `/proc/loadavg`'s three averages when the bench started.
    pub loadavg_start: String,
}

/// A value in its unit, scaled for people.
pub fn value(v: Option<f64>, unit: Unit) -> String {
    let Some(v) = v else {
        return "failed".to_owned();
    };
    match unit {
        Unit::BitsPerSecond if v >= 1e9 => format!("{:.2} Gbit/s", v / 1e9),
        Unit::BitsPerSecond => format!("{:.0} Mbit/s", v / 1e6),
        Unit::PacketsPerSecond if v >= 1e6 => format!("{:.2} Mpps", v / 1e6),
        Unit::PacketsPerSecond => format!("{:.0} kpps", v / 1e3),
        Unit::Micros => format!("{v:.1} µs"),
        Unit::ConnectionsPerSecond => format!("{v:.0} /s"),
    }
}

/// The table: line, tweed, kernel, tweed/kernel; then why runs failed.
pub fn table(report: &Report) -> String {
    let mut t = Table::new(["LINE", "TWEED", "KERNEL", "TWEED/KERNEL"]).right(&[1, 2, 3]);
    for l in &report.lines {
        t.row([
            format!("{} {}", l.topology.label(), l.line),
            value(l.tweed, l.unit),
            value(l.kernel, l.unit),
            l.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×")),
        ]);
    }
    let mut out = format!(
        "tweed bench ({}: {} run{} of {} s per line, median; --io {}, --workers {}{}; \
         {} CPUs, kernel {}, load {} at start)\n",
        report.mode,
        report.runs,
        if report.runs == 1 { "" } else { "s" },
        report.seconds,
        report.io,
        report.workers,
        match (report.busy_poll, report.linger_us) {
            (true, _) => ", --busy-poll".to_owned(),
            (false, Some(us)) => format!(", --linger-us {us}"),
            (false, None) => String::new(),
        },
        report.machine.nproc,
        report.machine.kernel,
        report.machine.loadavg_start,
    );
    out.push_str(&t.render());
    out.push_str("RTT lines: lower is better, so a ratio below 1 is tweed ahead.\n");
    for l in report.lines.iter().filter(|l| !l.errors.is_empty()) {
        for e in &l.errors {
            out.push_str(&format!("{} {}: {e}\n", l.topology.label(), l.line));
        }
    }
    out
}

/// The JSON document.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::{Impl, Metric, Topology};
    use crate::bench::stats::Samples;

    fn report() -> Report {
        let mut s = Samples::default();
        s.add(Topology::One, Metric::Tcp1, Impl::Tweed, 7.3e9);
        s.add(Topology::One, Metric::Tcp1, Impl::Kernel, 10e9);
        s.add(Topology::One, Metric::RttP50, Impl::Tweed, 30.0);
        s.add(Topology::One, Metric::RttP50, Impl::Kernel, 20.0);
        s.add(Topology::Two, Metric::Udp64, Impl::Kernel, 450_000.0);
        s.fail(Topology::Two, &[Metric::Udp64], Impl::Tweed, "no route");
        Report {
            mode: "quick",
            runs: 1,
            seconds: 3,
            io: "auto".into(),
            workers: 2,
            busy_poll: false,
            linger_us: Some(0),
            machine: Machine {
                nproc: 2,
                kernel: "6.1.0".into(),
                loadavg_start: "0.10 0.20 0.30".into(),
            },
            lines: s.lines(),
        }
    }

    #[test]
    fn the_table_has_a_row_per_line_with_units_and_ratio() {
        let text = table(&report());
        assert!(
            text.starts_with(
                "tweed bench (quick: 1 run of 3 s per line, median; --io auto, --workers 2, --linger-us 0;"
            ),
            "{text}"
        );
        let row = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
                .to_owned()
        };
        let tcp = row("one node TCP 1 stream");
        assert!(
            tcp.contains("7.30 Gbit/s") && tcp.contains("10.00 Gbit/s"),
            "{tcp}"
        );
        assert!(tcp.ends_with("0.73×"), "{tcp}");
        assert!(row("one node RTT p50").ends_with("1.50×"));
        let udp = row("two nodes UDP 64 B received");
        assert!(udp.contains("failed") && udp.contains("450 kpps") && udp.ends_with('-'));
        assert!(text.contains("two nodes UDP 64 B received: tweed: no route"));
    }

    #[test]
    fn json_has_the_numbers_and_units() {
        let doc: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        let first = &doc["lines"][0];
        assert_eq!(first["topology"], "one");
        assert_eq!(first["metric"], "tcp1");
        assert_eq!(first["unit"], "bit/s");
        assert_eq!(first["ratio"], 0.73);
        assert_eq!(doc["lines"][1]["higher_is_better"], false);
        assert_eq!(doc["lines"][2]["tweed"], serde_json::Value::Null);
        assert_eq!(doc["mode"], "quick");
        assert_eq!(doc["linger_us"], 0);
    }

    #[test]
    fn values_scale() {
        assert_eq!(value(Some(950e6), Unit::BitsPerSecond), "950 Mbit/s");
        assert_eq!(value(Some(1.5e6), Unit::PacketsPerSecond), "1.50 Mpps");
        assert_eq!(value(Some(12345.4), Unit::ConnectionsPerSecond), "12345 /s");
        assert_eq!(value(None, Unit::Micros), "failed");
    }
}

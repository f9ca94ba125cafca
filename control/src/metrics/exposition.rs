//! A writer for the Prometheus text exposition format 0.0.4 (pure).
//!
//! Contract: each family is written once, as `# HELP`, `# TYPE`, then its samples, so
//! the caller's order is the output's order. Label values are escaped (`\`, `"`, line
//! feed) and HELP text too (`\`, line feed), so names of pods or subnets coming from
//! outside cannot break a line. A series (name and label values) written twice keeps
//! its first value: Prometheus rejects a whole scrape with a duplicate series, so
//! dropping the repeat is the lesser harm.

use std::collections::HashSet;
use std::fmt::Write as _;

/// A family's metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts aside); its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    /// The word after `# TYPE name`.
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An exact count.
    Int(u64),
    /// A measurement.
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// The text of a whole exposition, built family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    names: HashSet<&'static str>,
}

impl Exposition {
    /// Starts the family `name`; its samples follow through the returned [`Family`].
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(
            self.names.insert(name),
            "metric family {name} written twice"
        );
        debug_assert!(
            (kind == Kind::Counter) == name.ends_with("_total"),
            "counter names end in _total, others do not: {name}"
        );
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.word());
        Family {
            out: &mut self.out,
            name,
            seen: HashSet::new(),
        }
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// One family being written.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
    seen: HashSet<String>,
}

impl Family<'_> {
    /// Writes one sample; a repeat of an already written label set is skipped.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        let mut series = String::new();
        if !labels.is_empty() {
            series.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    series.push(',');
                }
                let _ = write!(series, "{name}=\"{}\"", escape_label_value(value));
            }
            series.push('}');
        }
        let value = format_value(value.into());
        if self.seen.insert(series.clone()) {
            let _ = writeln!(self.out, "{}{series} {value}", self.name);
        } else {
            tracing::debug!(metric = self.name, %series, "metrics: skipping a duplicate series");
        }
        self
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes HELP text: `\` → `\\`, line feed → `\n`.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A value as the format spells it (Go's `ParseFloat` syntax, `+Inf`, `-Inf`, `NaN`).
fn format_value(value: Value) -> String {
    match value {
        Value::Int(v) => v.to_string(),
        Value::Float(v) if v.is_nan() => "NaN".to_owned(),
        Value::Float(v) if v == f64::INFINITY => "+Inf".to_owned(),
        Value::Float(v) if v == f64::NEG_INFINITY => "-Inf".to_owned(),
        Value::Float(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), r"x\ny");
        assert_eq!(escape_label_value("plain/pod-1"), "plain/pod-1");
    }

    #[test]
    fn help_is_escaped_but_keeps_quotes() {
        assert_eq!(escape_help("a \"b\" \\ c\nd"), "a \"b\" \\\\ c\\nd");
    }

    #[test]
    fn family_writes_help_type_then_samples() {
        let mut e = Exposition::default();
        e.family("tweed_x_total", Kind::Counter, "Things.")
            .sample(&[("a", "1")], 5u64)
            .sample(&[("a", "2"), ("b", "q\"")], 6u64);
        e.family("tweed_y", Kind::Gauge, "A gauge.")
            .sample(&[], 0.25);
        assert_eq!(
            e.finish(),
            "# HELP tweed_x_total Things.\n# TYPE tweed_x_total counter\n\
             tweed_x_total{a=\"1\"} 5\ntweed_x_total{a=\"2\",b=\"q\\\"\"} 6\n\
             # HELP tweed_y A gauge.\n# TYPE tweed_y gauge\ntweed_y 0.25\n"
        );
    }

    #[test]
    fn a_repeated_series_keeps_its_first_value() {
        let mut e = Exposition::default();
        e.family("tweed_z", Kind::Gauge, "Z.")
            .sample(&[("p", "a")], 1u64)
            .sample(&[("p", "a")], 2u64)
            .sample(&[("p", "b")], 3u64);
        let text = e.finish();
        assert!(text.contains("tweed_z{p=\"a\"} 1\n"), "{text}");
        assert!(!text.contains("tweed_z{p=\"a\"} 2"), "{text}");
        assert!(text.contains("tweed_z{p=\"b\"} 3\n"), "{text}");
    }

    #[test]
    fn special_floats_use_the_format_spelling() {
        assert_eq!(format_value(Value::Float(f64::NAN)), "NaN");
        assert_eq!(format_value(Value::Float(f64::INFINITY)), "+Inf");
        assert_eq!(format_value(Value::Float(f64::NEG_INFINITY)), "-Inf");
        assert_eq!(format_value(Value::Float(0.000_001)), "0.000001");
        assert_eq!(format_value(Value::Int(u64::MAX)), "18446744073709551615");
    }
}

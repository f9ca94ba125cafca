//! Metric families written through `prometheus-client`'s OpenMetrics text
//! encoder (pure): the render code names a family, its kind and help, then its
//! samples; the crate writes `# HELP`, `# TYPE`, the samples and `# EOF`.
//!
//! What this layer adds to the crate:
//! - label values are escaped here (`\`, `"`, line feed), because the crate
//!   writes them as given (prometheus/client_rust#151) and pod, peer and subnet
//!   names come from outside;
//! - a series (label values) written twice in a family keeps its first value:
//!   Prometheus refuses a whole scrape with a duplicate series, so dropping the
//!   repeat is the lesser harm;
//! - counters are named with their `_total` suffix, as their samples appear
//!   (the crate writes the family name without it, OpenMetrics style).

use std::collections::HashSet;
use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A family's metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts aside); its samples are named `…_total`.
    Counter,
    /// Goes up and down.
    Gauge,
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

/// The families of one scrape, written in the order they are started.
#[derive(Debug)]
pub struct Families<'a> {
    encoder: DescriptorEncoder<'a>,
    names: HashSet<&'static str>,
}

impl<'a> Families<'a> {
    /// Families written to `encoder` (a collector's, during a scrape).
    pub fn new(encoder: DescriptorEncoder<'a>) -> Self {
        Self {
            encoder,
            names: HashSet::new(),
        }
    }

    /// Starts family `name` (a counter's ends in `_total`, a gauge's does not);
    /// its samples follow through the returned [`Family`].
    pub fn family(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &str,
    ) -> Result<Family<'_>, fmt::Error> {
        debug_assert!(
            self.names.insert(name),
            "metric family {name} written twice"
        );
        debug_assert!(
            (kind == Kind::Counter) == name.ends_with("_total"),
            "counter names end in _total, others do not: {name}"
        );
        let (base, metric_type) = match kind {
            Kind::Counter => (
                name.strip_suffix("_total").unwrap_or(name),
                MetricType::Counter,
            ),
            Kind::Gauge => (name, MetricType::Gauge),
        };
        let encoder = self
            .encoder
            .encode_descriptor(base, help, None, metric_type)?;
        Ok(Family {
            encoder: Some(encoder),
            kind,
            name,
            seen: HashSet::new(),
        })
    }
}

/// One family being written.
#[derive(Debug)]
pub struct Family<'a> {
    /// `None` once an unlabelled sample took it (the family's only sample).
    encoder: Option<MetricEncoder<'a>>,
    kind: Kind,
    name: &'static str,
    seen: HashSet<Vec<(String, String)>>,
}

impl Family<'_> {
    /// Writes one sample; a repeat of an already written label set is skipped.
    /// An unlabelled sample is a family's only one.
    pub fn sample(
        &mut self,
        labels: &[(&str, &str)],
        value: impl Into<Value>,
    ) -> Result<&mut Self, fmt::Error> {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(name, value)| ((*name).to_owned(), escape_label_value(value)))
            .collect();
        if self.seen.contains(&labels) {
            tracing::debug!(
                metric = self.name,
                ?labels,
                "metrics: skipping a duplicate series"
            );
            return Ok(self);
        }
        // The crate writes an empty label set as `{}`: an unlabelled sample
        // goes through the family's own encoder, which it uses up.
        let value = value.into();
        if labels.is_empty() {
            let Some(encoder) = self.encoder.take() else {
                debug_assert!(false, "{}: a second unlabelled sample", self.name);
                return Ok(self);
            };
            put(self.kind, value, encoder)?;
        } else if let Some(family) = self.encoder.as_mut() {
            put(self.kind, value, family.encode_family(&labels)?)?;
        } else {
            debug_assert!(false, "{}: a sample after an unlabelled one", self.name);
            return Ok(self);
        }
        self.seen.insert(labels);
        Ok(self)
    }
}

/// Writes one sample of `kind` through `encoder`.
fn put(kind: Kind, value: Value, encoder: MetricEncoder<'_>) -> fmt::Result {
    match (kind, value) {
        (Kind::Counter, Value::Int(v)) => ConstCounter::new(v).encode(encoder),
        (Kind::Counter, Value::Float(v)) => ConstCounter::new(v).encode(encoder),
        (Kind::Gauge, Value::Int(v)) => ConstGauge::new(v).encode(encoder),
        (Kind::Gauge, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
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

#[cfg(test)]
mod tests {
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry;

    use super::*;

    /// A collector running `write` at each scrape.
    #[derive(Debug)]
    struct Writes(fn(&mut Families<'_>) -> fmt::Result);

    impl Collector for Writes {
        fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
            (self.0)(&mut Families::new(encoder))
        }
    }

    fn text(write: fn(&mut Families<'_>) -> fmt::Result) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Writes(write)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        out
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), r"x\ny");
        assert_eq!(escape_label_value("plain/pod-1"), "plain/pod-1");
    }

    #[test]
    fn family_writes_help_type_then_samples() {
        let out = text(|f| {
            f.family("tweed_x_total", Kind::Counter, "Things.")?
                .sample(&[("a", "1")], 5u64)?
                .sample(&[("a", "2"), ("b", "q\"")], 6u64)?;
            f.family("tweed_y", Kind::Gauge, "A gauge.")?
                .sample(&[], 0.25)?;
            f.family("tweed_z", Kind::Gauge, "No samples.")?;
            Ok(())
        });
        assert_eq!(
            out,
            "# HELP tweed_x Things.\n# TYPE tweed_x counter\n\
             tweed_x_total{a=\"1\"} 5\ntweed_x_total{a=\"2\",b=\"q\\\"\"} 6\n\
             # HELP tweed_y A gauge.\n# TYPE tweed_y gauge\ntweed_y 0.25\n\
             # HELP tweed_z No samples.\n# TYPE tweed_z gauge\n# EOF\n"
        );
    }

    #[test]
    fn a_repeated_series_keeps_its_first_value() {
        let out = text(|f| {
            f.family("tweed_z", Kind::Gauge, "Z.")?
                .sample(&[("p", "a")], 1u64)?
                .sample(&[("p", "a")], 2u64)?
                .sample(&[("p", "b")], 3u64)?;
            Ok(())
        });
        assert!(out.contains("tweed_z{p=\"a\"} 1\n"), "{out}");
        assert!(!out.contains("tweed_z{p=\"a\"} 2"), "{out}");
        assert!(out.contains("tweed_z{p=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn large_counts_are_exact() {
        let out = text(|f| {
            f.family("tweed_big_total", Kind::Counter, "Big.")?
                .sample(&[], u64::MAX)?;
            Ok(())
        });
        assert!(
            out.contains("tweed_big_total 18446744073709551615\n"),
            "{out}"
        );
    }
}

//! A strict reader of the OpenMetrics text format, for tests: it parses what the
//! encoder produced, independently of its code, and says what is wrong.

use std::collections::HashSet;

/// One sample read back: name, labels in written order, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels, unescaped.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// Reads `text` strictly: every family is `# HELP` then `# TYPE` then samples named
/// as the family (a counter's with `_total` added), no family or series twice, label
/// values use only the three escapes, `# EOF` last. Returns the families in order, by
/// their samples' name, and the samples.
pub fn check(text: &str) -> Result<(Vec<String>, Vec<Sample>), String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("output does not end in `# EOF` and a newline")?;
    let Some(body) = body.strip_suffix('\n') else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut families: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    let mut series = HashSet::new();
    let mut help: Option<String> = None;
    let mut current: Option<String> = None;
    for (n, line) in body.split('\n').enumerate() {
        let err = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest
                .split_once(' ')
                .ok_or_else(|| err("HELP without text"))?;
            if !valid_name(name) || text.is_empty() || families.iter().any(|f| f == name) {
                return Err(err("bad or repeated HELP"));
            }
            help = Some(name.to_owned());
            current = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| err("TYPE without type"))?;
            if help.take().as_deref() != Some(name) {
                return Err(err("TYPE not right after its HELP"));
            }
            let samples_name = match kind {
                "counter" if !name.ends_with("_total") => format!("{name}_total"),
                "gauge" if !name.ends_with("_total") => name.to_owned(),
                _ => return Err(err("bad type for this name")),
            };
            if families.contains(&samples_name) {
                return Err(err("family repeated"));
            }
            families.push(samples_name.clone());
            current = Some(samples_name);
        } else if line.starts_with('#') || line.is_empty() {
            return Err(err("unexpected comment or blank line"));
        } else {
            let sample = parse_sample(line).map_err(|e| err(&e))?;
            if current.as_deref() != Some(sample.name.as_str()) {
                return Err(err("sample outside its family"));
            }
            if !series.insert(format!("{}{:?}", sample.name, sample.labels)) {
                return Err(err("duplicate series"));
            }
            samples.push(sample);
        }
    }
    if help.is_some() {
        return Err("HELP without TYPE at the end".into());
    }
    Ok((families, samples))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name{l="v",...} value` or `name value`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..end];
    if !valid_name(name) {
        return Err("bad metric name".into());
    }
    let (labels, rest) = match line[end..].strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (Vec::new(), &line[end..]),
    };
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|_| "bad value")?,
    };
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Label names and values, in written order.
pub type Labels = Vec<(String, String)>;

/// The labels after `{`, and what follows the closing `}`.
fn parse_labels(after_brace: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = after_brace;
    loop {
        let (label, quoted) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !valid_name(label) {
            return Err("bad label name".into());
        }
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let close = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return Err("unknown escape".into()),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((label.to_owned(), value));
        rest = &quoted[close + 1..];
        if let Some(next) = rest.strip_prefix(',') {
            rest = next;
        } else if let Some(next) = rest.strip_prefix('}') {
            return Ok((labels, next));
        } else {
            return Err("bad label separator".into());
        }
    }
}

/// The value of the series `name{labels}`, if written.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
        })
        .map(|s| s.value)
}

mod tests {
    use super::check;

    #[test]
    fn the_checker_rejects_what_it_should() {
        let good = "# HELP a A.\n# TYPE a counter\na_total{x=\"1\"} 1\n# EOF\n";
        assert_eq!(
            check(good).map(|(families, _)| families),
            Ok(vec!["a_total".to_owned()])
        );
        assert!(check("# EOF\n").is_ok());
        let bad = [
            "# TYPE a counter\na_total 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na_total 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\nb_total 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na_total{x=\"\\t\"} 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na_total{x=\"1} 1\n# EOF\n",
            "# HELP a A.\n# TYPE a counter\na_total one\n# EOF\n",
            "# HELP a A.\n# TYPE a gauge\n# HELP a A.\n# TYPE a gauge\n# EOF\n",
        ];
        for text in bad {
            assert!(check(text).is_err(), "accepted {text:?}");
        }
    }
}

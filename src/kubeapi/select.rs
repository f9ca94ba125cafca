//! Label and field selectors, parsed from a request's query and matched
//! against objects, with the real server's syntax.
//!
//! Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
//! joined by commas. Fields: `path=v`, `path==v`, `path!=v` on a dotted path
//! (`metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.phase`
//! ...); a missing field compares as the empty string, as the server does.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

/// A parsed `fieldSelector`: (dotted path, wanted value, equal?) terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

/// Splits at commas outside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Parses `(a, b)` into its values.
fn set_values(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set, got {text:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_owned())
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_terms(text) {
            let req = if let Some(key) = term.strip_prefix('!') {
                LabelReq::NotExists(check_key(key)?)
            } else if let Some((k, v)) = term.split_once("!=") {
                LabelReq::NotEq(check_key(k)?, v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("==") {
                LabelReq::Eq(check_key(k)?, v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once('=') {
                LabelReq::Eq(check_key(k)?, v.trim().to_owned())
            } else if let Some((k, set)) = term.split_once(" notin ") {
                LabelReq::NotIn(check_key(k)?, set_values(set)?)
            } else if let Some((k, set)) = term.split_once(" in ") {
                LabelReq::In(check_key(k)?, set_values(set)?)
            } else {
                LabelReq::Exists(check_key(term)?)
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether `object`'s `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v),
            LabelReq::NotEq(k, v) => get(k) != Some(v),
            LabelReq::In(k, set) => get(k).is_some_and(|v| set.iter().any(|s| s == v)),
            LabelReq::NotIn(k, set) => !get(k).is_some_and(|v| set.iter().any(|s| s == v)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in split_terms(text) {
            let (path, value, equal) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, v, true)
            } else {
                return Err(format!("invalid field selector term {term:?}"));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(format!("invalid field selector term {term:?}"));
            }
            terms.push((path.to_owned(), value.trim().to_owned(), equal));
        }
        Ok(Self(terms))
    }

    /// Whether every term holds for `object`.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, want, equal)| {
            let found = path
                .split('.')
                .try_fold(object, |v, key| v.get(key))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (found == *want) == *equal
        })
    }
}

/// What a list or watch selects: a namespace (or all) and the selectors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only objects in this namespace; `None` for all (and cluster-scoped).
    pub namespace: Option<String>,
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && object["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running"}
        })
    }

    fn labels(text: &str) -> bool {
        LabelSelector::parse(text).unwrap().matches(&pod())
    }

    fn fields(text: &str) -> bool {
        FieldSelector::parse(text).unwrap().matches(&pod())
    }

    #[test]
    fn label_selectors() {
        assert!(labels(""));
        assert!(labels("app=web"));
        assert!(labels("app==web,tier=front"));
        assert!(!labels("app=web,tier=back"));
        assert!(labels("app!=db"));
        assert!(labels("missing!=x"));
        assert!(labels("app in (db, web)"));
        assert!(!labels("app notin (db,web)"));
        assert!(labels("missing notin (x)"));
        assert!(labels("tier"));
        assert!(labels("!missing"));
        assert!(!labels("!app"));
        assert!(LabelSelector::parse("app in db").is_err());
    }

    #[test]
    fn field_selectors() {
        assert!(fields("metadata.name=web-1"));
        assert!(!fields("metadata.name=web-2"));
        assert!(fields("spec.nodeName=n1,metadata.namespace==shop"));
        assert!(fields("spec.nodeName!=n2"));
        assert!(fields("status.podIP="));
        assert!(!fields("status.phase!=Running"));
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn filter_checks_the_namespace() {
        let mut f = Filter {
            namespace: Some("shop".into()),
            ..Filter::default()
        };
        assert!(f.matches(&pod()));
        f.namespace = Some("other".into());
        assert!(!f.matches(&pod()));
    }
}

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn expr(key: &str, operator: Operator, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![Requirement {
            key: key.to_owned(),
            operator,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }],
    }
}

#[test]
fn the_empty_selector_matches_everything() {
    assert!(LabelSelector::all().matches(&labels(&[])));
    assert!(LabelSelector::all().matches(&labels(&[("a", "b")])));
}

#[test]
fn match_labels_needs_every_pair() {
    let s = LabelSelector::labels([("app", "web"), ("tier", "fe")]);
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
    assert!(!s.matches(&labels(&[("app", "web")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "be")])));
}

#[test]
fn operators() {
    let web = labels(&[("app", "web")]);
    let db = labels(&[("app", "db")]);
    let none = labels(&[]);
    let cases = [
        (Operator::In, &["web", "api"][..], [true, false, false]),
        (Operator::NotIn, &["web"][..], [false, true, true]),
        (Operator::Exists, &[][..], [true, true, false]),
        (Operator::DoesNotExist, &[][..], [false, false, true]),
    ];
    for (op, values, expected) in cases {
        let s = expr("app", op, values);
        assert_eq!(
            [s.matches(&web), s.matches(&db), s.matches(&none)],
            expected,
            "{op:?}"
        );
    }
}

#[test]
fn labels_and_expressions_are_anded() {
    let mut s = expr("tier", Operator::Exists, &[]);
    s.match_labels.insert("app".into(), "web".into());
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "x")])));
    assert!(!s.matches(&labels(&[("app", "web")])));
    assert!(!s.matches(&labels(&[("tier", "x")])));
}

//! Tests of [`HealthBook`](super::HealthBook): thresholds, history across target
//! changes, stale results.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{HealthBook, Transition};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn book_with(peers: &[(&str, &str)]) -> HealthBook {
    let mut book = HealthBook::default();
    let targets: Vec<_> = peers
        .iter()
        .map(|(n, a)| (n.to_string(), addr(a)))
        .collect();
    book.set_targets(&targets);
    book
}

const B: &str = "10.244.1.1:9901";

#[test]
fn a_new_peer_is_unknown() {
    let book = book_with(&[("b", B)]);
    let peer = book.peer("b").expect("listed");
    assert_eq!(peer.reachable, None);
    assert_eq!(peer.rtt, None);
    assert_eq!(peer.last_error, None);
    assert_eq!(book.last_success("b"), None);
}

#[test]
fn one_success_makes_a_peer_up() {
    let mut book = book_with(&[("b", B)]);
    let t0 = Instant::now();
    assert_eq!(
        book.record("b", addr(B), Ok(ms(2)), t0),
        Some(Transition::Up)
    );
    let peer = book.peer("b").expect("listed");
    assert_eq!(peer.reachable, Some(true));
    assert_eq!(peer.rtt, Some(ms(2)));
    assert_eq!(book.last_success("b"), Some(t0));
    assert_eq!(
        book.record("b", addr(B), Ok(ms(3)), t0 + ms(1000)),
        None,
        "no change"
    );
    assert_eq!(book.peer("b").expect("listed").rtt, Some(ms(3)));
}

#[test]
fn three_consecutive_failures_make_a_peer_down() {
    let mut book = book_with(&[("b", B)]);
    let t0 = Instant::now();
    book.record("b", addr(B), Ok(ms(2)), t0);
    for i in 1..=2 {
        let change = book.record("b", addr(B), Err(format!("refused {i}")), t0 + ms(i));
        assert_eq!(change, None, "still up after {i} failures");
        let peer = book.peer("b").expect("listed");
        assert_eq!(peer.reachable, Some(true));
        assert_eq!(peer.rtt, Some(ms(2)), "the last RTT while still up");
        assert_eq!(
            peer.last_error.as_deref(),
            Some(format!("refused {i}").as_str())
        );
    }
    let change = book.record("b", addr(B), Err("refused 3".into()), t0 + ms(3));
    assert_eq!(change, Some(Transition::Down));
    let peer = book.peer("b").expect("listed");
    assert_eq!(peer.reachable, Some(false));
    assert_eq!(peer.rtt, None, "no RTT for a down peer");
    assert_eq!(book.consecutive_failures("b"), Some(3));
    assert_eq!(book.last_success("b"), Some(t0), "history kept");
    assert_eq!(book.record("b", addr(B), Err("x".into()), t0 + ms(4)), None);
}

#[test]
fn a_success_resets_the_failure_count() {
    let mut book = book_with(&[("b", B)]);
    let t0 = Instant::now();
    book.record("b", addr(B), Err("a".into()), t0);
    book.record("b", addr(B), Err("b".into()), t0);
    book.record("b", addr(B), Ok(ms(1)), t0);
    assert_eq!(book.consecutive_failures("b"), Some(0));
    assert_eq!(book.peer("b").expect("listed").last_error, None);
    book.record("b", addr(B), Err("c".into()), t0);
    book.record("b", addr(B), Err("d".into()), t0);
    assert_eq!(book.peer("b").expect("listed").reachable, Some(true));
}

#[test]
fn a_never_reached_peer_goes_from_unknown_to_down() {
    let mut book = book_with(&[("b", B)]);
    let t0 = Instant::now();
    assert_eq!(book.record("b", addr(B), Err("a".into()), t0), None);
    assert_eq!(book.record("b", addr(B), Err("b".into()), t0), None);
    assert_eq!(book.peer("b").expect("listed").reachable, None);
    assert_eq!(
        book.record("b", addr(B), Err("c".into()), t0),
        Some(Transition::Down)
    );
    assert_eq!(
        book.record("b", addr(B), Ok(ms(1)), t0),
        Some(Transition::Up)
    );
}

#[test]
fn the_threshold_is_configurable() {
    let mut book = HealthBook::new(1);
    book.set_targets(&[("b".into(), addr(B))]);
    let change = book.record("b", addr(B), Err("a".into()), Instant::now());
    assert_eq!(change, Some(Transition::Down));
    let mut zero = HealthBook::new(0);
    zero.set_targets(&[("b".into(), addr(B))]);
    let change = zero.record("b", addr(B), Ok(ms(1)), Instant::now());
    assert_eq!(
        change,
        Some(Transition::Up),
        "0 acts as 1 and never as instantly down"
    );
    let change = zero.record("b", addr(B), Err("a".into()), Instant::now());
    assert_eq!(change, Some(Transition::Down));
}

#[test]
fn set_targets_keeps_unchanged_peers_and_resets_changed_ones() {
    let mut book = book_with(&[("b", B), ("c", "10.244.2.1:9901"), ("d", "10.244.3.1:9901")]);
    let t0 = Instant::now();
    book.record("b", addr(B), Ok(ms(1)), t0);
    book.record("c", addr("10.244.2.1:9901"), Ok(ms(1)), t0);
    book.record("d", addr("10.244.3.1:9901"), Ok(ms(1)), t0);
    book.set_targets(&[
        ("b".into(), addr(B)),
        ("c".into(), addr("10.244.20.1:9901")),
        ("e".into(), addr("10.244.4.1:9901")),
    ]);
    let names: Vec<_> = book.targets().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["b", "c", "e"], "d dropped, e added, by name");
    assert_eq!(book.peer("b").expect("kept").reachable, Some(true));
    let c = book.peer("c").expect("kept by name");
    assert_eq!(
        (c.target, c.reachable),
        (addr("10.244.20.1:9901"), None),
        "new target, no history"
    );
    assert_eq!(book.last_success("c"), None);
    assert_eq!(book.peer("d"), None);
    assert_eq!(book.peer("e").expect("added").reachable, None);
}

#[test]
fn results_for_old_targets_or_removed_peers_are_ignored() {
    let mut book = book_with(&[("b", B)]);
    book.set_targets(&[("b".into(), addr("10.244.9.1:9901"))]);
    let t0 = Instant::now();
    assert_eq!(book.record("b", addr(B), Ok(ms(1)), t0), None);
    assert_eq!(book.peer("b").expect("listed").reachable, None);
    assert_eq!(book.record("gone", addr(B), Ok(ms(1)), t0), None);
    assert_eq!(book.peers().len(), 1);
}

#[test]
fn a_name_listed_twice_takes_the_last_target() {
    let mut book = HealthBook::default();
    book.set_targets(&[("b".into(), addr(B)), ("b".into(), addr("10.244.9.1:9901"))]);
    assert_eq!(book.targets(), [("b".to_string(), addr("10.244.9.1:9901"))]);
}

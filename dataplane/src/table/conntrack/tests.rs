//! Single-threaded behaviour of the table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const SEED: [u64; 4] = [0x0123_4567, 0x89ab_cdef, 0xdead_beef, 0x1234_5678];
const S: u64 = 1000;
const TCP: u8 = 6;
const UDP: u8 = 17;
const SYN: Option<TcpFlags> = Some(TcpFlags(TcpFlags::SYN));
const SYN_ACK: Option<TcpFlags> = Some(TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
const ACK: Option<TcpFlags> = Some(TcpFlags(TcpFlags::ACK));
const FIN_ACK: Option<TcpFlags> = Some(TcpFlags(TcpFlags::FIN | TcpFlags::ACK));
const RST: Option<TcpFlags> = Some(TcpFlags(TcpFlags::RST));

fn table(capacity: usize) -> Conntrack {
    Conntrack::new(ConntrackConfig::new(capacity, SEED))
}

fn v4(protocol: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> FlowKey {
    FlowKey {
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        protocol,
        src_port: sport,
        dst_port: dport,
    }
}

fn v6(protocol: u8, src: u128, sport: u16, dst: u128, dport: u16) -> FlowKey {
    FlowKey {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol,
        src_port: sport,
        dst_port: dport,
    }
}

fn web() -> FlowKey {
    v4(TCP, [10, 0, 0, 1], 40000, [10, 0, 1, 2], 443)
}

fn state_at(ct: &Conntrack, key: &FlowKey, now: u64) -> Option<FlowState> {
    ct.lookup(key, now).map(|h| h.state)
}

#[test]
fn both_directions_hit_the_same_flow() {
    let ct = table(1024);
    for key in [
        web(),
        v6(UDP, 0xfd00 << 112 | 5, 5353, 0xfd00 << 112 | 1, 53),
    ] {
        assert_eq!(ct.insert(&key, None, 7, 0), InsertOutcome::Inserted);
        let fwd = ct.observe(&key, ACK, 10).unwrap();
        let rev = ct.observe(&key.reversed(), ACK, 20).unwrap();
        assert_eq!((fwd.direction, fwd.tag), (Direction::Original, 7));
        assert_eq!((rev.direction, rev.tag), (Direction::Reply, 7));
        assert_eq!(
            ct.insert(&key.reversed(), None, 9, 30),
            InsertOutcome::AlreadyPresent
        );
        assert_eq!(ct.lookup(&key, 30).unwrap().tag, 7, "tag kept");
    }
    assert_eq!(ct.len(), 2);
    // The originator is whoever inserted, even when its endpoint sorts second.
    let ct = table(16);
    let key = web().reversed();
    ct.insert(&key, None, 1, 0);
    assert_eq!(ct.lookup(&key, 1).unwrap().direction, Direction::Original);
    assert_eq!(ct.entries(1)[0].key, key);
}

#[test]
fn tcp_handshake_and_close() {
    let t = Timeouts::default();
    let ct = table(64);
    let key = web();
    ct.insert(&key, SYN, 1, 0);
    assert_eq!(state_at(&ct, &key, 0), Some(FlowState::SynSent));
    // A retransmitted SYN does not establish; neither does a reply without ACK.
    assert_eq!(
        ct.observe(&key, SYN, 500).unwrap().state,
        FlowState::SynSent
    );
    let h = ct.observe(&key.reversed(), SYN_ACK, S).unwrap();
    assert_eq!(
        (h.state, h.direction),
        (FlowState::Established, Direction::Reply)
    );
    assert_eq!(
        ct.observe(&key, ACK, 2 * S).unwrap().state,
        FlowState::Established
    );
    let established = ct.entries(2 * S)[0];
    assert_eq!(established.expires_in_ms, t.tcp_established_ms);
    assert_eq!(established.age_ms, 2 * S);
    assert!(ct.lookup(&key, 2 * S + t.tcp_established_ms - 1).is_some());
    // FIN from the responder: closing, 30 s.
    let h = ct.observe(&key.reversed(), FIN_ACK, 3 * S).unwrap();
    assert_eq!(h.state, FlowState::Closing);
    assert_eq!(
        ct.observe(&key, ACK, 3 * S + 10).unwrap().state,
        FlowState::Closing
    );
    assert!(ct.lookup(&key, 3 * S + t.tcp_closing_ms - 1).is_some());
    assert!(ct.lookup(&key, 3 * S + t.tcp_closing_ms).is_none());
    assert!(ct.observe(&key, ACK, 3 * S + t.tcp_closing_ms).is_none());
}

#[test]
fn tcp_syn_timeout_rst_and_reuse() {
    let t = Timeouts::default();
    let ct = table(64);
    let key = web();
    ct.insert(&key, SYN, 1, 0);
    assert!(ct.lookup(&key, t.tcp_syn_sent_ms - 1).is_some());
    assert!(ct.lookup(&key, t.tcp_syn_sent_ms).is_none());
    // Expired: a new insert reuses the slot, counted as a plain insert.
    assert_eq!(ct.insert(&key, SYN, 2, 100 * S), InsertOutcome::Inserted);
    assert_eq!(ct.len(), 1);
    let h = ct.observe(&key.reversed(), RST, 101 * S).unwrap();
    assert_eq!(h.state, FlowState::Closed);
    assert!(ct.lookup(&key, 101 * S + t.tcp_closed_ms - 1).is_some());
    assert!(ct.lookup(&key, 101 * S + t.tcp_closed_ms).is_none());
    // A fresh SYN on a closed or closing flow, from either end, ends it: the
    // packet is a new flow's first (a miss), and insert makes it afresh.
    ct.observe(&key, RST, 102 * S);
    assert!(ct.observe(&key, SYN, 103 * S).is_none());
    assert!(ct.lookup(&key, 103 * S).is_none(), "the old flow is gone");
    assert_eq!(ct.insert(&key, SYN, 7, 103 * S), InsertOutcome::Inserted);
    assert_eq!(ct.lookup(&key, 103 * S).unwrap().tag, 7, "with its own tag");
    ct.observe(&key.reversed(), FIN_ACK, 104 * S);
    assert!(ct.observe(&key.reversed(), SYN, 105 * S).is_none());
    // Retransmitted SYNs of an open attempt stay in it.
    ct.insert(&key, SYN, 8, 106 * S);
    assert_eq!(ct.observe(&key, SYN, 106 * S).unwrap().tag, 8);
    // Mid-stream pickup, and flows created by FIN or RST.
    let ct = table(64);
    ct.insert(&key, ACK, 0, 0);
    assert_eq!(state_at(&ct, &key, 0), Some(FlowState::Established));
    ct.insert(&key.reversed(), FIN_ACK, 0, 0);
    assert_eq!(state_at(&ct, &key, 0), Some(FlowState::Closing));
    let other = v4(TCP, [10, 0, 0, 9], 1, [10, 0, 0, 8], 2);
    ct.insert(&other, RST, 0, 0);
    assert_eq!(state_at(&ct, &other, 0), Some(FlowState::Closed));
}

#[test]
fn udp_one_way_then_both_ways() {
    let t = Timeouts::default();
    let ct = table(64);
    let key = v4(UDP, [10, 0, 0, 1], 5000, [10, 0, 0, 53], 53);
    ct.insert(&key, None, 3, 0);
    // More packets from the originator keep it one-way.
    assert_eq!(
        ct.observe(&key, None, 5 * S).unwrap().state,
        FlowState::UdpNew
    );
    assert!(ct.lookup(&key, 5 * S + t.udp_one_way_ms - 1).is_some());
    assert!(ct.lookup(&key, 5 * S + t.udp_one_way_ms).is_none());
    let ct = table(64);
    ct.insert(&key, None, 3, 0);
    let h = ct.observe(&key.reversed(), None, 10 * S).unwrap();
    assert_eq!(
        (h.state, h.direction),
        (FlowState::UdpEstablished, Direction::Reply)
    );
    assert_eq!(
        ct.observe(&key, None, 11 * S).unwrap().state,
        FlowState::UdpEstablished
    );
    assert!(ct.lookup(&key, 11 * S + t.udp_both_ways_ms - 1).is_some());
    assert!(ct.lookup(&key, 11 * S + t.udp_both_ways_ms).is_none());
}

#[test]
fn icmp_uses_its_timeout() {
    let t = Timeouts {
        icmp_ms: 7 * S,
        ..Timeouts::default()
    };
    let ct = Conntrack::new(ConntrackConfig {
        capacity: 16,
        timeouts: t,
        seed: SEED,
    });
    let echo = v4(1, [10, 0, 0, 1], 77, [10, 0, 0, 2], 77);
    ct.insert(&echo, None, 0, 0);
    let h = ct.observe(&echo.reversed(), None, S).unwrap();
    assert_eq!(h.direction, Direction::Reply);
    assert!(ct.lookup(&echo, S + 7 * S - 1).is_some());
    assert!(ct.lookup(&echo, S + 7 * S).is_none());
}

#[test]
fn refresh_happens_once_a_second() {
    let t = Timeouts::default();
    let ct = table(16);
    let key = v4(UDP, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2);
    ct.insert(&key, None, 0, 0);
    // Under a second behind: not rewritten, so the expiry stays put.
    ct.observe(&key, None, S - 1);
    assert!(ct.lookup(&key, t.udp_one_way_ms).is_none());
    ct.observe(&key, None, S);
    assert!(ct.lookup(&key, S + t.udp_one_way_ms - 1).is_some());
    assert!(ct.lookup(&key, S + t.udp_one_way_ms).is_none());
    // lookup never refreshes.
    ct.lookup(&key, 5 * S);
    assert!(ct.lookup(&key, S + t.udp_one_way_ms).is_none());
}

#[test]
fn families_never_collide() {
    let ct = table(256);
    let a = v4(UDP, [10, 0, 0, 1], 1000, [10, 0, 0, 2], 80);
    let mapped = |x: [u8; 4]| u128::from(Ipv4Addr::from(x).to_ipv6_mapped());
    let b = v6(UDP, mapped([10, 0, 0, 1]), 1000, mapped([10, 0, 0, 2]), 80);
    let c = v6(UDP, 0x0a00_0001, 1000, 0x0a00_0002, 80);
    ct.insert(&a, None, 4, 0);
    assert!(ct.lookup(&b, 0).is_none() && ct.lookup(&c, 0).is_none());
    ct.insert(&b, None, 6, 0);
    ct.insert(&c, None, 66, 0);
    assert_eq!(ct.len(), 3);
    assert_eq!(ct.lookup(&a.reversed(), 0).unwrap().tag, 4);
    assert_eq!(ct.lookup(&b.reversed(), 0).unwrap().tag, 6);
    assert_eq!(ct.lookup(&c.reversed(), 0).unwrap().tag, 66);
    // Same addresses, other protocol: another flow.
    assert!(ct.lookup(&FlowKey { protocol: TCP, ..a }, 0).is_none());
    let mut keys: Vec<FlowKey> = ct.entries(0).iter().map(|e| e.key).collect();
    keys.sort_by_key(|k| ct.lookup(k, 0).unwrap().tag);
    assert_eq!(keys, [a, b, c]);
}

#[test]
fn hard_bound_evicts_least_recently_seen() {
    let ct = table(60);
    assert_eq!(ct.capacity(), 64, "rounded up to 16 buckets of 4");
    let key = |i: u32| {
        v4(
            UDP,
            [10, 1, (i >> 8) as u8, i as u8],
            1000,
            [10, 2, 0, 1],
            53,
        )
    };
    let (mut inserted, mut evicting) = (0, 0);
    let n = 10 * ct.capacity() as u32;
    for i in 0..n {
        match ct.insert(&key(i), None, i, u64::from(i)) {
            InsertOutcome::Inserted => inserted += 1,
            InsertOutcome::InsertedEvicting => evicting += 1,
            other => panic!("{other:?}"),
        }
        assert!(ct.len() <= ct.capacity());
    }
    assert_eq!(ct.len(), inserted);
    assert_eq!(ct.evictions(), evicting);
    assert!(evicting >= u64::from(n) - 64);
    // A flow is evicted only after WAYS newer ones landed in its bucket.
    for i in n - WAYS as u32..n {
        assert_eq!(ct.lookup(&key(i), u64::from(n)).unwrap().tag, i);
    }
    // An observed (refreshed) flow outlives newer idle ones of its bucket.
    let ct = table(4);
    for i in 0..4 {
        ct.insert(&key(i), None, i, u64::from(i) * S);
    }
    ct.observe(&key(0), None, 10 * S);
    ct.insert(&key(4), None, 4, 11 * S);
    assert!(ct.lookup(&key(0), 11 * S).is_some());
    assert!(ct.lookup(&key(1), 11 * S).is_none());
}

#[test]
fn remove_either_direction() {
    let ct = table(16);
    let key = web();
    ct.insert(&key, SYN, 0, 0);
    assert!(ct.remove(&key.reversed()));
    assert!(!ct.remove(&key));
    assert!(ct.lookup(&key, 0).is_none());
    assert!(ct.is_empty());
}

#[test]
fn retain_removes_rejected_live_flows() {
    let ct = table(128);
    for i in 0..20u16 {
        ct.insert(
            &v4(UDP, [10, 0, 0, 1], i, [10, 0, 0, 2], 53),
            None,
            i.into(),
            0,
        );
    }
    let mut asked = 0;
    let removed = ct.retain(S, |e| {
        asked += 1;
        assert_eq!(e.key.src_port, e.tag as u16);
        e.tag % 2 == 0
    });
    assert_eq!((removed, asked, ct.len()), (10, 20, 10));
    assert!(ct.entries(S).iter().all(|e| e.tag % 2 == 0));
    // Expired flows are not offered (and are left to sweep).
    assert_eq!(ct.retain(10_000 * S, |_| false), 0);
    assert_eq!(ct.len(), 10);
}

#[test]
fn sweep_frees_expired_incrementally() {
    let t = Timeouts::default();
    let ct = table(256);
    let buckets = ct.capacity() / WAYS;
    for i in 0..40u16 {
        let now = if i < 30 { 0 } else { 20 * S };
        ct.insert(&v4(UDP, [10, 0, 0, 1], i, [10, 0, 0, 2], 53), None, 0, now);
    }
    let now = t.udp_one_way_ms;
    assert_eq!(ct.sweep(now - 1, buckets), 0);
    let mut freed = 0;
    for _ in 0..buckets {
        freed += ct.sweep(now, 1);
    }
    assert_eq!((freed, ct.len()), (30, 10));
    assert_eq!(ct.sweep(now, usize::MAX), 0, "whole table, once");
    assert_eq!(ct.sweep(20 * S + now, usize::MAX), 10);
    assert!(ct.is_empty());
}

#[test]
fn observe_hit_cost() {
    // A rough figure for the report (run with --nocapture); no assertion on time.
    let ct = table(1 << 16);
    let keys: Vec<FlowKey> = (0..1024u32)
        .map(|i| {
            v4(
                TCP,
                [10, 0, (i >> 8) as u8, i as u8],
                40000,
                [10, 9, 0, 1],
                443,
            )
        })
        .collect();
    for k in &keys {
        ct.insert(k, ACK, 1, 0);
    }
    let rounds = 200u64;
    let start = std::time::Instant::now();
    let mut hits = 0;
    for r in 0..rounds {
        for k in &keys {
            hits += usize::from(ct.observe(std::hint::black_box(k), ACK, r).is_some());
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds as f64 * keys.len() as f64);
    assert_eq!(hits, rounds as usize * keys.len());
    println!("conntrack observe hit: {ns:.1} ns/op");
}

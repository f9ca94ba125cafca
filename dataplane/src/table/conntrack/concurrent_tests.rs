//! Several threads on one table: no torn reads, the bound holds, counters stay exact.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// More keys than slots, so inserts evict all the time.
const KEYS: u32 = 1024;
const ITERATIONS: u64 = 100_000;
const THREADS: u64 = 4;

/// Key `i`: even indices IPv4 UDP, odd IPv6 TCP; addresses and ports all
/// derived from `i`, so a torn read would pair a key with another's tag.
fn key(i: u32) -> FlowKey {
    let port = 1000 + i as u16;
    if i.is_multiple_of(2) {
        FlowKey {
            src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)),
            dst: IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | i)),
            protocol: 17,
            src_port: port,
            dst_port: 53,
        }
    } else {
        FlowKey {
            src: IpAddr::V6(Ipv6Addr::from(0xfd00u128 << 112 | u128::from(i))),
            dst: IpAddr::V6(Ipv6Addr::from(0xfd01u128 << 112 | u128::from(i) << 64)),
            protocol: 6,
            src_port: port,
            dst_port: 443,
        }
    }
}

/// xorshift64*: a deterministic per-thread sequence.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn concurrent_insert_observe_remove_never_tears() {
    let ct = Conntrack::new(ConntrackConfig::new(256, [1, 2, 3, 4]));
    let hits = AtomicU64::new(0);
    let start = Barrier::new(THREADS as usize);
    let flags = Some(TcpFlags(TcpFlags::ACK));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (ct, hits, start) = (&ct, &hits, &start);
            scope.spawn(move || {
                start.wait();
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (t + 1);
                let mut local_hits = 0;
                for n in 0..ITERATIONS {
                    // Time moves forward (10 ms a step), so flows also expire.
                    let now = n * 10;
                    let r = next(&mut rng);
                    let i = (r % u64::from(KEYS)) as u32;
                    let k = key(i);
                    match (r >> 32) % 16 {
                        0..=5 => {
                            // Busy is allowed (a preempted lock holder); the flow just is not created.
                            ct.insert(&k, flags, i, now);
                        }
                        6..=9 => {
                            if let Some(hit) = ct.observe(&k, flags, now) {
                                assert_eq!((hit.tag, hit.direction), (i, Direction::Original));
                                local_hits += 1;
                            }
                        }
                        10..=13 => {
                            if let Some(hit) = ct.observe(&k.reversed(), flags, now) {
                                assert_eq!((hit.tag, hit.direction), (i, Direction::Reply));
                                local_hits += 1;
                            }
                        }
                        14 => {
                            ct.remove(&k);
                        }
                        _ => {
                            if let Some(hit) = ct.lookup(&k.reversed(), now) {
                                assert_eq!(hit.tag, i);
                            }
                            if n % 64 == 0 {
                                ct.sweep(now, 4);
                            }
                        }
                    }
                    assert!(ct.len() <= ct.capacity());
                    if t == 0 && n % 1024 == 0 {
                        for e in ct.entries(now) {
                            assert_eq!(e.key, key(e.tag), "entry torn");
                        }
                    }
                }
                hits.fetch_add(local_hits, Ordering::Relaxed);
            });
        }
    });
    assert!(hits.load(Ordering::Relaxed) > 0);
    assert!(ct.evictions() > 0);
    // Quiescent: the counter is exact, every occupied slot gets swept once.
    let occupied = ct.len();
    assert!(occupied <= ct.capacity());
    assert_eq!(ct.sweep(u64::MAX, usize::MAX), occupied);
    assert!(ct.is_empty());
}

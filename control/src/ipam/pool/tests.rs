use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn pool(subnets: &[&str]) -> PoolState {
    let subnets: Vec<IpNet> = subnets.iter().map(|s| net(s)).collect();
    PoolState::new(&subnets).unwrap()
}

fn ip4(pool: &mut PoolState, cid: &str) -> Ipv4Addr {
    pool.allocate(cid, "eth0").unwrap().ipv4.unwrap()
}

#[test]
fn allocation_is_idempotent() {
    let mut p = pool(&["10.244.1.0/24"]);
    let first = p.allocate("c1", "eth0").unwrap();
    assert_eq!(
        first.ipv4,
        Some(v4("10.244.1.2")),
        "network and health address skipped"
    );
    assert_eq!(first.ipv6, None);
    let before = p.clone();
    let again = p.decide_allocate("c1", "eth0").unwrap();
    assert_eq!(
        again,
        Decision {
            outcome: first,
            change: None
        }
    );
    assert_eq!(p.allocate("c1", "eth0").unwrap(), first);
    assert_eq!(
        p, before,
        "a repeated ADD changes nothing, not even the cursor"
    );
    let other_if = p.allocate("c1", "net1").unwrap();
    assert_eq!(other_if.ipv4, Some(v4("10.244.1.3")));
    assert_eq!(p.get("c1", "eth0"), Some(first));
    assert_eq!(p.list().len(), 2);
}

#[test]
fn empty_attachment_is_refused() {
    let mut p = pool(&["10.244.1.0/24"]);
    let err = p.allocate("", "eth0").unwrap_err();
    assert_eq!(
        err,
        IpamError::EmptyAttachment {
            what: "container id"
        }
    );
    assert!(err.to_string().contains("CNI_CONTAINERID"));
    assert!(matches!(
        p.allocate("c", ""),
        Err(IpamError::EmptyAttachment { .. })
    ));
    assert!(p.list().is_empty());
}

/// Fills `p` and returns the addresses in the order they came, then the exhaustion error.
fn fill(p: &mut PoolState) -> (Vec<Allocation>, IpamError) {
    let mut got = Vec::new();
    for i in 0.. {
        match p.allocate(&format!("c{i}"), "eth0") {
            Ok(a) => got.push(a),
            Err(e) => return (got, e),
        }
    }
    unreachable!()
}

#[test]
fn exhaustion_of_a_29() {
    let mut p = pool(&["10.244.1.0/29"]);
    let (got, err) = fill(&mut p);
    let addrs: Vec<_> = got.iter().map(|a| a.ipv4.unwrap()).collect();
    let want: Vec<_> = (2..=6).map(|i| v4(&format!("10.244.1.{i}"))).collect();
    assert_eq!(
        addrs, want,
        "not .0 (network), .1 (health) or .7 (broadcast)"
    );
    assert_eq!(
        err,
        IpamError::PoolExhausted {
            subnet: net("10.244.1.0/29"),
            allocated: 5,
            reserved: 0
        }
    );
    assert!(
        err.to_string()
            .starts_with("subnet 10.244.1.0/29 has no free address: 5 allocated"),
        "{err}"
    );
}

#[test]
fn exhaustion_of_a_30() {
    let mut p = pool(&["10.244.1.4/30"]);
    let (got, err) = fill(&mut p);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ipv4, Some(v4("10.244.1.6")));
    assert!(
        matches!(err, IpamError::PoolExhausted { allocated: 1, .. }),
        "{err}"
    );
}

#[test]
fn exhaustion_of_small_ipv6() {
    let mut p = pool(&["fd00:10:244:1::/126"]);
    let (got, err) = fill(&mut p);
    let addrs: Vec<_> = got.iter().map(|a| a.ipv6.unwrap()).collect();
    assert_eq!(
        addrs,
        vec![v6("fd00:10:244:1::2"), v6("fd00:10:244:1::3")],
        "no broadcast in v6"
    );
    assert!(
        matches!(err, IpamError::PoolExhausted { allocated: 2, .. }),
        "{err}"
    );
    let mut p = pool(&["fd00::/125"]);
    assert_eq!(fill(&mut p).0.len(), 6);
}

#[test]
fn released_address_is_reused_last() {
    let mut p = pool(&["10.244.1.0/29"]);
    assert_eq!(ip4(&mut p, "a"), v4("10.244.1.2"));
    assert_eq!(ip4(&mut p, "b"), v4("10.244.1.3"));
    assert_eq!(ip4(&mut p, "c"), v4("10.244.1.4"));
    let released = p.release("b", "eth0").unwrap();
    assert_eq!(released.allocation.ipv4, Some(v4("10.244.1.3")));
    assert_eq!(
        ip4(&mut p, "d"),
        v4("10.244.1.5"),
        "not the just-released .3"
    );
    assert_eq!(ip4(&mut p, "e"), v4("10.244.1.6"));
    assert_eq!(ip4(&mut p, "f"), v4("10.244.1.3"), "wraps, then reuses");
    p.release("a", "eth0");
    p.release("e", "eth0");
    assert_eq!(
        ip4(&mut p, "g"),
        v4("10.244.1.6"),
        "after .3: .4 and .5 held, .6 free"
    );
    assert_eq!(ip4(&mut p, "h"), v4("10.244.1.2"), "then wrap to .2");
    assert!(p.allocate("i", "eth0").is_err());
}

#[test]
fn release_is_tolerant_and_exact() {
    let mut p = pool(&["10.244.1.0/24"]);
    assert_eq!(p.release("nobody", "eth0"), None);
    assert_eq!(p.decide_release("nobody", "eth0").change, None);
    p.allocate("abc", "eth0").unwrap();
    p.allocate("abc", "net1").unwrap();
    p.allocate("abcd", "eth0").unwrap();
    p.allocate("ab", "eth0").unwrap();
    let gone = p.release_container("abc");
    let names: Vec<_> = gone.iter().map(|l| l.attachment.ifname.as_str()).collect();
    assert_eq!(names, ["eth0", "net1"]);
    assert!(gone.iter().all(|l| l.attachment.container_id == "abc"));
    let left: Vec<_> = p
        .list()
        .into_iter()
        .map(|l| l.attachment.container_id)
        .collect();
    assert_eq!(left, ["ab", "abcd"]);
    assert!(p.release_container("abc").is_empty());
}

#[test]
fn gc_keeps_live_and_releases_the_rest() {
    let mut p = pool(&["10.244.1.0/24"]);
    for cid in ["a", "b", "c"] {
        p.allocate(cid, "eth0").unwrap();
    }
    p.allocate("b", "net1").unwrap();
    let kept_b = p.get("b", "eth0");
    let live = [("b", "eth0"), ("c", "eth0"), ("ghost", "eth0")];
    let released = p.gc(&live);
    let keys: Vec<_> = released
        .iter()
        .map(|l| {
            (
                l.attachment.container_id.as_str(),
                l.attachment.ifname.as_str(),
            )
        })
        .collect();
    assert_eq!(keys, [("a", "eth0"), ("b", "net1")]);
    assert_eq!(p.get("b", "eth0"), kept_b);
    assert_eq!(p.list().len(), 2);
    let owned = vec![("b".to_string(), "eth0".to_string())];
    assert_eq!(p.gc(&owned).len(), 1);
    assert!(p.gc::<&str, &str>(&[]).len() == 1 && p.list().is_empty());
}

#[test]
fn dual_stack_gives_one_address_per_family() {
    let mut p = pool(&["10.244.1.0/30", "fd00:10:244:1::/64"]);
    let a = p.allocate("c1", "eth0").unwrap();
    assert_eq!(a.ipv4, Some(v4("10.244.1.2")));
    assert_eq!(a.ipv6, Some(v6("fd00:10:244:1::2")));
    assert_eq!(a.addrs().count(), 2);
    // IPv4 is exhausted: the whole allocation fails and IPv6 is not consumed.
    let err = p.allocate("c2", "eth0").unwrap_err();
    assert!(
        matches!(err, IpamError::PoolExhausted { subnet, .. } if subnet == net("10.244.1.0/30"))
    );
    assert_eq!(p.list().len(), 1);
    p.release("c1", "eth0");
    let b = p.allocate("c3", "eth0").unwrap();
    assert_eq!(b.ipv4, Some(v4("10.244.1.2")));
    assert_eq!(
        b.ipv6,
        Some(v6("fd00:10:244:1::3")),
        "each family has its own cursor"
    );
}

#[test]
fn invalid_pools_are_refused() {
    let bad = |s: &[&str]| {
        let subnets: Vec<IpNet> = s.iter().map(|s| net(s)).collect();
        PoolState::new(&subnets).unwrap_err()
    };
    assert_eq!(bad(&[]), IpamError::NoCidr);
    assert!(matches!(
        bad(&["10.244.1.0/31"]),
        IpamError::SubnetLenTooLong { .. }
    ));
    assert!(matches!(
        bad(&["fd00::/127"]),
        IpamError::SubnetLenTooLong { .. }
    ));
    assert!(matches!(
        bad(&["10.244.1.7/24"]),
        IpamError::HostBitsSet { .. }
    ));
    let err = bad(&["10.244.1.0/24", "10.244.2.0/24"]);
    assert!(
        matches!(
            err,
            IpamError::DuplicateFamily {
                family: Family::V4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn reserved_addresses_are_skipped() {
    let mut p = pool(&["10.244.1.0/29"]);
    p.reserve(IpAddr::V4(v4("10.244.1.2"))).unwrap();
    p.reserve(IpAddr::V4(v4("10.244.1.4"))).unwrap();
    assert_eq!(ip4(&mut p, "a"), v4("10.244.1.3"));
    assert_eq!(ip4(&mut p, "b"), v4("10.244.1.5"));
    assert_eq!(ip4(&mut p, "c"), v4("10.244.1.6"));
    let err = p.allocate("d", "eth0").unwrap_err();
    assert_eq!(
        err,
        IpamError::PoolExhausted {
            subnet: net("10.244.1.0/29"),
            allocated: 3,
            reserved: 2
        }
    );
    for never in [
        "10.244.1.0",
        "10.244.1.1",
        "10.244.1.7",
        "10.244.2.2",
        "fd00::2",
    ] {
        let err = p.reserve(never.parse().unwrap()).unwrap_err();
        assert!(
            matches!(err, IpamError::NotAllocatable { .. }),
            "{never}: {err}"
        );
    }
    let err = p.reserve(IpAddr::V4(v4("10.244.1.3"))).unwrap_err();
    assert!(matches!(err, IpamError::AddressInUse { .. }), "{err}");
    assert!(
        err.to_string().contains("container a interface eth0"),
        "{err}"
    );
    assert!(p.unreserve(IpAddr::V4(v4("10.244.1.2"))));
    assert!(!p.unreserve(IpAddr::V4(v4("10.244.1.2"))));
    assert_eq!(ip4(&mut p, "d"), v4("10.244.1.2"));
    assert_eq!(p.reserved().len(), 1);
}

#[test]
fn decide_persist_commit() {
    let mut p = pool(&["10.244.1.0/24"]);
    let before = p.clone();
    let d1 = p.decide_allocate("c1", "eth0").unwrap();
    let d2 = p.decide_allocate("c2", "eth0").unwrap();
    assert_eq!(p, before, "deciding changes nothing");
    assert_eq!(d1.outcome, d2.outcome, "both decided from the same state");
    let (c1, c2) = (d1.change.unwrap(), d2.change.unwrap());
    // The change is what gets persisted: it round-trips through JSON.
    let json = serde_json::to_string(&c1).unwrap();
    assert!(
        json.contains(r#""op":"assign""#) && json.contains(r#""container_id":"c1""#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), c1);
    p.apply(&c1).unwrap();
    p.apply(&c1).unwrap();
    assert_eq!(p.list().len(), 1, "replaying an applied change is a no-op");
    let after_c1 = p.clone();
    let err = p.apply(&c2).unwrap_err();
    assert!(
        matches!(err, IpamError::AddressInUse { .. }),
        "a stale decision never duplicates: {err}"
    );
    assert_eq!(p, after_c1, "a failed apply changes nothing");
    // A stale assign for an attachment that has since got other addresses.
    let other = Lease {
        attachment: Attachment::new("c1", "eth0").unwrap(),
        allocation: Allocation {
            ipv4: Some(v4("10.244.1.9")),
            ipv6: None,
        },
    };
    let err = p
        .apply(&Change::Assign {
            lease: other.clone(),
        })
        .unwrap_err();
    assert!(matches!(err, IpamError::AlreadyAllocated { .. }), "{err}");
    // A stale release does not remove a newer lease of the same attachment.
    p.apply(&Change::Release {
        leases: vec![other],
    })
    .unwrap();
    assert_eq!(p, after_c1);
    let release = p.decide_release("c1", "eth0").change.unwrap();
    p.apply(&release).unwrap();
    p.apply(&release).unwrap();
    assert!(p.list().is_empty());
}

#[test]
fn serde_round_trip_of_the_state() {
    let mut p = pool(&["10.244.1.0/24", "fd00:10:244:1::/64"]);
    p.reserve(IpAddr::V4(v4("10.244.1.10"))).unwrap();
    for cid in ["a", "b", "c"] {
        p.allocate(cid, "eth0").unwrap();
    }
    p.release("b", "eth0");
    let json = serde_json::to_string(&p).unwrap();
    let back: PoolState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    // The cursor survived: the next address continues round-robin.
    let (mut x, mut y) = (p, back);
    assert_eq!(
        x.allocate("d", "eth0").unwrap(),
        y.allocate("d", "eth0").unwrap()
    );
    assert_eq!(y.get("d", "eth0").unwrap().ipv4, Some(v4("10.244.1.5")));
}

#[test]
fn deserialization_rechecks_invariants() {
    let dup = r#"{"v4":"10.244.1.0/24","v6":null,"leases":[
        {"container_id":"a","ifname":"eth0","ipv4":"10.244.1.2","ipv6":null},
        {"container_id":"b","ifname":"eth0","ipv4":"10.244.1.2","ipv6":null}]}"#;
    let err = serde_json::from_str::<PoolState>(dup).unwrap_err();
    assert!(
        err.to_string().contains("already allocated to container a"),
        "{err}"
    );
    let outside = r#"{"v4":"10.244.1.0/24","v6":null,"leases":[
        {"container_id":"a","ifname":"eth0","ipv4":"10.244.2.2","ipv6":null}]}"#;
    assert!(serde_json::from_str::<PoolState>(outside).is_err());
    let health = r#"{"v4":"10.244.1.0/24","v6":null,"leases":[
        {"container_id":"a","ifname":"eth0","ipv4":"10.244.1.1","ipv6":null}]}"#;
    assert!(serde_json::from_str::<PoolState>(health).is_err());
}

#[test]
fn restore_from_store_records() {
    let lease = |cid: &str, ip: &str| Lease {
        attachment: Attachment::new(cid, "eth0").unwrap(),
        allocation: Allocation {
            ipv4: Some(v4(ip)),
            ipv6: None,
        },
    };
    let records = [
        lease("a", "10.244.1.7"),
        lease("b", "10.244.1.3"),
        lease("c", "10.244.9.3"),
        lease("d", "10.244.1.7"),
    ];
    let (mut p, rejected) = PoolState::restore(&[net("10.244.1.0/24")], records).unwrap();
    let why: Vec<_> = rejected
        .iter()
        .map(|(l, _)| l.attachment.container_id.as_str())
        .collect();
    assert_eq!(why, ["c", "d"]);
    assert!(matches!(rejected[0].1, IpamError::NotAllocatable { .. }));
    assert!(matches!(rejected[1].1, IpamError::AddressInUse { .. }));
    assert_eq!(
        ip4(&mut p, "e"),
        v4("10.244.1.8"),
        "cursor after the highest lease"
    );
}

/// Random allocate/release/release_container/gc against a model; after every step no
/// address is held twice, every address is a pod address, and the pool agrees with
/// the model.
#[test]
fn random_operations_never_duplicate() {
    let mut rng = StdRng::seed_from_u64(0x7eed);
    let subnets = [net("10.244.1.0/27"), net("fd00:10:244:1::/123")];
    let mut p = PoolState::new(&subnets).unwrap();
    p.reserve(IpAddr::V4(v4("10.244.1.20"))).unwrap();
    // 29 IPv4 pod addresses, one reserved; 30 IPv6 ones: IPv4 runs out first.
    let capacity = 28;
    let mut model: BTreeMap<(String, String), Allocation> = BTreeMap::new();
    let mut exhausted = 0;
    for step in 0..10_000 {
        let cid = format!("c{}", rng.random_range(0..40));
        let ifname = ["eth0", "net1"][rng.random_range(0..2)].to_string();
        match rng.random_range(0..10) {
            0..6 => match p.allocate(&cid, &ifname) {
                Ok(a) => {
                    let key = (cid, ifname);
                    if let Some(old) = model.get(&key) {
                        assert_eq!(*old, a, "step {step}: not idempotent");
                    }
                    model.insert(key, a);
                }
                Err(IpamError::PoolExhausted { .. }) => {
                    assert_eq!(model.len(), capacity, "step {step}: exhausted too early");
                    exhausted += 1;
                }
                Err(e) => panic!("step {step}: {e}"),
            },
            6..8 => {
                let got = p.release(&cid, &ifname).map(|l| l.allocation);
                assert_eq!(got, model.remove(&(cid, ifname)), "step {step}");
            }
            8 => {
                let n = p.release_container(&cid).len();
                let before = model.len();
                model.retain(|(c, _), _| *c != cid);
                assert_eq!(n, before - model.len(), "step {step}");
            }
            _ => {
                let live: Vec<(String, String)> = model
                    .keys()
                    .filter(|_| rng.random_bool(0.8))
                    .cloned()
                    .collect();
                p.gc(&live);
                model.retain(|k, _| live.contains(k));
            }
        }
        let leases = p.list();
        assert_eq!(leases.len(), model.len(), "step {step}");
        let mut seen = BTreeSet::new();
        for l in &leases {
            let key = (
                l.attachment.container_id.clone(),
                l.attachment.ifname.clone(),
            );
            assert_eq!(model.get(&key), Some(&l.allocation), "step {step}");
            assert!(l.allocation.ipv4.is_some() && l.allocation.ipv6.is_some());
            for addr in l.allocation.addrs() {
                assert!(seen.insert(addr), "step {step}: {addr} handed out twice");
                assert!(p.check_allocatable(addr).is_ok() && !p.reserved.contains(&addr));
            }
        }
        assert_eq!(p.used.len(), seen.len(), "step {step}: index out of sync");
    }
    assert!(
        exhausted > 0,
        "the run should reach exhaustion at least once"
    );
    let back: PoolState = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}

use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| net(s)).collect()
}

#[test]
fn default_is_flannels() {
    let plan = SubnetPlan::default_v4();
    assert_eq!(
        plan,
        SubnetPlan::parse(DEFAULT_CLUSTER_V4, DEFAULT_SUBNET_LEN_V4).unwrap()
    );
    assert_eq!(plan.subnet_count(), 256);
    assert_eq!(plan.subnet(0), Some(net("10.244.0.0/24")));
    assert_eq!(plan.subnet(255), Some(net("10.244.255.0/24")));
    assert_eq!(plan.subnet(256), None);
    assert_eq!(ClusterPlan::default().get(Family::V4), Some(&plan));
}

#[test]
fn lowest_free_subnet_first() {
    let plan = SubnetPlan::default_v4();
    assert_eq!(
        plan.choose(Order::Lowest, None, &[]).unwrap(),
        net("10.244.0.0/24")
    );
    let taken = nets(&["10.244.0.0/24", "10.244.1.0/24", "10.244.3.0/24"]);
    assert_eq!(
        plan.choose(Order::Lowest, None, &taken).unwrap(),
        net("10.244.2.0/24")
    );
    let order: Vec<_> = plan
        .candidates(Order::Lowest, None, &taken)
        .unwrap()
        .take(3)
        .collect();
    assert_eq!(
        order,
        nets(&["10.244.2.0/24", "10.244.4.0/24", "10.244.5.0/24"])
    );
}

#[test]
fn previous_subnet_is_preferred_and_not_repeated() {
    let plan = SubnetPlan::default_v4();
    let taken = nets(&["10.244.0.0/24"]);
    let prev = Some(net("10.244.7.0/24"));
    let all: Vec<_> = plan
        .candidates(Order::Lowest, prev, &taken)
        .unwrap()
        .collect();
    assert_eq!(all[0], net("10.244.7.0/24"));
    assert_eq!(all[1], net("10.244.1.0/24"));
    assert_eq!(all.len(), 255, "every free subnet exactly once");
    assert_eq!(
        all.iter().filter(|n| **n == net("10.244.7.0/24")).count(),
        1
    );
}

#[test]
fn previous_subnet_held_by_another_or_misfit_is_not_preferred() {
    let plan = SubnetPlan::default_v4();
    let taken = nets(&["10.244.7.0/24"]);
    let chosen = plan
        .choose(Order::Lowest, Some(net("10.244.7.0/24")), &taken)
        .unwrap();
    assert_eq!(chosen, net("10.244.0.0/24"));
    for misfit in ["10.244.7.0/25", "10.245.7.0/24", "10.244.7.0/23"] {
        let chosen = plan.choose(Order::Lowest, Some(net(misfit)), &[]).unwrap();
        assert_eq!(chosen, net("10.244.0.0/24"), "{misfit}");
    }
}

#[test]
fn previous_of_other_family_is_refused() {
    let plan = SubnetPlan::default_v4();
    let err = plan
        .choose(Order::Lowest, Some(net("fd00::/64")), &[])
        .unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::FamilyMismatch {
                expected: Family::V4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn taken_of_other_family_is_ignored() {
    let plan = SubnetPlan::default_v4();
    let taken = nets(&["fd00::/64", "10.244.0.0/24"]);
    assert_eq!(
        plan.choose(Order::Lowest, None, &taken).unwrap(),
        net("10.244.1.0/24")
    );
}

#[test]
fn overlapping_leases_of_another_length_block_their_subnets() {
    let plan = SubnetPlan::default_v4();
    // A /23 lease from an older configuration, a /25 inside .4, and a /8 elsewhere.
    let taken = nets(&["10.244.0.0/23", "10.244.2.128/25", "10.0.0.0/16"]);
    let first: Vec<_> = plan
        .candidates(Order::Lowest, None, &taken)
        .unwrap()
        .take(2)
        .collect();
    assert_eq!(first, nets(&["10.244.3.0/24", "10.244.4.0/24"]));
}

#[test]
fn a_supernet_lease_exhausts_the_cluster() {
    let plan = SubnetPlan::default_v4();
    let err = plan
        .choose(Order::Lowest, None, &nets(&["10.0.0.0/8"]))
        .unwrap_err();
    assert!(
        matches!(err, IpamError::ClusterExhausted { count: 256, .. }),
        "{err}"
    );
}

#[test]
fn cluster_exhaustion() {
    let plan = SubnetPlan::parse("10.244.0.0/22", 24).unwrap();
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(plan.choose(Order::Lowest, None, &taken).unwrap());
    }
    let err = plan.choose(Order::Lowest, None, &taken).unwrap_err();
    assert_eq!(
        err,
        IpamError::ClusterExhausted {
            cluster: net("10.244.0.0/22"),
            subnet_len: 24,
            count: 4
        }
    );
    assert!(
        err.to_string()
            .contains("all 4 /24 subnets are held by other nodes"),
        "{err}"
    );
    assert_eq!(
        plan.candidates(Order::Lowest, None, &taken)
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn ipv6_64s_from_a_48() {
    let plan = SubnetPlan::parse("fd00:10:244::/48", DEFAULT_SUBNET_LEN_V6).unwrap();
    assert_eq!(plan.family(), Family::V6);
    assert_eq!(plan.subnet_count(), 65_536);
    assert_eq!(
        plan.choose(Order::Lowest, None, &[]).unwrap(),
        net("fd00:10:244::/64")
    );
    let taken = nets(&["fd00:10:244::/64", "fd00:10:244:1::/64"]);
    assert_eq!(
        plan.choose(Order::Lowest, None, &taken).unwrap(),
        net("fd00:10:244:2::/64")
    );
    assert_eq!(plan.subnet(65_535), Some(net("fd00:10:244:ffff::/64")));
}

#[test]
fn ipv6_64_cluster_with_64_subnets_serves_one_node() {
    let plan = SubnetPlan::parse("fd00:10:244:1::/64", 64).unwrap();
    let only = plan.choose(Order::Lowest, None, &[]).unwrap();
    assert_eq!(only, net("fd00:10:244:1::/64"));
    let err = plan.choose(Order::Lowest, None, &[only]).unwrap_err();
    assert!(
        matches!(err, IpamError::ClusterExhausted { count: 1, .. }),
        "{err}"
    );
}

#[test]
fn huge_ipv6_space_with_a_huge_taken_run_is_walked_fast() {
    // 2^32 subnets, the first 2^31 covered by one lease: the walk must jump, not step.
    let plan = SubnetPlan::parse("fd00::/32", 64).unwrap();
    let taken = nets(&["fd00::/33"]);
    assert_eq!(
        plan.choose(Order::Lowest, None, &taken).unwrap(),
        net("fd00:0:8000::/64")
    );
    let taken = nets(&["fd00:0:8000::/33"]);
    let by_name = plan
        .candidates(Order::ByName("node-x"), None, &taken)
        .unwrap();
    assert!(by_name.take(3).all(|n| !taken[0].contains(&n)));
}

#[test]
fn by_name_is_deterministic_spread_and_complete() {
    let plan = SubnetPlan::default_v4();
    let a = plan.choose(Order::ByName("node-a"), None, &[]).unwrap();
    assert_eq!(a, plan.choose(Order::ByName("node-a"), None, &[]).unwrap());
    let starts: std::collections::BTreeSet<_> = (0..20)
        .map(|i| {
            plan.choose(Order::ByName(&format!("node-{i}")), None, &[])
                .unwrap()
        })
        .collect();
    assert!(starts.len() > 10, "names should spread: {starts:?}");
    // The ring wraps: every subnet still appears exactly once.
    let taken = vec![a];
    let all: std::collections::BTreeSet<_> = plan
        .candidates(Order::ByName("node-a"), None, &taken)
        .unwrap()
        .collect();
    assert_eq!(all.len(), 255);
    assert!(!all.contains(&a));
    // The previous subnet still wins over the hash.
    let prev = net("10.244.200.0/24");
    assert_eq!(
        plan.choose(Order::ByName("node-a"), Some(prev), &[])
            .unwrap(),
        prev
    );
}

#[test]
fn invalid_inputs() {
    let err = SubnetPlan::parse("10.244.1.5/16", 24).unwrap_err();
    assert_eq!(
        err,
        IpamError::HostBitsSet {
            given: net("10.244.1.5/16"),
            network: net("10.244.0.0/16")
        }
    );
    assert!(err.to_string().contains("write it as 10.244.0.0/16"));
    assert!(matches!(
        SubnetPlan::parse("10.244.0.0", 24),
        Err(IpamError::ParseCidr { .. })
    ));
    assert!(matches!(
        SubnetPlan::parse("10.244.0.0/33", 24),
        Err(IpamError::ParseCidr { .. })
    ));
    assert!(matches!(
        SubnetPlan::parse("banana", 24),
        Err(IpamError::ParseCidr { .. })
    ));
    let err = SubnetPlan::parse("10.244.0.0/16", 8).unwrap_err();
    assert!(
        matches!(err, IpamError::SubnetLenShorterThanCluster { max: 30, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("from /16 to /30"), "{err}");
    let err = SubnetPlan::parse("10.244.0.0/16", 31).unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::SubnetLenTooLong {
                family: Family::V4,
                ..
            }
        ),
        "{err}"
    );
    // An IPv6 length on an IPv4 cluster: the family's limit says so.
    let err = SubnetPlan::parse("10.244.0.0/16", 64).unwrap_err();
    assert!(err.to_string().contains("too long for IPv4"), "{err}");
    assert!(SubnetPlan::parse("fd00::/48", 127).is_err());
    assert!(SubnetPlan::parse("fd00::/48", 126).is_ok());
    assert!(SubnetPlan::parse("10.244.0.0/16", 30).is_ok());
    assert!(
        SubnetPlan::parse("10.244.0.0/16", 16).is_ok(),
        "one subnet: allowed"
    );
}

#[test]
fn cluster_plan_families() {
    let v4 = SubnetPlan::default_v4();
    let v6 = SubnetPlan::parse("fd00:10:244::/48", 64).unwrap();
    let both = ClusterPlan::new(&[v6, v4]).unwrap();
    assert_eq!(both.plans().copied().collect::<Vec<_>>(), vec![v4, v6]);
    assert_eq!(
        both.plan_for("fd00:10:244:3::9".parse().unwrap()),
        Some(&v6)
    );
    let other = SubnetPlan::parse("10.245.0.0/16", 24).unwrap();
    let err = ClusterPlan::new(&[v4, other]).unwrap_err();
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
    assert_eq!(ClusterPlan::new(&[]).unwrap_err(), IpamError::NoCidr);
}

#[test]
fn serde_round_trip_validates() {
    let v6 = SubnetPlan::parse("fd00:10:244::/48", 64).unwrap();
    let cluster = ClusterPlan::new(&[SubnetPlan::default_v4(), v6]).unwrap();
    let json = serde_json::to_string(&cluster).unwrap();
    assert_eq!(serde_json::from_str::<ClusterPlan>(&json).unwrap(), cluster);
    let bad = r#"{"cluster":"10.244.0.0/16","subnet_len":8}"#;
    assert!(serde_json::from_str::<SubnetPlan>(bad).is_err());
    let swapped = r#"{"v4":{"cluster":"fd00::/48","subnet_len":64},"v6":null}"#;
    assert!(serde_json::from_str::<ClusterPlan>(swapped).is_err());
}

//! Allocating the addresses a runtime asked for (CNI `IP=` in `CNI_ARGS`, the
//! `ips` capability): exactly those, or a typed refusal; never others.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{IpamError, PoolState, in_use};
use crate::ipam::family::Family;
use crate::ipam::lease::{Allocation, Attachment, Change, Decision, Lease};

impl PoolState {
    /// Decides the addresses of an attachment, taking `wanted` (at most one per
    /// family) as they are and picking round-robin for a family not named.
    /// An attachment that already holds addresses gets them back if they are
    /// the wanted ones and an error otherwise; a wanted address outside the
    /// pod range, held by another attachment or reserved is refused.
    pub fn decide_allocate_wanted(
        &self,
        container_id: &str,
        ifname: &str,
        wanted: &[IpAddr],
    ) -> Result<Decision<Allocation>, IpamError> {
        let (mut want_v4, mut want_v6) = (None::<Ipv4Addr>, None::<Ipv6Addr>);
        for &addr in wanted {
            let first = match addr {
                IpAddr::V4(a) => want_v4.replace(a).map(IpAddr::V4),
                IpAddr::V6(a) => want_v6.replace(a).map(IpAddr::V6),
            };
            if let Some(first) = first.filter(|f| *f != addr) {
                return Err(IpamError::WantedTwice {
                    family: Family::of(addr),
                    first,
                    second: addr,
                });
            }
        }
        let attachment = Attachment::new(container_id, ifname)?;
        if let Some(&held) = self.leases.get(&attachment) {
            let differs = want_v4.is_some_and(|a| held.ipv4 != Some(a))
                || want_v6.is_some_and(|a| held.ipv6 != Some(a));
            if differs {
                return Err(IpamError::HoldsOthers {
                    container_id: container_id.to_owned(),
                    ifname: ifname.to_owned(),
                    held: join(held.addrs()),
                    wanted: join(wanted.iter().copied()),
                });
            }
            return Ok(Decision {
                outcome: held,
                change: None,
            });
        }
        for addr in want_v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(want_v6.map(IpAddr::V6))
        {
            self.check_allocatable(addr)?;
            if let Some(holder) = self.used.get(&addr) {
                return Err(in_use(addr, holder));
            }
            if self.reserved.contains(&addr) {
                return Err(IpamError::AddressReserved { addr });
            }
        }
        let picked = self.decide_allocate(container_id, ifname)?.outcome;
        let allocation = Allocation {
            ipv4: want_v4.or(picked.ipv4),
            ipv6: want_v6.or(picked.ipv6),
        };
        Ok(Decision {
            outcome: allocation,
            change: Some(Change::Assign {
                lease: Lease {
                    attachment,
                    allocation,
                },
            }),
        })
    }
}

fn join(addrs: impl Iterator<Item = IpAddr>) -> String {
    addrs.map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use ipnet::IpNet;

    use super::*;

    fn pool(subnets: &[&str]) -> PoolState {
        let subnets: Vec<IpNet> = subnets.iter().map(|s| s.parse().unwrap()).collect();
        PoolState::new(&subnets).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn take(p: &mut PoolState, cid: &str, wanted: &[IpAddr]) -> Result<Allocation, IpamError> {
        let d = p.decide_allocate_wanted(cid, "eth0", wanted)?;
        if let Some(c) = &d.change {
            p.apply(c)?;
        }
        Ok(d.outcome)
    }

    #[test]
    fn the_wanted_address_is_the_one_given() {
        let mut p = pool(&["10.244.1.0/24"]);
        let a = take(&mut p, "c1", &[ip("10.244.1.250")]).unwrap();
        assert_eq!(a.ipv4, Some("10.244.1.250".parse().unwrap()));
        // Idempotent with the same wish, and without one.
        assert_eq!(take(&mut p, "c1", &[ip("10.244.1.250")]).unwrap(), a);
        assert_eq!(take(&mut p, "c1", &[]).unwrap(), a);
        // Unwanted allocations go on round-robin and never hand it out again.
        let b = take(&mut p, "c2", &[]).unwrap();
        assert_eq!(b.ipv4, Some("10.244.1.251".parse().unwrap()));
    }

    #[test]
    fn a_family_not_named_is_picked() {
        let mut p = pool(&["10.244.1.0/24", "fd00:1::/64"]);
        let a = take(&mut p, "c1", &[ip("fd00:1::99")]).unwrap();
        assert_eq!(a.ipv6, Some("fd00:1::99".parse().unwrap()));
        assert_eq!(a.ipv4, Some("10.244.1.2".parse().unwrap()));
    }

    #[test]
    fn refusals_are_typed() {
        let mut p = pool(&["10.244.1.0/24"]);
        take(&mut p, "c1", &[ip("10.244.1.7")]).unwrap();
        let e = |p: &mut PoolState, cid: &str, w: &[&str]| {
            let w: Vec<IpAddr> = w.iter().map(|s| ip(s)).collect();
            take(p, cid, &w).unwrap_err()
        };
        assert!(matches!(
            e(&mut p, "c2", &["10.9.9.9"]),
            IpamError::NotAllocatable { .. }
        ));
        assert!(matches!(
            e(&mut p, "c2", &["10.244.1.1"]),
            IpamError::NotAllocatable { .. }
        ));
        assert!(matches!(
            e(&mut p, "c2", &["10.244.1.255"]),
            IpamError::NotAllocatable { .. }
        ));
        assert!(matches!(
            e(&mut p, "c2", &["fd00::1"]),
            IpamError::NotAllocatable { .. }
        ));
        assert!(matches!(
            e(&mut p, "c2", &["10.244.1.7"]),
            IpamError::AddressInUse { .. }
        ));
        assert!(matches!(
            e(&mut p, "c2", &["10.244.1.8", "10.244.1.9"]),
            IpamError::WantedTwice { .. }
        ));
        assert!(matches!(
            e(&mut p, "c1", &["10.244.1.8"]),
            IpamError::HoldsOthers { .. }
        ));
        p.reserve(ip("10.244.1.20")).unwrap();
        assert!(matches!(
            e(&mut p, "c2", &["10.244.1.20"]),
            IpamError::AddressReserved { .. }
        ));
        assert_eq!(p.list().len(), 1, "no refusal took anything");
    }
}

//! Pod IPAM: addresses for a node's pods from the node's subnet(s).
//!
//! A [`PoolState`] serves at most one IPv4 and one IPv6 subnet (dual-stack gives every
//! attachment one address of each). Its contract:
//!
//! - **Idempotent**: the same (container id, ifname) gets the same addresses back for
//!   as long as it holds them; a repeated ADD changes nothing.
//! - **Never twice**: an address is held by at most one attachment, checked again when
//!   a change is applied, so a stale decision fails instead of duplicating.
//! - **Reserved addresses**: a subnet's network address and first host address (the
//!   node's health endpoint), and for IPv4 the broadcast address, are never handed out;
//!   so a `/24` has 253 pod addresses, a `/29` 5, a `/30` 1, an IPv6 `/126` 2. The
//!   caller can reserve more ([`PoolState::reserve`]).
//! - **Round-robin**, like host-local: each family keeps the last address it handed out
//!   and the search starts just after it, wrapping at the end of the subnet, so a
//!   just-released address is reused only after every other free one.
//!
//! Decide, persist, commit: the `decide_*` methods take `&self` and return a
//! [`Decision`] whose [`Change`] the caller persists before calling
//! [`PoolState::apply`]; a crash in between loses nothing. The plain `allocate`,
//! `release`, … do both in memory, for callers that persist the whole state after.
//!
//! The state serializes as its subnets, leases, reservations and cursors; the address
//! index is rebuilt, and every invariant rechecked, on deserialization.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::error::IpamError;
use super::family::{Family, bounds, to_u128};
use super::lease::{Allocation, Attachment, Change, Decision, Lease};
use super::subnet::{check_network, max_subnet_len};

/// The addresses of one node and who holds them. See the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawPool", into = "RawPool")]
pub struct PoolState {
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
    leases: BTreeMap<Attachment, Allocation>,
    reserved: BTreeSet<IpAddr>,
    last_v4: Option<Ipv4Addr>,
    last_v6: Option<Ipv6Addr>,
    /// Index of `leases` by address; derived, never serialized.
    used: BTreeMap<IpAddr, Attachment>,
}

/// The serialized form of [`PoolState`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RawPool {
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
    leases: Vec<Lease>,
    #[serde(default)]
    reserved: BTreeSet<IpAddr>,
    #[serde(default)]
    last_v4: Option<Ipv4Addr>,
    #[serde(default)]
    last_v6: Option<Ipv6Addr>,
}

impl From<PoolState> for RawPool {
    fn from(pool: PoolState) -> Self {
        RawPool {
            v4: pool.v4,
            v6: pool.v6,
            leases: pool.list(),
            reserved: pool.reserved,
            last_v4: pool.last_v4,
            last_v6: pool.last_v6,
        }
    }
}

impl TryFrom<RawPool> for PoolState {
    type Error = IpamError;
    fn try_from(raw: RawPool) -> Result<Self, IpamError> {
        let subnets: Vec<IpNet> = raw
            .v4
            .map(IpNet::V4)
            .into_iter()
            .chain(raw.v6.map(IpNet::V6))
            .collect();
        let mut pool = PoolState::new(&subnets)?;
        for addr in raw.reserved {
            pool.reserve(addr)?;
        }
        for lease in raw.leases {
            pool.insert(lease)?;
        }
        pool.last_v4 = raw.last_v4;
        pool.last_v6 = raw.last_v6;
        Ok(pool)
    }
}

/// The first and last pod address of a node subnet, as integers.
fn allocatable(subnet: &IpNet) -> (u128, u128) {
    let (network, broadcast) = bounds(subnet);
    match subnet {
        IpNet::V4(_) => (network + 2, broadcast - 1),
        IpNet::V6(_) => (network + 2, broadcast),
    }
}

impl PoolState {
    /// An empty pool over the node's subnets: one or two, at most one per family, each
    /// a network with room for at least one pod.
    pub fn new(subnets: &[IpNet]) -> Result<Self, IpamError> {
        let mut pool = PoolState {
            v4: None,
            v6: None,
            leases: BTreeMap::new(),
            reserved: BTreeSet::new(),
            last_v4: None,
            last_v6: None,
            used: BTreeMap::new(),
        };
        for &subnet in subnets {
            check_network(subnet)?;
            let family = Family::of_net(&subnet);
            let max = max_subnet_len(family);
            if subnet.prefix_len() > max {
                let subnet_len = subnet.prefix_len();
                return Err(IpamError::SubnetLenTooLong {
                    family,
                    subnet_len,
                    max,
                });
            }
            if let Some(first) = pool.subnet(family) {
                return Err(IpamError::DuplicateFamily {
                    family,
                    first,
                    second: subnet,
                });
            }
            match subnet {
                IpNet::V4(net) => pool.v4 = Some(net),
                IpNet::V6(net) => pool.v6 = Some(net),
            }
        }
        if subnets.is_empty() {
            return Err(IpamError::NoCidr);
        }
        Ok(pool)
    }

    /// A pool over `subnets` holding the `leases` read back from the store. Leases that
    /// no longer fit (another subnet, a duplicate address) are returned with the reason,
    /// for the caller to delete. Each family's cursor starts after its highest lease.
    pub fn restore(
        subnets: &[IpNet],
        leases: impl IntoIterator<Item = Lease>,
    ) -> Result<(Self, Vec<(Lease, IpamError)>), IpamError> {
        let mut pool = PoolState::new(subnets)?;
        let mut rejected = Vec::new();
        for lease in leases {
            if let Err(err) = pool.insert(lease.clone()) {
                rejected.push((lease, err));
            }
        }
        pool.last_v4 = pool.leases.values().filter_map(|a| a.ipv4).max();
        pool.last_v6 = pool.leases.values().filter_map(|a| a.ipv6).max();
        Ok((pool, rejected))
    }

    /// The node subnet of `family`, if the pool serves it.
    pub fn subnet(&self, family: Family) -> Option<IpNet> {
        match family {
            Family::V4 => self.v4.map(IpNet::V4),
            Family::V6 => self.v6.map(IpNet::V6),
        }
    }

    /// The node subnets, IPv4 first.
    pub fn subnets(&self) -> Vec<IpNet> {
        [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.subnet(f))
            .collect()
    }

    /// The addresses of an attachment, if it holds any.
    pub fn get(&self, container_id: &str, ifname: &str) -> Option<Allocation> {
        let key = Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
        };
        self.leases.get(&key).copied()
    }

    /// Every lease, ordered by (container id, ifname).
    pub fn list(&self) -> Vec<Lease> {
        self.leases
            .iter()
            .map(|(a, &allocation)| Lease {
                attachment: a.clone(),
                allocation,
            })
            .collect()
    }

    /// The addresses the caller reserved.
    pub fn reserved(&self) -> &BTreeSet<IpAddr> {
        &self.reserved
    }

    /// Keeps `addr` from being handed out. It must be a pod address of a node subnet
    /// and not held by an attachment. Reserving twice is a no-op.
    pub fn reserve(&mut self, addr: IpAddr) -> Result<(), IpamError> {
        self.check_allocatable(addr)?;
        if let Some(holder) = self.used.get(&addr) {
            return Err(in_use(addr, holder));
        }
        self.reserved.insert(addr);
        Ok(())
    }

    /// Lets a reserved address be handed out again; false if it was not reserved.
    pub fn unreserve(&mut self, addr: IpAddr) -> bool {
        self.reserved.remove(&addr)
    }

    /// Decides the addresses of an attachment: the ones it holds, or one new address
    /// per family. Fails as a whole if any family is exhausted.
    pub fn decide_allocate(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Decision<Allocation>, IpamError> {
        let attachment = Attachment::new(container_id, ifname)?;
        if let Some(&held) = self.leases.get(&attachment) {
            return Ok(Decision {
                outcome: held,
                change: None,
            });
        }
        let ipv4 = self
            .v4
            .map(|net| self.pick(IpNet::V4(net), self.last_v4.map(IpAddr::V4)));
        let ipv6 = self
            .v6
            .map(|net| self.pick(IpNet::V6(net), self.last_v6.map(IpAddr::V6)));
        // `pick` returns a value inside the subnet it was given, so the casts are exact.
        let ipv4 = ipv4.transpose()?.map(|v| Ipv4Addr::from(v as u32));
        let ipv6 = ipv6.transpose()?.map(Ipv6Addr::from);
        let allocation = Allocation { ipv4, ipv6 };
        let lease = Lease {
            attachment,
            allocation,
        };
        Ok(Decision {
            outcome: allocation,
            change: Some(Change::Assign { lease }),
        })
    }

    /// Decides to release one attachment; `None` (and no change) if it holds nothing,
    /// so a repeated DEL succeeds.
    pub fn decide_release(&self, container_id: &str, ifname: &str) -> Decision<Option<Lease>> {
        let key = Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
        };
        let lease = self.leases.get(&key).map(|&allocation| Lease {
            attachment: key,
            allocation,
        });
        let change = lease.clone().map(|l| Change::Release { leases: vec![l] });
        Decision {
            outcome: lease,
            change,
        }
    }

    /// Decides to release every interface of a container.
    pub fn decide_release_container(&self, container_id: &str) -> Decision<Vec<Lease>> {
        let from = Attachment {
            container_id: container_id.into(),
            ifname: String::new(),
        };
        let leases = self
            .leases
            .range(from..)
            .take_while(|(a, _)| a.container_id == container_id)
            .map(|(a, &allocation)| Lease {
                attachment: a.clone(),
                allocation,
            })
            .collect();
        release_decision(leases)
    }

    /// Decides to release every lease whose (container id, ifname) is not in `live`,
    /// the attachments the runtime still knows (CNI GC).
    pub fn decide_gc<C: AsRef<str>, I: AsRef<str>>(&self, live: &[(C, I)]) -> Decision<Vec<Lease>> {
        let live: BTreeSet<(&str, &str)> =
            live.iter().map(|(c, i)| (c.as_ref(), i.as_ref())).collect();
        let leases = self
            .leases
            .iter()
            .filter(|(a, _)| !live.contains(&(a.container_id.as_str(), a.ifname.as_str())))
            .map(|(a, &allocation)| Lease {
                attachment: a.clone(),
                allocation,
            })
            .collect();
        release_decision(leases)
    }

    /// Commits a decided change. All-or-nothing: an `Assign` whose attachment or
    /// addresses were taken since the decision fails and changes nothing. Replaying an
    /// applied change is a no-op; a `Release` skips leases that no longer match.
    pub fn apply(&mut self, change: &Change) -> Result<(), IpamError> {
        match change {
            Change::Assign { lease } => {
                if self.leases.get(&lease.attachment) == Some(&lease.allocation) {
                    return Ok(());
                }
                self.insert(lease.clone())?;
                if let Some(a) = lease.allocation.ipv4 {
                    self.last_v4 = Some(a);
                }
                if let Some(a) = lease.allocation.ipv6 {
                    self.last_v6 = Some(a);
                }
            }
            Change::Release { leases } => {
                for lease in leases {
                    if self.leases.get(&lease.attachment) == Some(&lease.allocation) {
                        self.leases.remove(&lease.attachment);
                        for addr in lease.allocation.addrs() {
                            self.used.remove(&addr);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// [`decide_allocate`](Self::decide_allocate) and apply it.
    pub fn allocate(&mut self, container_id: &str, ifname: &str) -> Result<Allocation, IpamError> {
        let decision = self.decide_allocate(container_id, ifname)?;
        self.commit(decision)
    }

    /// [`decide_release`](Self::decide_release) and apply it.
    pub fn release(&mut self, container_id: &str, ifname: &str) -> Option<Lease> {
        let decision = self.decide_release(container_id, ifname);
        self.commit_release(decision)
    }

    /// [`decide_release_container`](Self::decide_release_container) and apply it.
    pub fn release_container(&mut self, container_id: &str) -> Vec<Lease> {
        let decision = self.decide_release_container(container_id);
        self.commit_release(decision)
    }

    /// [`decide_gc`](Self::decide_gc) and apply it; returns the leases released.
    pub fn gc<C: AsRef<str>, I: AsRef<str>>(&mut self, live: &[(C, I)]) -> Vec<Lease> {
        let decision = self.decide_gc(live);
        self.commit_release(decision)
    }

    fn commit<T>(&mut self, decision: Decision<T>) -> Result<T, IpamError> {
        if let Some(change) = &decision.change {
            self.apply(change)?;
        }
        Ok(decision.outcome)
    }

    fn commit_release<T>(&mut self, decision: Decision<T>) -> T {
        if let Some(change) = &decision.change {
            debug_assert!(matches!(change, Change::Release { .. }));
            // Releasing never fails.
            let _ = self.apply(change);
        }
        decision.outcome
    }

    /// The next free address of `subnet` after `cursor`, round-robin, as an integer.
    fn pick(&self, subnet: IpNet, cursor: Option<IpAddr>) -> Result<u128, IpamError> {
        let family = Family::of_net(&subnet);
        let (first, last) = allocatable(&subnet);
        let start = match cursor.map(to_u128) {
            Some(c) if (first..last).contains(&c) => c + 1,
            _ => first,
        };
        // Terminates within (used + reserved + 1) steps when a free address exists, and
        // within one lap of the subnet otherwise.
        let mut at = start;
        loop {
            let addr = family.addr(at);
            if !self.used.contains_key(&addr) && !self.reserved.contains(&addr) {
                return Ok(at);
            }
            at = if at == last { first } else { at + 1 };
            if at == start {
                let range = family.addr(first)..=family.addr(last);
                return Err(IpamError::PoolExhausted {
                    subnet,
                    allocated: self.used.range(range.clone()).count(),
                    reserved: self.reserved.range(range).count(),
                });
            }
        }
    }

    /// Refuses an address outside every pod range of the pool.
    fn check_allocatable(&self, addr: IpAddr) -> Result<(), IpamError> {
        let ok = self.subnet(Family::of(addr)).is_some_and(|subnet| {
            let (first, last) = allocatable(&subnet);
            (first..=last).contains(&to_u128(addr))
        });
        if ok {
            return Ok(());
        }
        let subnets = self
            .subnets()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>();
        Err(IpamError::NotAllocatable {
            addr,
            subnets: subnets.join(", "),
        })
    }

    /// Records a lease after checking it against every invariant; changes nothing on
    /// error.
    fn insert(&mut self, lease: Lease) -> Result<(), IpamError> {
        let Lease {
            attachment,
            allocation,
        } = lease;
        let attachment = Attachment::new(&attachment.container_id, &attachment.ifname)?;
        if let Some(held) = self.leases.get(&attachment) {
            let addrs: Vec<_> = held.addrs().map(|a| a.to_string()).collect();
            return Err(IpamError::AlreadyAllocated {
                container_id: attachment.container_id,
                ifname: attachment.ifname,
                addrs: addrs.join(", "),
            });
        }
        for addr in allocation.addrs() {
            self.check_allocatable(addr)?;
            if let Some(holder) = self.used.get(&addr) {
                return Err(in_use(addr, holder));
            }
            if self.reserved.contains(&addr) {
                return Err(IpamError::AddressReserved { addr });
            }
        }
        for addr in allocation.addrs() {
            self.used.insert(addr, attachment.clone());
        }
        self.leases.insert(attachment, allocation);
        Ok(())
    }
}

fn in_use(addr: IpAddr, holder: &Attachment) -> IpamError {
    IpamError::AddressInUse {
        addr,
        container_id: holder.container_id.clone(),
        ifname: holder.ifname.clone(),
    }
}

fn release_decision(leases: Vec<Lease>) -> Decision<Vec<Lease>> {
    let change = (!leases.is_empty()).then(|| Change::Release {
        leases: leases.clone(),
    });
    Decision {
        outcome: leases,
        change,
    }
}

mod wanted;

#[cfg(test)]
mod tests;

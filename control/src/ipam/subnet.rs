//! Node subnet leases: which subnet of the cluster CIDR a node should take.
//!
//! This is flannel's scheme: the cluster CIDR (default `10.244.0.0/16`) is cut into
//! node subnets of one length (default `/24`; `/64` for IPv6), and each node holds one
//! per address family. The code here only *decides*; two nodes never hold the same
//! subnet because the caller claims each candidate with the store's atomic
//! create-if-absent and moves to the next candidate when another node won it.
//!
//! Candidate order, the contract of [`SubnetPlan::candidates`]:
//! 1. the subnet this node held before, if it is still a subnet of the plan and no other
//!    node holds it, so a restarted node keeps its subnet and its pods keep their
//!    addresses;
//! 2. then every other free subnet once, walking the ring of subnets from a start
//!    position given by [`Order`]: [`Order::Lowest`] starts at the first subnet (the
//!    default: predictable, dense), [`Order::ByName`] starts at a stable hash of the node
//!    name, so many nodes starting at once mostly try different subnets first instead of
//!    all racing for the lowest one (flannel picks at random for the same reason; the
//!    hash keeps it deterministic and testable).
//!
//! Unlike flannel (whose `SubnetMin` defaults to the *second* subnet) no subnet is
//! skipped: pods get `/32` (`/128`) routes, and the pool never hands out a subnet's
//! network or broadcast address, so the cluster's own network and broadcast addresses
//! are never used anyway. That is also what lets a `/64` cluster with `/64` subnets
//! serve exactly one node.
//!
//! "Taken" subnets are compared by overlap, not equality, so a lease of another length
//! (left from an earlier configuration) still blocks the subnets it covers.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::error::IpamError;
use super::family::{Family, bounds, size, to_u128};

/// The default IPv4 cluster CIDR, flannel's.
pub const DEFAULT_CLUSTER_V4: &str = "10.244.0.0/16";
/// The default IPv4 node subnet length.
pub const DEFAULT_SUBNET_LEN_V4: u8 = 24;
/// The default IPv6 node subnet length.
pub const DEFAULT_SUBNET_LEN_V6: u8 = 64;

/// The longest node subnet that still leaves one pod address: network, health endpoint,
/// one pod and (IPv4) broadcast.
pub fn max_subnet_len(family: Family) -> u8 {
    match family {
        Family::V4 => 30,
        Family::V6 => 126,
    }
}

/// Parses a CIDR, refusing host bits (`10.244.1.5/16`).
pub fn parse_network(text: &str) -> Result<IpNet, IpamError> {
    let net: IpNet =
        text.trim()
            .parse()
            .map_err(|e: ipnet::AddrParseError| IpamError::ParseCidr {
                input: text.to_owned(),
                reason: e.to_string(),
            })?;
    check_network(net)?;
    Ok(net)
}

/// Refuses a CIDR with host bits set.
pub(crate) fn check_network(net: IpNet) -> Result<(), IpamError> {
    if net.trunc() != net {
        return Err(IpamError::HostBitsSet {
            given: net,
            network: net.trunc(),
        });
    }
    Ok(())
}

/// Where the ring walk over free subnets starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order<'a> {
    /// At the lowest subnet.
    Lowest,
    /// At a stable hash (FNV-1a) of this node name.
    ByName(&'a str),
}

/// One family's cluster CIDR and the length of the node subnets cut from it. Valid by
/// construction (and on deserialization).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawPlan")]
pub struct SubnetPlan {
    cluster: IpNet,
    subnet_len: u8,
}

/// The unchecked serialized form of [`SubnetPlan`].
#[derive(Deserialize)]
struct RawPlan {
    cluster: IpNet,
    subnet_len: u8,
}

impl TryFrom<RawPlan> for SubnetPlan {
    type Error = IpamError;
    fn try_from(raw: RawPlan) -> Result<Self, IpamError> {
        SubnetPlan::new(raw.cluster, raw.subnet_len)
    }
}

impl SubnetPlan {
    /// Checks that `cluster` is a network and `subnet_len` fits in it and leaves room
    /// for a pod. `subnet_len` may equal the cluster prefix: one node, one subnet.
    pub fn new(cluster: IpNet, subnet_len: u8) -> Result<Self, IpamError> {
        check_network(cluster)?;
        let family = Family::of_net(&cluster);
        let max = max_subnet_len(family);
        if subnet_len > max {
            return Err(IpamError::SubnetLenTooLong {
                family,
                subnet_len,
                max,
            });
        }
        if subnet_len < cluster.prefix_len() {
            return Err(IpamError::SubnetLenShorterThanCluster {
                cluster,
                subnet_len,
                max,
            });
        }
        Ok(SubnetPlan {
            cluster,
            subnet_len,
        })
    }

    /// [`SubnetPlan::new`] from a CIDR string.
    pub fn parse(cluster: &str, subnet_len: u8) -> Result<Self, IpamError> {
        SubnetPlan::new(parse_network(cluster)?, subnet_len)
    }

    /// `10.244.0.0/16` cut into `/24`s.
    pub fn default_v4() -> Self {
        let cluster = IpNet::V4(ipnet::Ipv4Net::new_assert([10, 244, 0, 0].into(), 16));
        SubnetPlan {
            cluster,
            subnet_len: DEFAULT_SUBNET_LEN_V4,
        }
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> IpNet {
        self.cluster
    }

    /// The node subnet length.
    pub fn subnet_len(&self) -> u8 {
        self.subnet_len
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of_net(&self.cluster)
    }

    /// How many node subnets the cluster CIDR holds (at most 2^126, so never saturates).
    pub fn subnet_count(&self) -> u128 {
        1u128 << (self.subnet_len - self.cluster.prefix_len())
    }

    /// The `index`-th node subnet, lowest first.
    pub fn subnet(&self, index: u128) -> Option<IpNet> {
        if index >= self.subnet_count() {
            return None;
        }
        let base = bounds(&self.cluster).0;
        let start = base + index * size(self.family(), self.subnet_len);
        IpNet::new(self.family().addr(start), self.subnet_len).ok()
    }

    /// The index of `subnet` if it is exactly one of this plan's node subnets.
    pub fn index_of(&self, subnet: &IpNet) -> Option<u128> {
        let ok = subnet.prefix_len() == self.subnet_len
            && subnet.trunc() == *subnet
            && self.cluster.contains(subnet);
        ok.then(|| self.index_containing(to_u128(subnet.network())))
    }

    /// The index of the node subnet holding the address with integer value `addr`, which
    /// must be inside the cluster CIDR.
    fn index_containing(&self, addr: u128) -> u128 {
        (addr - bounds(&self.cluster).0) / size(self.family(), self.subnet_len)
    }

    /// The candidate subnets for a node, in the order to try them (see the module doc).
    /// `previous` is the subnet this node held before; a previous subnet that no longer
    /// fits the plan is not preferred. `taken` holds the subnets of *other* nodes;
    /// entries of the other family are ignored, so every lease may be passed.
    pub fn candidates(
        &self,
        order: Order<'_>,
        previous: Option<IpNet>,
        taken: &[IpNet],
    ) -> Result<Candidates, IpamError> {
        let family = self.family();
        if let Some(prev) = previous
            && Family::of_net(&prev) != family
        {
            return Err(IpamError::FamilyMismatch {
                expected: family,
                given: prev.addr(),
            });
        }
        let taken = merge(
            taken
                .iter()
                .filter(|n| Family::of_net(n) == family)
                .map(bounds),
        );
        let count = self.subnet_count();
        let start = match order {
            Order::Lowest => 0,
            Order::ByName(name) => u128::from(fnv1a(name.as_bytes())) % count,
        };
        let mut walk = Candidates {
            plan: *self,
            taken,
            previous: None,
            preferred: None,
            segments: [(start, count), (0, start)],
            segment: 0,
            next: start,
        };
        if let Some(index) = previous.and_then(|p| self.index_of(&p))
            && walk.is_free(index)
        {
            walk.previous = Some(index);
            walk.preferred = Some(index);
        }
        Ok(walk)
    }

    /// The first candidate, or [`IpamError::ClusterExhausted`].
    pub fn choose(
        &self,
        order: Order<'_>,
        previous: Option<IpNet>,
        taken: &[IpNet],
    ) -> Result<IpNet, IpamError> {
        self.candidates(order, previous, taken)?
            .next()
            .ok_or(IpamError::ClusterExhausted {
                cluster: self.cluster,
                subnet_len: self.subnet_len,
                count: self.subnet_count(),
            })
    }
}

/// The candidate subnets of [`SubnetPlan::candidates`], lazily: taken runs are jumped
/// over, so the walk costs O(taken · log taken) even in a `/32` of `/64`s.
#[derive(Debug, Clone)]
pub struct Candidates {
    plan: SubnetPlan,
    /// Taken address ranges, sorted, disjoint, non-adjacent.
    taken: Vec<(u128, u128)>,
    /// The previous subnet's index while it is still to be yielded.
    preferred: Option<u128>,
    /// The previous subnet's index, skipped by the ring walk.
    previous: Option<u128>,
    /// The ring as two linear runs of indexes: `[start, count)` then `[0, start)`.
    segments: [(u128, u128); 2],
    segment: usize,
    next: u128,
}

impl Candidates {
    /// The first taken range ending at or after the subnet's start, if it overlaps it.
    fn overlap(&self, index: u128) -> Option<(u128, u128)> {
        let (lo, _) = self.subnet_bounds(index);
        let hi = lo + (size(self.plan.family(), self.plan.subnet_len) - 1);
        let i = self.taken.partition_point(|&(_, end)| end < lo);
        self.taken.get(i).copied().filter(|&(start, _)| start <= hi)
    }

    fn subnet_bounds(&self, index: u128) -> (u128, u128) {
        let len = size(self.plan.family(), self.plan.subnet_len);
        let lo = bounds(&self.plan.cluster).0 + index * len;
        (lo, lo + (len - 1))
    }

    fn is_free(&self, index: u128) -> bool {
        self.overlap(index).is_none()
    }
}

impl Iterator for Candidates {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        if let Some(index) = self.preferred.take() {
            return self.plan.subnet(index);
        }
        while self.segment < self.segments.len() {
            let end = self.segments[self.segment].1;
            if self.next >= end {
                self.segment += 1;
                if let Some(&(start, _)) = self.segments.get(self.segment) {
                    self.next = start;
                }
                continue;
            }
            let index = self.next;
            if let Some((_, taken_end)) = self.overlap(index) {
                // Jump past the whole taken range (clamped to the cluster's end).
                let last = bounds(&self.plan.cluster).1;
                self.next = if taken_end >= last {
                    end
                } else {
                    self.plan.index_containing(taken_end) + 1
                };
                continue;
            }
            self.next += 1;
            if Some(index) != self.previous {
                return self.plan.subnet(index);
            }
        }
        None
    }
}

/// Sorts ranges and merges overlapping or adjacent ones.
fn merge(ranges: impl Iterator<Item = (u128, u128)>) -> Vec<(u128, u128)> {
    let mut ranges: Vec<_> = ranges.collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cluster CIDRs of a cluster: at most one [`SubnetPlan`] per family, at least one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCluster")]
pub struct ClusterPlan {
    v4: Option<SubnetPlan>,
    v6: Option<SubnetPlan>,
}

#[derive(Deserialize)]
struct RawCluster {
    v4: Option<SubnetPlan>,
    v6: Option<SubnetPlan>,
}

impl TryFrom<RawCluster> for ClusterPlan {
    type Error = IpamError;
    fn try_from(raw: RawCluster) -> Result<Self, IpamError> {
        let plans: Vec<_> = raw.v4.into_iter().chain(raw.v6).collect();
        let plan = ClusterPlan::new(&plans)?;
        // A v6 plan in the v4 slot (or the reverse) is refused, not silently moved.
        for (slot, family) in [(raw.v4, Family::V4), (raw.v6, Family::V6)] {
            if let Some(p) = slot
                && p.family() != family
            {
                return Err(IpamError::FamilyMismatch {
                    expected: family,
                    given: p.cluster.addr(),
                });
            }
        }
        Ok(plan)
    }
}

impl Default for ClusterPlan {
    fn default() -> Self {
        ClusterPlan {
            v4: Some(SubnetPlan::default_v4()),
            v6: None,
        }
    }
}

impl ClusterPlan {
    /// One plan per family, one or two in all.
    pub fn new(plans: &[SubnetPlan]) -> Result<Self, IpamError> {
        let mut cluster = ClusterPlan { v4: None, v6: None };
        for plan in plans {
            let slot = match plan.family() {
                Family::V4 => &mut cluster.v4,
                Family::V6 => &mut cluster.v6,
            };
            if let Some(first) = slot {
                return Err(IpamError::DuplicateFamily {
                    family: plan.family(),
                    first: first.cluster,
                    second: plan.cluster,
                });
            }
            *slot = Some(*plan);
        }
        if cluster.v4.is_none() && cluster.v6.is_none() {
            return Err(IpamError::NoCidr);
        }
        Ok(cluster)
    }

    /// The plan of `family`, if the cluster has one.
    pub fn get(&self, family: Family) -> Option<&SubnetPlan> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// The plans, IPv4 first.
    pub fn plans(&self) -> impl Iterator<Item = &SubnetPlan> {
        self.v4.iter().chain(self.v6.iter())
    }

    /// The plan whose cluster CIDR contains `addr`.
    pub fn plan_for(&self, addr: IpAddr) -> Option<&SubnetPlan> {
        self.plans().find(|p| p.cluster.contains(&addr))
    }
}

#[cfg(test)]
mod tests;

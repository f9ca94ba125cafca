//! Address families and the integer arithmetic both allocators share.
//!
//! Subnet and address choice is done on `u128` offsets so one code path serves IPv4
//! and IPv6; an IPv4 address is its `u32` value widened. Every conversion back to an
//! address goes through [`Family::addr`], which truncates to the family's width.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family of a network.
    pub fn of_net(net: &IpNet) -> Self {
        Family::of(net.addr())
    }

    /// Address width in bits (32 or 128).
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The address at integer value `value`, truncated to the family's width.
    pub(crate) fn addr(self, value: u128) -> IpAddr {
        match self {
            // Truncation is the contract: callers only pass values inside a v4 network.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The integer value of an address.
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// First and last address of `net` as integers (inclusive).
pub(crate) fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

/// Number of addresses in a network of `prefix_len` in `family`, saturating at
/// `u128::MAX` for `::/0` (which has 2^128).
pub(crate) fn size(family: Family, prefix_len: u8) -> u128 {
    let host_bits = u32::from(family.bits() - prefix_len);
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sizes() {
        let a: IpAddr = "10.244.1.7".parse().unwrap();
        assert_eq!(Family::V4.addr(to_u128(a)), a);
        let b: IpAddr = "fd00::1:2".parse().unwrap();
        assert_eq!(Family::V6.addr(to_u128(b)), b);
        assert_eq!(size(Family::V4, 24), 256);
        assert_eq!(size(Family::V6, 64), 1 << 64);
        assert_eq!(size(Family::V6, 0), u128::MAX);
        let net: IpNet = "10.244.1.0/24".parse().unwrap();
        assert_eq!(
            bounds(&net),
            (to_u128(net.network()), to_u128(net.broadcast()))
        );
        assert_eq!(Family::of_net(&net).to_string(), "IPv4");
    }
}

//! Where a route sends a packet, packed into the 23-bit value an LPM entry holds.
//!
//! Encoding the next hop in the route itself means a lookup needs no second
//! table: bits 20..23 hold the kind, bits 0..20 the port or peer index.

pub use tweed_api::dataplane::values::{PeerId, PortId};

use super::lpm::MAX_VALUE;

/// The largest port or peer index a route can name.
pub const MAX_INDEX: u32 = (1 << 20) - 1;

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHop {
    /// A pod on this node.
    Local(PortId),
    /// A pod subnet behind another node, reached through the overlay.
    Remote(PeerId),
    /// The node itself (tweed0), for node traffic and everything outside the cluster.
    Host,
    /// The node's own address on the overlay (on tweed0): like [`NextHop::Host`],
    /// but peers may reach it too, where `Host` is refused to them so that no
    /// peer can use this node as a relay to the outside.
    Node,
    /// Dropped on purpose.
    Blackhole,
}

const KIND_SHIFT: u32 = 20;
const KIND_LOCAL: u32 = 1;
const KIND_REMOTE: u32 = 2;
const KIND_HOST: u32 = 3;
const KIND_BLACKHOLE: u32 = 4;
const KIND_NODE: u32 = 5;

impl NextHop {
    /// The LPM value for this next hop, or `None` if its index is too large.
    pub fn encode(self) -> Option<u32> {
        let (kind, index) = match self {
            NextHop::Local(PortId(i)) => (KIND_LOCAL, i),
            NextHop::Remote(PeerId(i)) => (KIND_REMOTE, i),
            NextHop::Host => (KIND_HOST, 0),
            NextHop::Blackhole => (KIND_BLACKHOLE, 0),
            NextHop::Node => (KIND_NODE, 0),
        };
        (index <= MAX_INDEX).then_some((kind << KIND_SHIFT) | index)
    }

    /// The next hop an LPM value stands for; `None` for values no encoder made.
    pub fn decode(value: u32) -> Option<Self> {
        debug_assert!(value <= MAX_VALUE);
        let index = value & MAX_INDEX;
        match value >> KIND_SHIFT {
            KIND_LOCAL => Some(NextHop::Local(PortId(index))),
            KIND_REMOTE => Some(NextHop::Remote(PeerId(index))),
            KIND_HOST => Some(NextHop::Host),
            KIND_BLACKHOLE => Some(NextHop::Blackhole),
            KIND_NODE => Some(NextHop::Node),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_within_the_lpm_value_range() {
        for hop in [
            NextHop::Local(PortId(0)),
            NextHop::Local(PortId(MAX_INDEX)),
            NextHop::Remote(PeerId(7)),
            NextHop::Host,
            NextHop::Blackhole,
            NextHop::Node,
        ] {
            let value = hop.encode().expect("encodable");
            assert!(value <= MAX_VALUE);
            assert_eq!(NextHop::decode(value), Some(hop));
        }
    }

    #[test]
    fn oversized_index_and_unknown_value_are_refused() {
        assert_eq!(NextHop::Local(PortId(MAX_INDEX + 1)).encode(), None);
        assert_eq!(NextHop::decode(0), None);
    }
}

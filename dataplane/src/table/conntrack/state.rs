//! Flow states, their timeouts and the transitions packets cause.
//!
//! The TCP tracking is deliberately loose (like Linux `nf_conntrack_tcp_loose`
//! and Cilium): no sequence-number windows, and a flow first seen mid-stream
//! (an ACK without SYN) is picked up as established.

/// IP protocol numbers with their own handling.
const TCP: u8 = 6;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// The direction of a packet relative to the flow's originator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the endpoint that created the flow.
    Original,
    /// Sent by the other endpoint.
    Reply,
}

/// The state of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// TCP: a SYN from the originator, no answer yet.
    SynSent,
    /// TCP: the other side answered (SYN-ACK or ACK), or picked up mid-stream.
    Established,
    /// TCP: a FIN was seen in either direction.
    Closing,
    /// TCP: a RST was seen.
    Closed,
    /// UDP and every other non-TCP protocol: only the originator has sent.
    UdpNew,
    /// UDP and every other non-TCP protocol: both sides have sent.
    UdpEstablished,
}

impl FlowState {
    /// The code stored in a slot; never zero.
    pub(super) fn code(self) -> u8 {
        match self {
            FlowState::SynSent => 1,
            FlowState::Established => 2,
            FlowState::Closing => 3,
            FlowState::Closed => 4,
            FlowState::UdpNew => 5,
            FlowState::UdpEstablished => 6,
        }
    }

    /// Inverse of [`FlowState::code`]; unknown codes (never written) read as `Closed`.
    pub(super) fn from_code(code: u8) -> FlowState {
        match code {
            1 => FlowState::SynSent,
            2 => FlowState::Established,
            3 => FlowState::Closing,
            5 => FlowState::UdpNew,
            6 => FlowState::UdpEstablished,
            _ => FlowState::Closed,
        }
    }
}

/// The raw TCP flag byte of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: the sender has finished sending.
    pub const FIN: u8 = 0x01;
    /// SYN: synchronize sequence numbers (connection open).
    pub const SYN: u8 = 0x02;
    /// RST: reset the connection.
    pub const RST: u8 = 0x04;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u8 = 0x10;

    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// A connection-opening SYN: SYN without ACK.
    pub fn is_syn_only(self) -> bool {
        self.syn() && !self.ack()
    }
}

/// How long a flow lives after its last refresh, per state, in milliseconds.
/// Defaults follow Cilium's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, SYN seen and unanswered.
    pub tcp_syn_sent_ms: u64,
    /// TCP, established.
    pub tcp_established_ms: u64,
    /// TCP, FIN seen.
    pub tcp_closing_ms: u64,
    /// TCP, RST seen.
    pub tcp_closed_ms: u64,
    /// UDP and other protocols, one direction seen.
    pub udp_one_way_ms: u64,
    /// UDP and other protocols, both directions seen.
    pub udp_both_ways_ms: u64,
    /// ICMP and ICMPv6 (echo), whatever the state.
    pub icmp_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        const S: u64 = 1000;
        Timeouts {
            tcp_syn_sent_ms: 60 * S,
            tcp_established_ms: 6 * 3600 * S,
            tcp_closing_ms: 30 * S,
            tcp_closed_ms: 10 * S,
            udp_one_way_ms: 30 * S,
            udp_both_ways_ms: 180 * S,
            icmp_ms: 30 * S,
        }
    }
}

impl Timeouts {
    /// The lifetime of a flow of `protocol` in `state`.
    pub(super) fn for_flow(&self, protocol: u8, state: FlowState) -> u64 {
        if protocol == ICMP || protocol == ICMPV6 {
            return self.icmp_ms;
        }
        match state {
            FlowState::SynSent => self.tcp_syn_sent_ms,
            FlowState::Established => self.tcp_established_ms,
            FlowState::Closing => self.tcp_closing_ms,
            FlowState::Closed => self.tcp_closed_ms,
            FlowState::UdpNew => self.udp_one_way_ms,
            FlowState::UdpEstablished => self.udp_both_ways_ms,
        }
    }
}

/// The state of a flow created by a packet of `protocol` with `flags`.
pub(super) fn initial(protocol: u8, flags: Option<TcpFlags>) -> FlowState {
    if protocol != TCP {
        return FlowState::UdpNew;
    }
    match flags {
        Some(f) if f.rst() => FlowState::Closed,
        Some(f) if f.fin() => FlowState::Closing,
        Some(f) if f.is_syn_only() => FlowState::SynSent,
        // An ACK (or no flags given): a mid-stream pickup.
        _ => FlowState::Established,
    }
}

/// Whether a packet with `flags` opens a new connection on the 5-tuple of a
/// flow in `state`: a fresh SYN (from either end) once the flow closes. The
/// old flow ends there, as the kernel's conntrack ends one in TIME_WAIT or
/// CLOSE: the new connection is judged by policy again and gets its own tag.
pub(super) fn reopens(protocol: u8, state: FlowState, flags: Option<TcpFlags>) -> bool {
    protocol == TCP
        && flags.is_some_and(|f| f.is_syn_only())
        && matches!(state, FlowState::Closing | FlowState::Closed)
}

/// The state after a packet in `direction` with `flags` hits a flow in `state`.
pub(super) fn advance(
    protocol: u8,
    state: FlowState,
    direction: Direction,
    flags: Option<TcpFlags>,
) -> FlowState {
    if protocol != TCP {
        return match direction {
            Direction::Reply => FlowState::UdpEstablished,
            Direction::Original => state,
        };
    }
    let Some(f) = flags else { return state };
    if f.rst() {
        return FlowState::Closed;
    }
    if f.fin() {
        return match state {
            FlowState::Closed => FlowState::Closed,
            _ => FlowState::Closing,
        };
    }
    match state {
        FlowState::SynSent if direction == Direction::Reply && f.ack() => FlowState::Established,
        s => s,
    }
}

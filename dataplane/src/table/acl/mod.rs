//! Per-endpoint policy classification: which rule decides a packet.
//!
//! # Semantics
//!
//! A [`RuleSet`] is evaluated against a packet's remote address, IP protocol
//! and destination port (of the connection's original direction; 0 for ICMP
//! and other portless protocols). Rules are put in evaluation order: tier by
//! tier, ascending, and within a tier in the order given. Walking them, a rule
//! *matches* when all of these hold:
//!
//! - `remote` is empty, or the address is in one of its prefixes;
//! - the address is in none of the `remote_except` prefixes;
//! - `protocol` is `None` or equal to the packet's;
//! - `ports` is `None` or contains the packet's port.
//!
//! A prefix of the other address family never contains the address (an
//! IPv4-mapped IPv6 address is IPv6). On the first matching rule:
//! `Allow`/`Deny` decide; `Log` appends the rule id to [`Outcome::logged`]
//! and the walk continues; `Pass` skips the remaining rules of its tier and the
//! walk continues with the next higher tier. If no rule decides, the verdict
//! is [`RuleSet::default`] and [`Outcome::rule`] is `None`.
//!
//! [`classify_linear`] is that definition as code; [`Classifier`] is the
//! compiled form and agrees with it on every packet (tested on random sets).
//!
//! # Why this design
//!
//! The target is a classification cost nearly flat from 1,000 to 10,000 rules,
//! so the compiled form never walks rules at lookup time. It decomposes the
//! match into two dimensions whose answers are precomputed for every
//! combination that can occur:
//!
//! 1. the address: an LPM over the union of all rule prefixes maps an address
//!    to an interval map (see [`address`] for why the longest match suffices);
//! 2. protocol and port: the interval map sends the 24-bit key
//!    `protocol << 16 | port` to an outcome index by binary search.
//!
//! Identical outcomes, address classes and interval maps are shared, so the
//! tables grow with the number of *distinct* combinations, not with rules x
//! prefixes. An address class's interval map is computed by walking its rules
//! once per global port class when the rules name few distinct ports, or by
//! sweeping the intervals of the rules it matches ([`sweep`]) when it
//! matches few rules: 10,000 rules each with its own prefix and its own port
//! compile in milliseconds. Compilation is bounded by [`MAX_COMPILE_WORK`]; a
//! rule set that would need more is refused with [`CompileError::TooComplex`].
//!
//! Pure: no I/O, no clock, no globals. A classifier is immutable; publish a
//! new one by swapping an `Arc`.

mod address;
mod bitset;
mod classify;
mod compile;
mod error;
mod linear;
mod maps;
mod ports;
mod rule;
mod sweep;

#[cfg(test)]
mod random_tests;
#[cfg(test)]
mod tests;

pub use classify::Classifier;
pub use compile::MAX_COMPILE_WORK;
pub use error::CompileError;
pub use linear::classify_linear;
pub use rule::{
    Outcome, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PortRange, Rule,
    RuleAction, RuleId, RuleSet, Verdict, has_ports,
};

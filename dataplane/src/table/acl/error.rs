//! Why a rule set was refused by [`super::Classifier::compile`].

use super::rule::RuleId;

/// A rule set the classifier cannot compile, naming the rule and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A rule restricts ports but its protocol is not TCP, UDP or SCTP.
    #[error(
        "rule {} (#{index} in the set): a port range needs protocol TCP (6), UDP (17) or SCTP (132), not {protocol:?}",
        id.0
    )]
    PortsWithoutPortProtocol {
        /// Position of the rule in [`super::RuleSet::rules`].
        index: usize,
        /// The rule's id.
        id: RuleId,
        /// The rule's protocol.
        protocol: Option<u8>,
    },
    /// A rule's port range is empty.
    #[error("rule {} (#{index} in the set): port range {first}-{last} is empty", id.0)]
    EmptyPortRange {
        /// Position of the rule in [`super::RuleSet::rules`].
        index: usize,
        /// The rule's id.
        id: RuleId,
        /// The first port of the range.
        first: u16,
        /// The last port of the range.
        last: u16,
    },
    /// Compiling would exceed the work bound (see [`super::MAX_COMPILE_WORK`]).
    #[error(
        "compiling the {step} needs about {work} units of work, more than the limit of {limit}; \
         the rule set has too many distinct prefixes or port ranges for its size"
    )]
    TooComplex {
        /// The compile step that would exceed the bound.
        step: &'static str,
        /// The estimated work.
        work: u64,
        /// The bound.
        limit: u64,
    },
    /// More distinct address classes than an LPM value can name.
    #[error("the rule set yields {count} distinct address classes, more than the limit of {limit}")]
    TooManyClasses {
        /// The number of classes.
        count: usize,
        /// The bound.
        limit: usize,
    },
}

//! Why a set of Service ports was refused by [`super::ServiceTable::build`].

use std::net::IpAddr;

use super::model::ServiceKey;

/// A set of Service ports the table cannot hold, naming what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Two Service ports claim one frontend address.
    #[error(
        "{second}: frontend {}:{} (protocol {}) is already {first}'s; give each Service its own address or port",
        frontend.ip, frontend.port, frontend.protocol
    )]
    SharedFrontend {
        /// The address both claim.
        frontend: ServiceKey,
        /// The Service port that claimed it first.
        first: String,
        /// The Service port refused.
        second: String,
    },
    /// An endpoint's address family differs from a frontend's.
    #[error(
        "{service}: endpoint {endpoint} is not in the address family of frontend {}; a Service port balances one family",
        frontend.ip
    )]
    MixedFamilies {
        /// The Service port.
        service: String,
        /// The frontend.
        frontend: ServiceKey,
        /// The endpoint of the other family.
        endpoint: IpAddr,
    },
}

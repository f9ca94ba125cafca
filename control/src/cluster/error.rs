//! Errors of the cluster layer (node leases, peers).

use crate::ipam::IpamError;
use crate::store::StoreError;

/// A cluster step failed; the message names the step.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A store call failed.
    #[error("{step}: {source}")]
    Store {
        /// What the daemon was doing.
        step: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// No free subnet, or a bad plan.
    #[error("lease a node subnet: {0}")]
    Ipam(#[from] IpamError),
    /// Another node kept winning every free subnet (should not happen).
    #[error("lease a node subnet of {cluster}: lost the race for every candidate; retry")]
    Contended {
        /// The cluster CIDR.
        cluster: ipnet::IpNet,
    },
}

/// Tags a store error with the step it failed in.
pub(crate) fn at(step: &'static str) -> impl FnOnce(StoreError) -> ClusterError {
    move |source| ClusterError::Store { step, source }
}

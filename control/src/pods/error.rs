//! Errors of pod attachment.

use tweed_api::dataplane::proto::MacAddr;

use super::netns::NetnsError;
use crate::dataplane::DataplaneError;
use crate::ipam::IpamError;
use crate::store::StoreError;

/// A pod operation failed; nothing was left half done.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// IPAM refused (exhausted, bad attachment).
    #[error("allocate an address: {0}")]
    Ipam(#[from] IpamError),
    /// The store failed; the step is named.
    #[error("{step}: {source}")]
    Store {
        /// What was being done.
        step: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The dataplane failed or refused; the step is named.
    #[error("{step}: {source}")]
    Dataplane {
        /// What was being done.
        step: &'static str,
        /// The dataplane's error.
        #[source]
        source: DataplaneError,
    },
    /// The runtime's netns cannot be reached from the daemon.
    #[error("{0}")]
    Netns(#[from] NetnsError),
    /// A repeated ADD asks for another MAC than the attachment has.
    #[error(
        "container {container_id} interface {ifname} already has MAC {held}, not {wanted}; \
         delete it (CNI DEL) before asking for another"
    )]
    MacDiffers {
        /// The container id.
        container_id: String,
        /// The interface.
        ifname: String,
        /// Its MAC.
        held: MacAddr,
        /// The MAC asked for.
        wanted: MacAddr,
    },
    /// The pod's interface cannot be made as asked, for a reason the
    /// request alone did not show (its MTU against the node's families).
    #[error("{0}")]
    Invalid(String),
    /// Another writer holds the record.
    #[error("the pod record {key} already exists (another daemon with this node name?)")]
    Conflict {
        /// The key.
        key: String,
    },
}

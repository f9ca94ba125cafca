//! The cluster layer: node subnet leases, the records nodes publish, and the
//! view every node keeps of the others (from which its peers are programmed).

pub mod error;
pub mod keys;
pub mod lease;
pub mod record;
pub mod view;
pub mod watch;

pub use error::ClusterError;
pub use record::{NodeRecord, node_addr};
pub use view::ClusterView;

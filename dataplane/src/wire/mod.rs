//! Typed views over the headers tweed parses itself.
//!
//! Contract shared by every view here: `new_checked` verifies the length once,
//! after which every accessor is infallible and cannot panic. Views never copy
//! the bytes they look at.

pub mod ethernet;
pub mod transport;
pub mod virtio_net;
pub mod vxlan;

//! Ports: pod taps, the host port and the underlay sockets (I/O).
//!
//! Everything here is control-plane I/O (creating, configuring and removing
//! interfaces) built on the safe wrappers in [`tweed_sys`] and on rtnetlink;
//! the per-packet path only reads and writes the returned queues and sockets.

pub mod adopt;
pub mod host;
pub mod memory;
pub mod seam;
pub mod tap;
pub mod underlay;

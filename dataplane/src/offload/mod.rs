//! Pure byte transformations the kernel would otherwise do for us: checksums,
//! segmentation of GSO super-frames and their coalescing on receive, IPv4
//! fragmentation, address and port translation (`nat`, with SCTP's CRC32c).
//!
//! Contract shared by the modules here: no I/O, no allocation beyond the
//! caller's `scratch` buffer, and no panic on any input; a malformed input is
//! a typed error naming what is wrong. Functions that produce several packets
//! build each in `scratch` and hand it to an `emit` callback, in wire order.
//! The exceptions are [`gro::TcpGro`], which owns its buffer (it keeps a
//! super-frame across calls) and whose refusals are answers, not errors, and
//! the gathered forms ([`gso::plan`], [`gro_run`]), which write headers
//! only and describe payloads as ranges of the caller's buffer.

pub mod checksum;
pub mod crc32c;
pub mod fragment;
pub mod gro;
pub mod gro_run;
pub mod gso;
pub mod nat;
pub mod udp_gro;

#[cfg(test)]
pub(crate) mod test_frames;

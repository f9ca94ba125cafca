//! Pure byte transformations the kernel would otherwise do for us: checksums,
//! segmentation of GSO super-frames, IPv4 fragmentation.

pub mod checksum;
pub mod fragment;
pub mod gso;

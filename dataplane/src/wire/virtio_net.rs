//! The virtio-net header (placeholder, being written).

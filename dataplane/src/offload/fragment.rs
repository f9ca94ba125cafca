//! IPv4 fragmentation (placeholder, being written).

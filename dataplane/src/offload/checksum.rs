//! Internet checksum arithmetic (placeholder, being written).

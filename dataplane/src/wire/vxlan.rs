//! The VXLAN header (placeholder, being written).

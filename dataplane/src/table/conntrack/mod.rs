//! Connection tracking (placeholder, being written).

//! Pipeline (placeholder, being written).

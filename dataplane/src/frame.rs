//! Frame buffers (placeholder, being written).

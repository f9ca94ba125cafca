//! Policy classification (placeholder, being written).

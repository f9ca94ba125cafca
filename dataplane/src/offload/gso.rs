//! TCP segmentation of GSO super-frames (placeholder, being written).

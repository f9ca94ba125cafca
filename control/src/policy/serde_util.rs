//! Small serde helpers for Kubernetes-shaped input.

use serde::{Deserialize, Deserializer};

/// Reads an optional field where `null` means absent, as Go's decoder does
/// (`from:` with nothing after it in YAML is `null`).
pub fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

//! Request counts the admin route `GET /fake/stats` reports, so a test can
//! see that a client relisted after a 410 or re-watched after a drop.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts since start, by resource plural.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// LIST requests.
    pub lists: BTreeMap<String, u64>,
    /// Watches opened.
    pub watches: BTreeMap<String, u64>,
    /// Watches answered with 410 Expired.
    pub expired: BTreeMap<String, u64>,
    /// Watches open now.
    pub watches_open: u64,
    /// The current resourceVersion.
    pub resource_version: u64,
}

impl Stats {
    /// LISTs of `plural` so far.
    pub fn lists_of(&self, plural: &str) -> u64 {
        self.lists.get(plural).copied().unwrap_or(0)
    }

    /// Watches of `plural` opened so far.
    pub fn watches_of(&self, plural: &str) -> u64 {
        self.watches.get(plural).copied().unwrap_or(0)
    }

    /// Watches of `plural` that got 410 Expired.
    pub fn expired_of(&self, plural: &str) -> u64 {
        self.expired.get(plural).copied().unwrap_or(0)
    }

    pub(crate) fn count(map: &mut BTreeMap<String, u64>, plural: &str) {
        *map.entry(plural.to_owned()).or_default() += 1;
    }
}

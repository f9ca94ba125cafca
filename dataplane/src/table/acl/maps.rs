//! What compiling a rule set lays out before the LPMs are attached: the
//! interval maps and the distinct outcomes ([`Tables`]), built by
//! [`super::compile`] and frozen into a [`super::Classifier`].

use super::rule::Outcome;

/// The interval maps and outcomes, before the LPMs are attached.
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// Offsets of each map into `starts`/`outs`; one more entry than maps.
    pub offsets: Vec<u32>,
    /// Segment starts of every map, each map sorted with its first start 0.
    pub starts: Vec<u32>,
    /// Outcome index of every segment.
    pub outs: Vec<u32>,
    /// Distinct outcomes.
    pub outcomes: Vec<Outcome>,
    /// The map of addresses matching no prefix.
    pub default_map: u32,
}

impl Tables {
    /// Appends an interval map.
    pub fn push_map(&mut self, starts: &[u32], outs: &[u32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.starts.extend_from_slice(starts);
        self.outs.extend_from_slice(outs);
        self.offsets.push(self.starts.len() as u32);
    }
}

//! From the runs to the lines: medians and the tweed/kernel ratio. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::{Impl, Metric, Topology, Unit};

/// The median of `values` (the mean of the middle two for an even count);
/// `None` for none. NaNs are left out.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// The `pct`th percentile of `values` (nearest rank; sorts them); 0 for none.
pub fn percentile(values: &mut [u64], pct: u32) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let rank = (values.len() * pct as usize).div_ceil(100).max(1);
    values[rank.min(values.len()) - 1] as f64
}

/// tweed's value over the kernel's; `None` when either is missing or the
/// kernel's is not positive.
pub fn ratio(tweed: Option<f64>, kernel: Option<f64>) -> Option<f64> {
    match (tweed, kernel) {
        (Some(t), Some(k)) if k > 0.0 => Some(t / k),
        _ => None,
    }
}

/// Every run's values, and the failures, as they come in.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: BTreeMap<(Topology, Metric), [Vec<f64>; 2]>,
    errors: BTreeMap<(Topology, Metric), Vec<String>>,
}

fn slot(implementation: Impl) -> usize {
    match implementation {
        Impl::Tweed => 0,
        Impl::Kernel => 1,
    }
}

impl Samples {
    /// Records one value.
    pub fn add(&mut self, topology: Topology, metric: Metric, implementation: Impl, value: f64) {
        self.values.entry((topology, metric)).or_default()[slot(implementation)].push(value);
    }

    /// Records what a run of the lines in `metrics` should say beside its
    /// value (failed connections).
    pub fn note(
        &mut self,
        topology: Topology,
        metrics: &[Metric],
        implementation: Impl,
        message: &str,
    ) {
        for &metric in metrics {
            self.errors
                .entry((topology, metric))
                .or_default()
                .push(format!("{}: {message}", implementation.label()));
        }
    }

    /// Records a failed run of the lines in `metrics`.
    pub fn fail(
        &mut self,
        topology: Topology,
        metrics: &[Metric],
        implementation: Impl,
        message: &str,
    ) {
        for &metric in metrics {
            self.values.entry((topology, metric)).or_default();
        }
        self.note(topology, metrics, implementation, message);
    }

    /// The lines, in topology and metric order.
    pub fn lines(&self) -> Vec<Line> {
        self.values
            .iter()
            .map(|(&(topology, metric), [tweed_runs, kernel_runs])| {
                let tweed = median(tweed_runs);
                let kernel = median(kernel_runs);
                Line {
                    topology,
                    line: metric.label(),
                    metric,
                    unit: metric.unit(),
                    higher_is_better: metric.higher_is_better(),
                    tweed,
                    kernel,
                    ratio: ratio(tweed, kernel),
                    tweed_runs: tweed_runs.clone(),
                    kernel_runs: kernel_runs.clone(),
                    errors: self
                        .errors
                        .get(&(topology, metric))
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// One line of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Where.
    pub topology: Topology,
    /// What, for people.
    pub line: &'static str,
    /// What, for programs.
    pub metric: Metric,
    /// The unit of the values.
    pub unit: Unit,
    /// Whether more is better.
    pub higher_is_better: bool,
    /// tweed's median.
    pub tweed: Option<f64>,
    /// The kernel's median.
    pub kernel: Option<f64>,
    /// tweed / kernel.
    pub ratio: Option<f64>,
    /// tweed's runs.
    pub tweed_runs: Vec<f64>,
    /// The kernel's runs.
    pub kernel_runs: Vec<f64>,
    /// Why runs failed.
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut hundred: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut hundred, 99), 99.0);
        assert_eq!(percentile(&mut hundred, 50), 50.0);
        assert_eq!(percentile(&mut [7], 99), 7.0);
        assert_eq!(percentile(&mut [], 99), 0.0);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ratio_needs_both_and_a_positive_kernel() {
        assert_eq!(ratio(Some(3.0), Some(4.0)), Some(0.75));
        assert_eq!(ratio(None, Some(4.0)), None);
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    }

    #[test]
    fn lines_take_medians_and_keep_errors() {
        let mut s = Samples::default();
        for v in [10.0, 30.0, 20.0] {
            s.add(Topology::One, Metric::Tcp1, Impl::Tweed, v);
        }
        for v in [40.0, 40.0] {
            s.add(Topology::One, Metric::Tcp1, Impl::Kernel, v);
        }
        s.fail(
            Topology::Two,
            &[Metric::RttP50, Metric::RttP99],
            Impl::Tweed,
            "boom",
        );
        s.add(Topology::Two, Metric::RttP50, Impl::Kernel, 12.0);
        s.note(Topology::One, &[Metric::Tcp1], Impl::Tweed, "2 of 9 failed");
        let lines = s.lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].tweed, Some(20.0), "a note keeps the value");
        assert_eq!(lines[0].errors, ["tweed: 2 of 9 failed"]);
        assert_eq!(lines[0].ratio, Some(0.5));
        assert_eq!(lines[1].metric, Metric::RttP50);
        assert_eq!(lines[1].tweed, None);
        assert_eq!(lines[1].errors, ["tweed: boom"]);
        assert_eq!(lines[2].kernel, None);
    }
}

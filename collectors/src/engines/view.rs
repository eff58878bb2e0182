//! One scrape as the adapter tables see it: the samples of one engine flavor that count (SGLang
//! leaves out the schedulers that repeat rank 0), and the lookups the reductions are made of.
//! It reads; it never decides which metric a signal comes from (that is the tables' job).

use super::{Flavor, SumCount, flavor_of_name};
use crate::MetricSample;

/// One flavor's samples with the lookups the adapters share.
pub(super) struct View<'a> {
    pub(super) samples: Vec<&'a MetricSample>,
}

impl<'a> View<'a> {
    /// The samples of `flavor` that `keep` accepts.
    pub(super) fn new(
        samples: &'a [MetricSample],
        flavor: Flavor,
        keep: fn(&MetricSample) -> bool,
    ) -> View<'a> {
        let samples = samples
            .iter()
            .filter(|s| flavor_of_name(&s.name) == Some(flavor))
            .filter(|s| keep(s))
            .collect();
        View { samples }
    }

    pub(super) fn series<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'a MetricSample> + 's {
        self.samples.iter().copied().filter(move |s| s.name == name)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// The sum over every series of `name` (DP ranks, reasons, modes); `None` when absent.
    pub(super) fn sum(&self, name: &str) -> Option<f64> {
        self.sum_where(name, |_| true)
    }

    pub(super) fn sum_where(
        &self,
        name: &str,
        keep: impl Fn(&MetricSample) -> bool,
    ) -> Option<f64> {
        self.series(name)
            .filter(|s| keep(s))
            .map(|s| s.value)
            .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    }

    /// The mean over every series of `name` (a fraction averaged over DP ranks).
    pub(super) fn mean(&self, name: &str) -> Option<f64> {
        let values: Vec<f64> = self.series(name).map(|s| s.value).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }

    /// A histogram's running sum and count, summed over series; the count falls back to the
    /// `+Inf` bucket. `None` unless both are present.
    pub(super) fn hist(&self, base: &str) -> Option<SumCount> {
        let sum = self.sum(&format!("{base}_sum"))?;
        let count = self.sum(&format!("{base}_count")).or_else(|| {
            self.sum_where(&format!("{base}_bucket"), |s| {
                s.label("le")
                    .is_some_and(|le| le == "+Inf" || le == "Inf" || le == "inf")
            })
        })?;
        Some(SumCount { sum, count })
    }

    /// Distinct values of `label` among the samples.
    pub(super) fn distinct(&self, label: &str) -> usize {
        let mut values: Vec<&str> = self.samples.iter().filter_map(|s| s.label(label)).collect();
        values.sort_unstable();
        values.dedup();
        values.len()
    }
}

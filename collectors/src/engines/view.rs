//! One scrape as the adapter tables see it: the samples of one engine flavor that count (SGLang
//! keeps one scheduler per DP rank: the others repeat it), and the lookups the reductions are
//! made of. It reads; it never decides which metric a signal comes from (that is the tables'
//! job).

use std::collections::BTreeMap;

use super::{Flavor, SumCount, flavor_of_name};
use crate::MetricSample;

/// Which of an engine's series count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Every series (vLLM: one per DP engine; llama.cpp: one process).
    All,
    /// SGLang: one scheduler per DP rank (`dp_rank`, or one group where it is absent), the one
    /// with the lowest `tp_rank` in PP stage 0; series without `tp_rank` (the tokenizer's) are
    /// kept. With DP attention `tp_rank` is the global TP rank, so rank r's scheduler may be
    /// `tp_rank="r"` (a DP-attention deployment over 8 ranks labels them so: docs/ENGINE-METRICS.md
    /// §2.2), and with `--enable-metrics-for-all-schedulers` the others of a group repeat its
    /// numbers.
    OneSchedulerPerDpRank,
}

/// The lowest `tp_rank` of PP stage 0 per `dp_rank` value (`None`: unlabelled).
fn lowest_tp_per_dp(samples: &[&MetricSample]) -> BTreeMap<Option<String>, u64> {
    let mut out: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for s in samples {
        if s.label("pp_rank").is_some_and(|p| p != "0") {
            continue;
        }
        if let Some(tp) = s.label("tp_rank").and_then(|t| t.parse::<u64>().ok()) {
            let dp = s.label("dp_rank").map(str::to_string);
            let e = out.entry(dp).or_insert(tp);
            *e = (*e).min(tp);
        }
    }
    out
}

/// One flavor's samples with the lookups the adapters share.
pub(super) struct View<'a> {
    pub(super) samples: Vec<&'a MetricSample>,
}

impl<'a> View<'a> {
    /// The samples of `flavor` that `keep` accepts.
    pub(super) fn new(samples: &'a [MetricSample], flavor: Flavor, keep: Keep) -> View<'a> {
        let samples: Vec<&MetricSample> = samples
            .iter()
            .filter(|s| flavor_of_name(&s.name) == Some(flavor))
            .collect();
        let samples = match keep {
            Keep::All => samples,
            Keep::OneSchedulerPerDpRank => {
                let lowest = lowest_tp_per_dp(&samples);
                samples
                    .into_iter()
                    .filter(|s| match s.label("tp_rank") {
                        None => true,
                        Some(tp) => {
                            s.label("pp_rank").is_none_or(|p| p == "0")
                                && tp.parse::<u64>().ok()
                                    == lowest.get(&s.label("dp_rank").map(str::to_string)).copied()
                        }
                    })
                    .collect()
            }
        };
        View { samples }
    }

    pub(super) fn series<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'a MetricSample> + 's {
        self.samples
            .iter()
            .copied()
            .filter(move |s| &*s.name == name)
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| &*s.name == name)
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

    /// The view of one DP rank: the samples whose `label` is `value`.
    pub(super) fn only(&self, label: &str, value: &str) -> View<'a> {
        View {
            samples: self
                .samples
                .iter()
                .copied()
                .filter(|s| s.label(label) == Some(value))
                .collect(),
        }
    }

    /// The distinct values of `label` among the samples, sorted.
    pub(super) fn values(&self, label: &str) -> Vec<&'a str> {
        let mut values: Vec<&str> = self.samples.iter().filter_map(|s| s.label(label)).collect();
        values.sort_unstable();
        values.dedup();
        values
    }

    /// Distinct values of `label` among the samples.
    pub(super) fn distinct(&self, label: &str) -> usize {
        let mut values: Vec<&str> = self.samples.iter().filter_map(|s| s.label(label)).collect();
        values.sort_unstable();
        values.dedup();
        values.len()
    }
}

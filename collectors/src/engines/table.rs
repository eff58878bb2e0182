//! The engine adapters as data, and the one interpreter that reads a scrape through them.
//!
//! Each engine is an [`Adapter`]: a table of [`Row`]s, one per canonical signal, naming the
//! metric families in order of preference (the current name first, then the older ones it was
//! renamed from) and the [`Reduce`] that turns their series into one number; then a few
//! [`Derived`] signals computed from others (a fraction from used / capacity, a per-rank share).
//! A row takes the first name the scrape carries and records it in [`Signals::sources`]; a
//! signal none of its names carries stays `None`, never 0. Adding a renamed metric is adding
//! its name to a row.
//!
//! No row converts units: every engine exposes the signals the tables read in seconds, tokens
//! and counts already. The tables mirror `docs/ENGINE-METRICS.md`; a test checks that every
//! name in them is in that document. What is not a row stays code in the engine's module, small
//! and documented: vLLM's V0/V1 guess and `cache_config_info` labels, llama.cpp's windowed
//! busy slots and `/props`.

use std::collections::BTreeMap;

use super::view::{Keep, View};
use super::{RankSignals, Signals, SumCount};

/// A canonical signal that is one number: a field of [`Signals`] holding `Option<f64>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Num {
    Running,
    Waiting,
    KvUsageFrac,
    KvCapacityTokens,
    KvCapacityTokensPerRank,
    KvUsedTokens,
    PromptTokensTotal,
    GenerationTokensTotal,
    LiveGenerationTokensTotal,
    GenerationSecondsTotal,
    StepsTotal,
    PreemptionsTotal,
    PrefixCacheQueriesTotal,
    PrefixCacheHitsTotal,
    SpecDraftsTotal,
    SpecDraftTokensTotal,
    SpecAcceptedTokensTotal,
    SpecAcceptLength,
    BusySlotsPerDecode,
    DecodeForwardSecondsTotal,
    RequestsFinishedTotal,
    PreemptionsRecent,
    PdBootstrapQueue,
    PdPreallocQueue,
    PdTransferQueue,
}

impl Num {
    /// Every number signal, for the tests that check each one against [`Signals`].
    #[cfg(test)]
    pub(super) const ALL: [Num; 25] = [
        Num::Running,
        Num::Waiting,
        Num::KvUsageFrac,
        Num::KvCapacityTokens,
        Num::KvCapacityTokensPerRank,
        Num::KvUsedTokens,
        Num::PromptTokensTotal,
        Num::GenerationTokensTotal,
        Num::LiveGenerationTokensTotal,
        Num::GenerationSecondsTotal,
        Num::StepsTotal,
        Num::PreemptionsTotal,
        Num::PrefixCacheQueriesTotal,
        Num::PrefixCacheHitsTotal,
        Num::SpecDraftsTotal,
        Num::SpecDraftTokensTotal,
        Num::SpecAcceptedTokensTotal,
        Num::SpecAcceptLength,
        Num::BusySlotsPerDecode,
        Num::DecodeForwardSecondsTotal,
        Num::RequestsFinishedTotal,
        Num::PreemptionsRecent,
        Num::PdBootstrapQueue,
        Num::PdPreallocQueue,
        Num::PdTransferQueue,
    ];

    /// The field's name (its key in [`Signals::sources`]) and the field.
    pub(super) fn slot(self, s: &mut Signals) -> (&'static str, &mut Option<f64>) {
        match self {
            Num::Running => ("running", &mut s.running),
            Num::Waiting => ("waiting", &mut s.waiting),
            Num::KvUsageFrac => ("kv_usage_frac", &mut s.kv_usage_frac),
            Num::KvCapacityTokens => ("kv_capacity_tokens", &mut s.kv_capacity_tokens),
            Num::KvCapacityTokensPerRank => (
                "kv_capacity_tokens_per_rank",
                &mut s.kv_capacity_tokens_per_rank,
            ),
            Num::KvUsedTokens => ("kv_used_tokens", &mut s.kv_used_tokens),
            Num::PromptTokensTotal => ("prompt_tokens_total", &mut s.prompt_tokens_total),
            Num::GenerationTokensTotal => {
                ("generation_tokens_total", &mut s.generation_tokens_total)
            }
            Num::LiveGenerationTokensTotal => (
                "live_generation_tokens_total",
                &mut s.live_generation_tokens_total,
            ),
            Num::GenerationSecondsTotal => {
                ("generation_seconds_total", &mut s.generation_seconds_total)
            }
            Num::StepsTotal => ("steps_total", &mut s.steps_total),
            Num::PreemptionsTotal => ("preemptions_total", &mut s.preemptions_total),
            Num::PrefixCacheQueriesTotal => (
                "prefix_cache_queries_total",
                &mut s.prefix_cache_queries_total,
            ),
            Num::PrefixCacheHitsTotal => {
                ("prefix_cache_hits_total", &mut s.prefix_cache_hits_total)
            }
            Num::SpecDraftsTotal => ("spec_drafts_total", &mut s.spec_drafts_total),
            Num::SpecDraftTokensTotal => {
                ("spec_draft_tokens_total", &mut s.spec_draft_tokens_total)
            }
            Num::SpecAcceptedTokensTotal => (
                "spec_accepted_tokens_total",
                &mut s.spec_accepted_tokens_total,
            ),
            Num::SpecAcceptLength => ("spec_accept_length", &mut s.spec_accept_length),
            Num::BusySlotsPerDecode => ("busy_slots_per_decode", &mut s.busy_slots_per_decode),
            Num::DecodeForwardSecondsTotal => (
                "decode_forward_seconds_total",
                &mut s.decode_forward_seconds_total,
            ),
            Num::RequestsFinishedTotal => {
                ("requests_finished_total", &mut s.requests_finished_total)
            }
            Num::PreemptionsRecent => ("preemptions_recent", &mut s.preemptions_recent),
            Num::PdBootstrapQueue => ("pd_bootstrap_queue", &mut s.pd_bootstrap_queue),
            Num::PdPreallocQueue => ("pd_prealloc_queue", &mut s.pd_prealloc_queue),
            Num::PdTransferQueue => ("pd_transfer_queue", &mut s.pd_transfer_queue),
        }
    }

    /// The signal's value and the metric it came from, if it is set.
    fn read(self, s: &mut Signals) -> Option<(f64, String)> {
        let (key, slot) = self.slot(s);
        let value = (*slot)?;
        Some((value, s.sources.get(key).cloned().unwrap_or_default()))
    }

    fn set(self, s: &mut Signals, value: f64, source: String) {
        let (key, slot) = self.slot(s);
        *slot = Some(value);
        s.sources.insert(key, source);
    }
}

/// A canonical engine-side latency histogram (seconds): a field of [`Signals`] holding
/// `Option<SumCount>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hist {
    Ttft,
    Itl,
    Tpot,
    E2e,
    Queue,
    Prefill,
}

impl Hist {
    #[cfg(test)]
    pub(super) const ALL: [Hist; 6] = [
        Hist::Ttft,
        Hist::Itl,
        Hist::Tpot,
        Hist::E2e,
        Hist::Queue,
        Hist::Prefill,
    ];

    /// The field's name (its key in [`Signals::sources`]) and the field.
    pub(super) fn slot(self, s: &mut Signals) -> (&'static str, &mut Option<SumCount>) {
        match self {
            Hist::Ttft => ("ttft_s", &mut s.ttft_s),
            Hist::Itl => ("itl_s", &mut s.itl_s),
            Hist::Tpot => ("tpot_s", &mut s.tpot_s),
            Hist::E2e => ("e2e_s", &mut s.e2e_s),
            Hist::Queue => ("queue_s", &mut s.queue_s),
            Hist::Prefill => ("prefill_s", &mut s.prefill_s),
        }
    }
}

/// Which values of a label a [`Reduce::SumWhere`] keeps.
#[derive(Debug, Clone, Copy)]
pub(super) enum Match {
    /// Exactly this value.
    Is(&'static str),
    /// Any value starting with this (`decode_cuda_graph`, `decode_none`).
    Prefix(&'static str),
}

/// How the series of one metric family (DP ranks, reasons, modes) become one number.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reduce {
    /// Sum over every series: counters, and gauges that count (requests, tokens) per DP rank.
    Sum,
    /// Sum over the series whose label (first) has a matching value.
    SumWhere(&'static str, Match),
    /// Mean over the series: a fraction or an average, one per DP rank.
    Mean,
    /// Mean over the non-zero series: an average a rank that did no such work reports as 0
    /// (SGLang's `spec_accept_length` on an idle DP rank). 0 when every series is 0.
    MeanNonZero,
    /// Sum over the series; where they are split by the label (first) and the split carries
    /// its own total as the series with the label's value (second), that series only.
    TotalOfSplit(&'static str, &'static str),
    /// The `_count` of a histogram (`+Inf` bucket when there is none; `None` without `_sum`):
    /// observations, such as engine steps. The source names the `_count` series.
    HistCount,
    /// Values carried in labels rather than in the sample value, read by a function.
    Labels(fn(&View<'_>, &str) -> Option<f64>),
}

impl Reduce {
    fn apply(self, v: &View<'_>, name: &str) -> Option<f64> {
        match self {
            Reduce::Sum => v.sum(name),
            Reduce::SumWhere(label, m) => v.sum_where(name, |s| match (s.label(label), m) {
                (Some(x), Match::Is(want)) => x == want,
                (Some(x), Match::Prefix(p)) => x.starts_with(p),
                (None, _) => false,
            }),
            Reduce::Mean => v.mean(name),
            Reduce::MeanNonZero => {
                let nonzero: Vec<f64> = v
                    .series(name)
                    .map(|s| s.value)
                    .filter(|x| *x != 0.0)
                    .collect();
                match nonzero.len() {
                    0 => v.mean(name),
                    n => Some(nonzero.iter().sum::<f64>() / n as f64),
                }
            }
            Reduce::TotalOfSplit(label, total) => {
                if v.series(name).any(|s| s.label(label).is_some()) {
                    v.sum_where(name, |s| s.label(label) == Some(total))
                } else {
                    v.sum(name)
                }
            }
            Reduce::HistCount => v.hist(name).map(|h| h.count),
            Reduce::Labels(read) => read(v, name),
        }
    }

    /// The raw metric a value read from family `name` is recorded as coming from.
    fn source(self, name: &str) -> String {
        match self {
            Reduce::HistCount => format!("{name}_count"),
            _ => name.to_string(),
        }
    }
}

/// One canonical signal of one engine: the metric families that carry it, newest name first.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row {
    Num {
        signal: Num,
        names: &'static [&'static str],
        reduce: Reduce,
    },
    /// A latency histogram: `_sum` and `_count` (or `+Inf`) summed over series.
    Hist {
        signal: Hist,
        names: &'static [&'static str],
    },
}

/// A number row (for the tables): the signal, how its series reduce, its names newest first.
pub(super) const fn num(signal: Num, reduce: Reduce, names: &'static [&'static str]) -> Row {
    Row::Num {
        signal,
        names,
        reduce,
    }
}

/// A histogram row (for the tables): the signal and its names newest first.
pub(super) const fn hist(signal: Hist, names: &'static [&'static str]) -> Row {
    Row::Hist { signal, names }
}

impl Row {
    pub(super) fn names(&self) -> &'static [&'static str] {
        match self {
            Row::Num { names, .. } | Row::Hist { names, .. } => names,
        }
    }

    fn read(&self, v: &View<'_>, out: &mut Signals) {
        match *self {
            Row::Num {
                signal,
                names,
                reduce,
            } => {
                let found = names
                    .iter()
                    .find_map(|&n| reduce.apply(v, n).map(|x| (x, reduce.source(n))));
                if let Some((x, source)) = found {
                    signal.set(out, x, source);
                }
            }
            Row::Hist { signal, names } => {
                if let Some((h, name)) = names.iter().find_map(|&n| v.hist(n).map(|h| (h, n))) {
                    let (key, slot) = signal.slot(out);
                    *slot = Some(h);
                    out.sources.insert(key, name.to_string());
                }
            }
        }
    }
}

/// A signal computed from others once the rows are read. Its source names theirs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Derived {
    /// `signal = num / den` when no row set it and `den > 0` (source `num / den`).
    Ratio { signal: Num, num: Num, den: Num },
    /// `signal = of / DP ranks`: what one rank holds (source `of / DP ranks`).
    PerRank { signal: Num, of: Num },
    /// `signal = a + b` when both are set (source `a + b`).
    Add { signal: Num, a: Num, b: Num },
    /// `signal = of` when `when` is set (the same source as `of`).
    CopyWhen { signal: Num, of: Num, when: Num },
}

impl Derived {
    fn apply(self, out: &mut Signals, dp_ranks: usize) {
        match self {
            Derived::Ratio { signal, num, den } => {
                if signal.read(out).is_none()
                    && let (Some((n, ns)), Some((d, ds))) = (num.read(out), den.read(out))
                    && d > 0.0
                {
                    signal.set(out, n / d, format!("{ns} / {ds}"));
                }
            }
            Derived::PerRank { signal, of } => {
                if let Some((x, source)) = of.read(out) {
                    signal.set(out, x / dp_ranks as f64, format!("{source} / DP ranks"));
                }
            }
            Derived::Add { signal, a, b } => {
                if let (Some((x, xs)), Some((y, ys))) = (a.read(out), b.read(out)) {
                    signal.set(out, x + y, format!("{xs} + {ys}"));
                }
            }
            Derived::CopyWhen { signal, of, when } => {
                if when.read(out).is_some()
                    && let Some((x, source)) = of.read(out)
                {
                    signal.set(out, x, source);
                }
            }
        }
    }
}

/// One engine's adapter: its tables and what stays code.
pub(super) struct Adapter {
    /// Which series count (SGLang: one scheduler per DP rank; the others repeat it).
    pub(super) keep: Keep,
    /// The label whose distinct values are the DP ranks; `None`: one rank.
    pub(super) dp_label: Option<&'static str>,
    pub(super) rows: &'static [Row],
    /// Applied in order, after every row.
    pub(super) derived: &'static [Derived],
    /// What is not a row (vLLM's V0/V1 guess), run last.
    pub(super) code: Option<fn(&View<'_>, &mut Signals)>,
}

impl Adapter {
    /// Reads one scrape's view into `out` (whose `flavor` and `model` the caller set).
    pub(super) fn read(&self, v: &View<'_>, out: &mut Signals) {
        if let Some(label) = self.dp_label {
            out.dp_ranks = v.distinct(label).max(1);
        }
        for row in self.rows {
            row.read(v, out);
        }
        let dp_ranks = out.dp_ranks;
        for d in self.derived {
            d.apply(out, dp_ranks);
        }
        if let Some(code) = self.code {
            code(v, out);
        }
        if let Some(label) = self.dp_label {
            out.ranks = self.per_rank(v, label);
        }
    }

    /// Each DP rank's own running, waiting, steps, live tokens and inter-token histogram, read
    /// by the same rows from that rank's series only. Empty when no series carries `label`.
    fn per_rank(&self, v: &View<'_>, label: &str) -> BTreeMap<String, RankSignals> {
        v.values(label)
            .into_iter()
            .map(|rank| {
                let mut one = Signals::default();
                let only = v.only(label, rank);
                for row in self.rows {
                    row.read(&only, &mut one);
                }
                let signals = RankSignals {
                    running: one.running,
                    waiting: one.waiting,
                    steps_total: one.steps_total,
                    live_generation_tokens_total: one.live_generation_tokens_total,
                    itl_s: one.itl_s,
                };
                (rank.to_string(), signals)
            })
            .collect()
    }

    /// Every family the rows read, fallbacks included, in table order without repeats.
    pub(super) fn names(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for &name in self.rows.iter().flat_map(Row::names) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

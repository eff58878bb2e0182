//! Engine adapters: from raw `/metrics` samples (names exactly as scraped) to the canonical
//! signals `ceiling` reasons with — running and waiting requests, KV usage and capacity, token
//! and step counters, preemptions, prefix-cache and spec-decode counters, the engine's own
//! latency histogram sums and counts.
//!
//! This is the one place that knows engine metric names; `../shared/ENGINE-METRICS.md` (copied
//! into `docs/`) is the reference for every name, rename and quirk. A signal the exposition does
//! not carry is `None`, never 0. Per-DP-rank series are summed for counters and for running /
//! waiting; fractions (KV usage) are averaged over ranks.
//!
//! The contract ([`Flavor`], [`detect`], [`Signals`], [`signals`]) is used by the analysis in
//! `ceiling-reports`; the adapters fill it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::MetricSample;

/// Which engine exposed the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Vllm,
    Sglang,
    Llamacpp,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Vllm => "vllm",
            Flavor::Sglang => "sglang",
            Flavor::Llamacpp => "llamacpp",
        }
    }
}

/// A histogram reduced to what the analysis uses: its running sum and count.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SumCount {
    pub sum: f64,
    pub count: f64,
}

/// The canonical view of one scrape. Counters are the engine's cumulative values (deltas are
/// the analysis' business); `None` means the engine does not expose the signal.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Signals {
    pub flavor: Option<Flavor>,
    /// Model name from labels (`model_name`), where present.
    pub model: Option<String>,
    /// Distinct DP ranks (`engine` / `dp_rank` labels); 1 when unlabelled.
    pub dp_ranks: usize,
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    /// KV cache in use, 0..=1.
    pub kv_usage_frac: Option<f64>,
    /// KV cache capacity in tokens (blocks × block size, or the engine's token pool).
    pub kv_capacity_tokens: Option<f64>,
    pub prompt_tokens_total: Option<f64>,
    pub generation_tokens_total: Option<f64>,
    /// Engine steps (forward passes) so far: vLLM `iteration_tokens_total_count`, SGLang
    /// `cuda_graph_passes_total` (decode passes), llama.cpp `n_decode_total`.
    pub steps_total: Option<f64>,
    pub preemptions_total: Option<f64>,
    pub prefix_cache_queries_total: Option<f64>,
    pub prefix_cache_hits_total: Option<f64>,
    pub spec_drafts_total: Option<f64>,
    pub spec_draft_tokens_total: Option<f64>,
    pub spec_accepted_tokens_total: Option<f64>,
    /// Engine-side latency histograms (seconds).
    pub ttft_s: Option<SumCount>,
    pub itl_s: Option<SumCount>,
    pub tpot_s: Option<SumCount>,
    pub e2e_s: Option<SumCount>,
    pub requests_finished_total: Option<f64>,
    /// For each signal set above, the raw metric name it came from.
    pub sources: BTreeMap<&'static str, String>,
}

/// Guesses the engine from the metric names present.
pub fn detect(samples: &[MetricSample]) -> Option<Flavor> {
    let mut found = None;
    for s in samples {
        let f = if s.name.starts_with("vllm:") {
            Flavor::Vllm
        } else if s.name.starts_with("sglang:") {
            Flavor::Sglang
        } else if s.name.starts_with("llamacpp:") {
            Flavor::Llamacpp
        } else {
            continue;
        };
        found = Some(f);
        break;
    }
    found
}

/// Maps one scrape's samples to canonical signals for `flavor` (or the detected one).
pub fn signals(samples: &[MetricSample], flavor: Option<Flavor>) -> Signals {
    let flavor = flavor.or_else(|| detect(samples));
    let mut out = Signals {
        flavor,
        dp_ranks: 1,
        ..Signals::default()
    };
    // The adapters (collectors issue) fill the rest; until then only the flavor is known.
    let _ = samples;
    out.sources.clear();
    out
}

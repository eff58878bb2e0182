//! Engine adapters: from raw `/metrics` samples (names exactly as scraped) to the canonical
//! signals `ceiling` reasons with — running and waiting requests, KV usage and capacity, token
//! and step counters, preemptions, prefix-cache and spec-decode counters, the engine's own
//! latency histogram sums and counts.
//!
//! This is the one place that knows engine metric names, as one table per engine (`vllm`,
//! `sglang`, `llamacpp`) read by one interpreter (`table`); `docs/ENGINE-METRICS.md` is the
//! reference for every name, rename and quirk, and a test keeps the tables inside it. A signal
//! the exposition does not carry is `None`, never 0. Per-DP-rank series are summed for counters
//! and for running / waiting; fractions (KV usage) are averaged over ranks.
//!
//! The contract ([`Flavor`], [`detect`], [`Signals`], [`signals`]) is used by the analysis in
//! `ceiling-reports`; the adapters fill it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Serialize;

use crate::MetricSample;
use crate::prometheus::base_name;

mod llamacpp;
mod sglang;
mod table;
mod view;
mod vllm;

pub use llamacpp::{SlotCapacity, busy_slots_between, props_capacity};

#[cfg(test)]
mod characterization;
#[cfg(test)]
mod tests;

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

/// One DP rank's own readings, where the exposition labels its series by rank (vLLM `engine`,
/// SGLang `dp_rank`). `None`: the rank's series do not carry the signal (SGLang's tokenizer-side
/// histograms are shared by every rank).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RankSignals {
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    pub steps_total: Option<f64>,
    pub live_generation_tokens_total: Option<f64>,
    pub itl_s: Option<SumCount>,
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
    /// Generated tokens; where the engine adds them only when a request finishes (SGLang,
    /// llama.cpp `tokens_predicted_total`) this jumps at completions: see
    /// `live_generation_tokens_total` for rates inside a window.
    pub generation_tokens_total: Option<f64>,
    /// Generation wall time summed over finished requests, per slot (llama.cpp
    /// `tokens_predicted_seconds_total`; with N busy slots it grows N× faster than wall time,
    /// and only when a request finishes).
    pub generation_seconds_total: Option<f64>,
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
    /// Time a request waited in the engine's queue before it was first scheduled (vLLM V1
    /// `request_queue_time_seconds`, SGLang 0.5.4+ `queue_time_seconds`).
    pub queue_s: Option<SumCount>,
    /// First scheduled to first token: the prompt's compute (vLLM V1
    /// `request_prefill_time_seconds`).
    pub prefill_s: Option<SumCount>,
    pub requests_finished_total: Option<f64>,
    /// The engine's version generation where the names tell it: vLLM `v0` or `v1`.
    pub generation: Option<&'static str>,
    /// KV tokens held by live requests (SGLang `num_used_tokens`, llama.cpp `kv_cache_tokens`).
    pub kv_used_tokens: Option<f64>,
    /// `kv_capacity_tokens` divided by the DP ranks: what one rank's batch must fit in.
    pub kv_capacity_tokens_per_rank: Option<f64>,
    /// SGLang `spec_accept_length`: mean tokens per verify step including the bonus token,
    /// over the engine's last log window (a gauge, not a counter).
    pub spec_accept_length: Option<f64>,
    /// llama.cpp `n_busy_slots_per_decode`: the running average of busy slots per decode call
    /// since the server started (window it with `n_decode_total`).
    pub busy_slots_per_decode: Option<f64>,
    /// Output tokens counted live, step by step (vLLM `generation_tokens_total`; SGLang
    /// 0.5.8+ `realtime_tokens_total{mode="decode"}`), where `generation_tokens_total` is only
    /// added when a request finishes (SGLang, llama.cpp). Use this for rates inside a window.
    pub live_generation_tokens_total: Option<f64>,
    /// GPU time of decode forward passes from CUDA events (SGLang 0.5.8+ with
    /// `SGLANG_ENABLE_METRICS_DEVICE_TIMER=1`: `forward_execution_seconds_total` /
    /// `gpu_execution_seconds_total`, category `decode`).
    pub decode_forward_seconds_total: Option<f64>,
    /// Requests the engine retracted (SGLang's preemption) since its last log point: SGLang
    /// `num_retracted_reqs`, a gauge (0.5.4+, one series per scheduler process, `pid` label).
    /// Where the cumulative `preemptions_total` is missing, a non-zero value is the evidence.
    pub preemptions_recent: Option<f64>,
    /// SGLang prefill/decode disaggregation, on a prefill server: requests waiting for their
    /// decode server to be ready before prefill may start (`num_prefill_bootstrap_queue_reqs`).
    pub pd_bootstrap_queue: Option<f64>,
    /// On a decode server: requests waiting for decode KV memory to be reserved
    /// (`num_decode_prealloc_queue_reqs`).
    pub pd_prealloc_queue: Option<f64>,
    /// On a decode server: requests whose KV is being transferred from the prefill side
    /// (`num_decode_transfer_queue_reqs`).
    pub pd_transfer_queue: Option<f64>,
    /// The inter-token histogram counts tokens, not steps: SGLang adds the whole interval to
    /// `_sum` and the number of new tokens to `_count`
    /// (`python/sglang/srt/metrics/collector.py`, `TokenizerMetricsCollector.
    /// observe_inter_token_latency`), so `Δsum / Δcount` is the step time ÷ the accept length.
    pub itl_per_token: bool,
    /// The spec-decode counters move only when a request ends: llama.cpp adds a slot's draft
    /// tallies when the slot is released (`tools/server/server-context.cpp`,
    /// `server_metrics::on_prediction`), so a window's delta is a few requests' tallies at best;
    /// read them over whole steps or waves.
    pub spec_at_request_end: bool,
    /// Per DP rank, keyed by the rank label's value; empty where the series carry no rank label.
    pub ranks: BTreeMap<String, RankSignals>,
    /// For each signal set above, the raw metric name it came from.
    pub sources: BTreeMap<&'static str, String>,
}

/// Guesses the engine from the metric names present: the prefix of the first engine sample.
pub fn detect(samples: &[MetricSample]) -> Option<Flavor> {
    samples.iter().find_map(|s| flavor_of_name(&s.name))
}

fn flavor_of_name(name: &str) -> Option<Flavor> {
    if name.starts_with("vllm:") {
        Some(Flavor::Vllm)
    } else if name.starts_with("sglang:") {
        Some(Flavor::Sglang)
    } else if name.starts_with("llamacpp:") {
        Some(Flavor::Llamacpp)
    } else {
        None
    }
}

/// Maps one scrape's samples to canonical signals for `flavor` (or the detected one).
pub fn signals(samples: &[MetricSample], flavor: Option<Flavor>) -> Signals {
    let flavor = flavor.or_else(|| detect(samples));
    let mut out = Signals {
        flavor,
        dp_ranks: 1,
        ..Signals::default()
    };
    let Some(flavor) = flavor else {
        return out;
    };
    let adapter = adapter(flavor);
    let view = view::View::new(samples, flavor, adapter.keep);
    out.model = view
        .samples
        .iter()
        .find_map(|s| s.label("model_name"))
        .map(str::to_string);
    adapter.read(&view, &mut out);
    out
}

fn adapter(flavor: Flavor) -> &'static table::Adapter {
    match flavor {
        Flavor::Vllm => &vllm::ADAPTER,
        Flavor::Sglang => &sglang::ADAPTER,
        Flavor::Llamacpp => &llamacpp::ADAPTER,
    }
}

/// The engine-family names in `samples` (histogram and summary suffixes stripped) that the
/// adapter for the detected flavor does not read, sorted and deduplicated.
pub fn unmapped(samples: &[MetricSample]) -> Vec<String> {
    let Some(flavor) = detect(samples) else {
        return Vec::new();
    };
    let used = used_names(flavor);
    let mut out: Vec<String> = samples
        .iter()
        .filter(|s| flavor_of_name(&s.name) == Some(flavor))
        .map(|s| base_name(&s.name))
        .filter(|n| !used.contains(n))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every family name the adapter for `flavor` reads (fallbacks included), in table order.
pub fn used_names(flavor: Flavor) -> &'static [&'static str] {
    type Names = LazyLock<Vec<&'static str>>;
    static VLLM: Names = LazyLock::new(|| vllm::ADAPTER.names());
    static SGLANG: Names = LazyLock::new(|| sglang::ADAPTER.names());
    static LLAMACPP: Names = LazyLock::new(|| llamacpp::ADAPTER.names());
    match flavor {
        Flavor::Vllm => &VLLM,
        Flavor::Sglang => &SGLANG,
        Flavor::Llamacpp => &LLAMACPP,
    }
}

type CounterOf = fn(&Signals) -> Option<f64>;
type HistOf = fn(&Signals) -> Option<SumCount>;

/// Per-second rates of the counter signals between two scrapes `dt_s` apart, and the window
/// means of the latency histograms (`Δsum / Δcount`). A counter that went down (an engine
/// restart) or is missing in either scrape is left out.
pub fn rates(before: &Signals, after: &Signals, dt_s: f64) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    if dt_s <= 0.0 || !dt_s.is_finite() {
        return out;
    }
    let counters: [(&'static str, CounterOf); 12] = [
        ("prompt_tokens_per_s", |s| s.prompt_tokens_total),
        ("generation_tokens_per_s", |s| s.generation_tokens_total),
        ("steps_per_s", |s| s.steps_total),
        ("preemptions_per_s", |s| s.preemptions_total),
        ("prefix_cache_queries_per_s", |s| {
            s.prefix_cache_queries_total
        }),
        ("prefix_cache_hits_per_s", |s| s.prefix_cache_hits_total),
        ("spec_drafts_per_s", |s| s.spec_drafts_total),
        ("spec_draft_tokens_per_s", |s| s.spec_draft_tokens_total),
        ("spec_accepted_tokens_per_s", |s| {
            s.spec_accepted_tokens_total
        }),
        ("requests_finished_per_s", |s| s.requests_finished_total),
        ("live_generation_tokens_per_s", |s| {
            s.live_generation_tokens_total
        }),
        ("decode_forward_seconds_per_s", |s| {
            s.decode_forward_seconds_total
        }),
    ];
    for (key, get) in counters {
        if let (Some(a), Some(b)) = (get(before), get(after))
            && b >= a
        {
            out.insert(key, (b - a) / dt_s);
        }
    }
    let hists: [(&'static str, HistOf); 4] = [
        ("ttft_s_mean", |s| s.ttft_s),
        ("itl_s_mean", |s| s.itl_s),
        ("tpot_s_mean", |s| s.tpot_s),
        ("e2e_s_mean", |s| s.e2e_s),
    ];
    for (key, get) in hists {
        if let (Some(a), Some(b)) = (get(before), get(after)) {
            let dc = b.count - a.count;
            if dc > 0.0 && b.sum >= a.sum {
                out.insert(key, (b.sum - a.sum) / dc);
            }
        }
    }
    out
}

//! vLLM (V0 and V1) as a table: every rename of `docs/ENGINE-METRICS.md` section 1, newest name
//! first. DP engines (`engine` label) are summed for counts and averaged for the KV fraction.
//! Code, not rows: the V0/V1 guess from the names present, and the KV capacity read out of
//! `cache_config_info`'s labels.

use super::Signals;
use super::table::{Adapter, Derived, Hist, Num, Reduce, Row, hist, num};
use super::view::{Keep, View};

use Hist::{E2e, Itl, Prefill, Queue, Tpot, Ttft};
use Num::*;
use Reduce::{HistCount, Labels, Mean, Sum};

/// One row per signal: the signal, the reduction, the names newest first. The versions are
/// those of `docs/ENGINE-METRICS.md` section 1.1.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    num(Running, Sum, &["vllm:num_requests_running"]),
    num(Waiting, Sum, &["vllm:num_requests_waiting"]),
    // Renamed in 0.9.2; the old name is hidden in 0.11 and gone in 0.12.
    num(KvUsageFrac, Mean, &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
    num(KvCapacityTokens, Labels(kv_capacity), &["vllm:cache_config_info"]),
    num(PromptTokensTotal, Sum, &["vllm:prompt_tokens_total"]),
    num(GenerationTokensTotal, Sum, &["vllm:generation_tokens_total"]),
    // vLLM counts output tokens step by step: the live counter is the same one.
    num(LiveGenerationTokensTotal, Sum, &["vllm:generation_tokens_total"]),
    // A histogram whose name ends in `_total`: one observation per engine step.
    num(StepsTotal, HistCount, &["vllm:iteration_tokens_total"]),
    num(PreemptionsTotal, Sum, &["vllm:num_preemptions_total"]),
    // Renamed in 0.9.2 (old names hidden 0.11, gone 0.12); blocks, not tokens, before 0.9.0.
    num(PrefixCacheQueriesTotal, Sum, &["vllm:prefix_cache_queries_total",
                                        "vllm:gpu_prefix_cache_queries_total"]),
    num(PrefixCacheHitsTotal, Sum, &["vllm:prefix_cache_hits_total",
                                     "vllm:gpu_prefix_cache_hits_total"]),
    num(SpecDraftsTotal, Sum, &["vllm:spec_decode_num_drafts_total"]),
    num(SpecDraftTokensTotal, Sum, &["vllm:spec_decode_num_draft_tokens_total"]),
    num(SpecAcceptedTokensTotal, Sum, &["vllm:spec_decode_num_accepted_tokens_total"]),
    num(RequestsFinishedTotal, Sum, &["vllm:request_success_total"]),
    hist(Ttft, &["vllm:time_to_first_token_seconds"]),
    // Renamed in 0.10.2; the old name is hidden in 0.12 and gone by 0.15.
    hist(Itl, &["vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"]),
    // 0.11+.
    hist(Tpot, &["vllm:request_time_per_output_token_seconds"]),
    hist(E2e, &["vllm:e2e_request_latency_seconds"]),
    // V1: engine-core QUEUED to first SCHEDULED, and first SCHEDULED to first token.
    hist(Queue, &["vllm:request_queue_time_seconds"]),
    hist(Prefill, &["vllm:request_prefill_time_seconds"]),
];

const DERIVED: &[Derived] = &[Derived::PerRank {
    signal: KvCapacityTokensPerRank,
    of: KvCapacityTokens,
}];

pub(super) static ADAPTER: Adapter = Adapter {
    keep: Keep::All,
    dp_label: Some("engine"),
    rows: ROWS,
    derived: DERIVED,
    code: Some(guess_generation),
};

/// Names only V0 had, and names only V1 has (section 1.1).
pub(super) const V0_ONLY: &[&str] = &[
    "vllm:num_requests_swapped",
    "vllm:cpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_hit_rate",
    "vllm:cpu_prefix_cache_hit_rate",
    "vllm:time_in_queue_requests",
    "vllm:spec_decode_efficiency",
    "vllm:spec_decode_draft_acceptance_rate",
    "vllm:avg_generation_throughput_toks_per_s",
];
pub(super) const V1_ONLY: &[&str] = &[
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:prefix_cache_queries_total",
    "vllm:inter_token_latency_seconds_count",
    "vllm:request_time_per_output_token_seconds_count",
    "vllm:spec_decode_num_drafts_total",
];

/// `v0` when a V0-only name is present, else `v1` when a V1-only name or an `engine` label is;
/// unknown otherwise.
fn guess_generation(v: &View<'_>, out: &mut Signals) {
    out.generation = if V0_ONLY.iter().any(|n| v.has(n)) {
        Some("v0")
    } else if V1_ONLY.iter().any(|n| v.has(n))
        || v.samples.iter().any(|s| s.label("engine").is_some())
    {
        Some("v1")
    } else {
        None
    };
}

/// KV capacity in tokens from `cache_config_info`'s labels. 0.33's `kv_cache_size_tokens` is
/// per DP engine (summed over engines); `num_gpu_blocks` is already the DP total and repeated
/// on every engine's series (taken once). `"None"` (V1 0.8.x before the engine reported) is no
/// value.
fn kv_capacity(v: &View<'_>, name: &str) -> Option<f64> {
    let parse = |s: Option<&str>| {
        s.and_then(|x| x.parse::<f64>().ok())
            .filter(|x| x.is_finite())
    };
    let per_engine: Vec<(Option<&str>, f64)> = v
        .series(name)
        .filter_map(|s| parse(s.label("kv_cache_size_tokens")).map(|t| (s.label("engine"), t)))
        .collect();
    if !per_engine.is_empty() {
        let mut seen: Vec<Option<&str>> = Vec::new();
        let mut total = 0.0;
        for (engine, t) in per_engine {
            if !seen.contains(&engine) {
                seen.push(engine);
                total += t;
            }
        }
        return Some(total);
    }
    v.series(name).find_map(|s| {
        let blocks = parse(s.label("num_gpu_blocks"))?;
        let size = parse(s.label("block_size"))?;
        Some(blocks * size)
    })
}

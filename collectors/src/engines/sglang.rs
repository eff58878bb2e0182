//! SGLang (0.3 to 0.5.x) as a table: `docs/ENGINE-METRICS.md` section 2. Scheduler gauges come
//! one series per reporting scheduler; one scheduler per DP rank is read (the lowest `tp_rank`
//! of PP stage 0 in each `dp_rank` group: the others repeat it under
//! `--enable-metrics-for-all-schedulers`), and DP ranks are summed (and kept apart in
//! [`super::Signals::ranks`]).
//!
//! The inter-token histogram counts tokens, not steps ([`super::Signals::itl_per_token`]), and
//! retractions are SGLang's preemptions: the cumulative counter where there is one (0.5.8+),
//! else the per-log-window gauge `num_retracted_reqs` (0.5.4+).

use super::Signals;
use super::table::{Adapter, Derived, Hist, Match, Num, Reduce, Row, hist, num};
use super::view::{Keep, View};

use Hist::{E2e, Itl, Queue, Tpot, Ttft};
use Match::{Is, Prefix};
use Num::*;
use Reduce::{Mean, MeanNonZero, Sum, SumWhere, TotalOfSplit};

/// One row per signal: the signal, the reduction, the names newest first. The versions are
/// those of `docs/ENGINE-METRICS.md` section 2.1.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    num(Running, Sum, &["sglang:num_running_reqs"]),
    num(Waiting, Sum, &["sglang:num_queue_reqs"]),
    // `kv_used_tokens` is 0.5.16+.
    num(KvUsedTokens, Sum, &["sglang:kv_used_tokens", "sglang:num_used_tokens"]),
    // 0.5.8+.
    num(KvCapacityTokens, Sum, &["sglang:max_total_num_tokens"]),
    num(KvUsageFrac, Mean, &["sglang:token_usage"]),
    // Both added when a request finishes (tokenizer side).
    num(PromptTokensTotal, Sum, &["sglang:prompt_tokens_total"]),
    num(GenerationTokensTotal, Sum, &["sglang:generation_tokens_total"]),
    // 0.5.8+: decode tokens counted every decode step.
    num(LiveGenerationTokensTotal, SumWhere("mode", Is("decode")),
        &["sglang:realtime_tokens_total"]),
    // CUDA-event GPU time, with SGLANG_ENABLE_METRICS_DEVICE_TIMER=1: 0.5.16+, and under the
    // older name in 0.5.8 to 0.5.10.
    num(DecodeForwardSecondsTotal, SumWhere("category", Is("decode")),
        &["sglang:forward_execution_seconds_total", "sglang:gpu_execution_seconds_total"]),
    // 0.5.8+: one per decode forward pass (`decode_cuda_graph`, `decode_none`).
    num(StepsTotal, SumWhere("mode", Prefix("decode")), &["sglang:cuda_graph_passes_total"]),
    // Retractions are SGLang's preemptions: the counter is 0.5.8+, the older name 0.4.10.
    num(PreemptionsTotal, Sum,
        &["sglang:num_retracted_requests_total", "sglang:total_retracted_reqs"]),
    // A gauge: retractions since the last log point, one series per scheduler process (`pid`).
    num(PreemptionsRecent, Sum, &["sglang:num_retracted_reqs"]),
    // Cached prompt tokens of finished requests. From 0.5.10 split by `cache_source` with a
    // `total` series: never sum the split.
    num(PrefixCacheHitsTotal, TotalOfSplit("cache_source", "total"),
        &["sglang:cached_tokens_total"]),
    // 0.5.16+, summed over finished requests.
    num(SpecDraftsTotal, Sum, &["sglang:spec_verify_calls_total"]),
    // An idle DP rank reports 0: not an accept length.
    num(SpecAcceptLength, MeanNonZero, &["sglang:spec_accept_length"]),
    num(RequestsFinishedTotal, Sum, &["sglang:num_requests_total"]),
    hist(Ttft, &["sglang:time_to_first_token_seconds"]),
    // 0.3.x called it `time_per_output_token_seconds` (same construction).
    hist(Itl, &["sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"]),
    // 0.5.23.
    hist(Tpot, &["sglang:request_time_per_output_token_seconds"]),
    hist(E2e, &["sglang:e2e_request_latency_seconds"]),
    // 0.5.4+.
    hist(Queue, &["sglang:queue_time_seconds"]),
    // Prefill/decode disaggregation: a prefill server's and a decode server's queues (0.4.6
    // spelled the prefill side's in-flight queue `infight`; only bootstrap is read here).
    num(PdBootstrapQueue, Sum, &["sglang:num_prefill_bootstrap_queue_reqs"]),
    num(PdPreallocQueue, Sum, &["sglang:num_decode_prealloc_queue_reqs"]),
    num(PdTransferQueue, Sum, &["sglang:num_decode_transfer_queue_reqs"]),
];

const DERIVED: &[Derived] = &[
    Derived::PerRank {
        signal: KvCapacityTokensPerRank,
        of: KvCapacityTokens,
    },
    // Where the scrape has no `token_usage` gauge: used / capacity.
    Derived::Ratio {
        signal: KvUsageFrac,
        num: KvUsedTokens,
        den: KvCapacityTokens,
    },
    // Prefix-cache queries are the prompt tokens of the same finished requests.
    Derived::CopyWhen {
        signal: PrefixCacheQueriesTotal,
        of: PromptTokensTotal,
        when: PrefixCacheHitsTotal,
    },
];

pub(super) static ADAPTER: Adapter = Adapter {
    keep: Keep::OneSchedulerPerDpRank,
    dp_label: Some("dp_rank"),
    rows: ROWS,
    derived: DERIVED,
    code: Some(itl_counts_tokens),
};

/// SGLang's `observe_inter_token_latency` adds the interval once to `_sum` and the chunk's new
/// tokens to the buckets (so to `_count`): a per-token mean, whatever the version.
fn itl_counts_tokens(_: &View<'_>, out: &mut Signals) {
    out.itl_per_token = out.itl_s.is_some();
}

//! SGLang (0.3 to 0.5.x): `docs/ENGINE-METRICS.md` section 2. Scheduler gauges come one series
//! per reporting scheduler; only attention-TP rank 0 of PP stage 0 is read (the others repeat
//! it under `--enable-metrics-for-all-schedulers`), and DP ranks (`dp_rank`) are summed.

use crate::MetricSample;

use super::{Signals, View, first};

pub(super) const USED: &[&str] = &[
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
    "sglang:num_used_tokens",
    "sglang:kv_used_tokens",
    "sglang:max_total_num_tokens",
    "sglang:prompt_tokens_total",
    "sglang:generation_tokens_total",
    "sglang:cuda_graph_passes_total",
    "sglang:num_retracted_requests_total",
    "sglang:total_retracted_reqs",
    "sglang:cached_tokens_total",
    "sglang:spec_verify_calls_total",
    "sglang:spec_accept_length",
    "sglang:time_to_first_token_seconds",
    "sglang:inter_token_latency_seconds",
    "sglang:time_per_output_token_seconds",
    "sglang:request_time_per_output_token_seconds",
    "sglang:e2e_request_latency_seconds",
    "sglang:num_requests_total",
    "sglang:realtime_tokens_total",
    "sglang:forward_execution_seconds_total",
    "sglang:gpu_execution_seconds_total",
];

/// Whether a series comes from a scheduler whose numbers count: TP rank 0 of PP stage 0 (or a
/// series without those labels, such as the tokenizer's).
pub(super) fn reporting_scheduler(s: &MetricSample) -> bool {
    s.label("tp_rank").is_none_or(|r| r == "0") && s.label("pp_rank").is_none_or(|r| r == "0")
}

pub(super) fn fill(v: &View<'_>, out: &mut Signals) {
    let src = &mut out.sources;
    out.dp_ranks = v.distinct("dp_rank").max(1);
    out.running = first(src, "running", &["sglang:num_running_reqs"], |n| v.sum(n));
    out.waiting = first(src, "waiting", &["sglang:num_queue_reqs"], |n| v.sum(n));
    out.kv_used_tokens = first(
        src,
        "kv_used_tokens",
        &["sglang:kv_used_tokens", "sglang:num_used_tokens"],
        |n| v.sum(n),
    );
    out.kv_capacity_tokens = first(
        src,
        "kv_capacity_tokens",
        &["sglang:max_total_num_tokens"],
        |n| v.sum(n),
    );
    out.kv_capacity_tokens_per_rank = out.kv_capacity_tokens.map(|t| t / out.dp_ranks as f64);
    if out.kv_capacity_tokens_per_rank.is_some() {
        src.insert(
            "kv_capacity_tokens_per_rank",
            "sglang:max_total_num_tokens / DP ranks".into(),
        );
    }
    out.kv_usage_frac = first(src, "kv_usage_frac", &["sglang:token_usage"], |n| v.mean(n));
    if out.kv_usage_frac.is_none()
        && let (Some(used), Some(cap)) = (out.kv_used_tokens, out.kv_capacity_tokens)
        && cap > 0.0
    {
        out.kv_usage_frac = Some(used / cap);
        src.insert(
            "kv_usage_frac",
            format!(
                "{} / sglang:max_total_num_tokens",
                src.get("kv_used_tokens").cloned().unwrap_or_default()
            ),
        );
    }
    out.prompt_tokens_total = first(
        src,
        "prompt_tokens_total",
        &["sglang:prompt_tokens_total"],
        |n| v.sum(n),
    );
    out.generation_tokens_total = first(
        src,
        "generation_tokens_total",
        &["sglang:generation_tokens_total"],
        |n| v.sum(n),
    );
    out.live_generation_tokens_total = first(
        src,
        "live_generation_tokens_total",
        &["sglang:realtime_tokens_total"],
        |n| v.sum_where(n, |s| s.label("mode") == Some("decode")),
    );
    out.decode_forward_seconds_total = first(
        src,
        "decode_forward_seconds_total",
        &[
            "sglang:forward_execution_seconds_total",
            "sglang:gpu_execution_seconds_total",
        ],
        |n| v.sum_where(n, |s| s.label("category") == Some("decode")),
    );
    out.steps_total = first(
        src,
        "steps_total",
        &["sglang:cuda_graph_passes_total"],
        |n| {
            v.sum_where(n, |s| {
                s.label("mode").is_some_and(|m| m.starts_with("decode"))
            })
        },
    );
    out.preemptions_total = first(
        src,
        "preemptions_total",
        &[
            "sglang:num_retracted_requests_total",
            "sglang:total_retracted_reqs",
        ],
        |n| v.sum(n),
    );
    // Prefix cache: hits are the cached prompt tokens of finished requests, queries their
    // prompt tokens. With `cache_source`, only the `total` series (the others split it).
    out.prefix_cache_hits_total = first(
        src,
        "prefix_cache_hits_total",
        &["sglang:cached_tokens_total"],
        |n| {
            if v.series(n).any(|s| s.label("cache_source").is_some()) {
                v.sum_where(n, |s| s.label("cache_source") == Some("total"))
            } else {
                v.sum(n)
            }
        },
    );
    if out.prefix_cache_hits_total.is_some() {
        out.prefix_cache_queries_total = out.prompt_tokens_total;
        if out.prompt_tokens_total.is_some() {
            src.insert(
                "prefix_cache_queries_total",
                "sglang:prompt_tokens_total".into(),
            );
        }
    }
    out.spec_drafts_total = first(
        src,
        "spec_drafts_total",
        &["sglang:spec_verify_calls_total"],
        |n| v.sum(n),
    );
    out.spec_accept_length = first(
        src,
        "spec_accept_length",
        &["sglang:spec_accept_length"],
        |n| v.mean(n),
    );
    out.ttft_s = first(
        src,
        "ttft_s",
        &["sglang:time_to_first_token_seconds"],
        |n| v.hist(n),
    );
    out.itl_s = first(
        src,
        "itl_s",
        &[
            "sglang:inter_token_latency_seconds",
            "sglang:time_per_output_token_seconds",
        ],
        |n| v.hist(n),
    );
    out.tpot_s = first(
        src,
        "tpot_s",
        &["sglang:request_time_per_output_token_seconds"],
        |n| v.hist(n),
    );
    out.e2e_s = first(src, "e2e_s", &["sglang:e2e_request_latency_seconds"], |n| {
        v.hist(n)
    });
    out.requests_finished_total = first(
        src,
        "requests_finished_total",
        &["sglang:num_requests_total"],
        |n| v.sum(n),
    );
}

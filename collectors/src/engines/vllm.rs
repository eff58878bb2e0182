//! vLLM (V0 and V1): every rename of `docs/ENGINE-METRICS.md` section 1, newest name first.
//! DP engines (`engine` label) are summed for counts and averaged for the KV fraction.

use super::{Signals, View, first};

/// Every family this adapter reads.
pub(super) const USED: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "vllm:cache_config_info",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:iteration_tokens_total",
    "vllm:num_preemptions_total",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:spec_decode_num_drafts_total",
    "vllm:spec_decode_num_draft_tokens_total",
    "vllm:spec_decode_num_accepted_tokens_total",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",
    "vllm:request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_success_total",
];

/// Names only V0 had, and names only V1 has (section 1.1).
const V0_ONLY: &[&str] = &[
    "vllm:num_requests_swapped",
    "vllm:cpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_hit_rate",
    "vllm:cpu_prefix_cache_hit_rate",
    "vllm:time_in_queue_requests",
    "vllm:spec_decode_efficiency",
    "vllm:spec_decode_draft_acceptance_rate",
    "vllm:avg_generation_throughput_toks_per_s",
];
const V1_ONLY: &[&str] = &[
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:prefix_cache_queries_total",
    "vllm:inter_token_latency_seconds_count",
    "vllm:request_time_per_output_token_seconds_count",
    "vllm:spec_decode_num_drafts_total",
];

pub(super) fn fill(v: &View<'_>, out: &mut Signals) {
    let src = &mut out.sources;
    out.generation = if V0_ONLY.iter().any(|n| v.has(n)) {
        Some("v0")
    } else if V1_ONLY.iter().any(|n| v.has(n))
        || v.samples.iter().any(|s| s.label("engine").is_some())
    {
        Some("v1")
    } else {
        None
    };
    out.dp_ranks = v.distinct("engine").max(1);
    out.running = first(src, "running", &["vllm:num_requests_running"], |n| v.sum(n));
    out.waiting = first(src, "waiting", &["vllm:num_requests_waiting"], |n| v.sum(n));
    out.kv_usage_frac = first(
        src,
        "kv_usage_frac",
        &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        |n| v.mean(n),
    );
    out.kv_capacity_tokens = first(
        src,
        "kv_capacity_tokens",
        &["vllm:cache_config_info"],
        |n| kv_capacity(v, n),
    );
    out.kv_capacity_tokens_per_rank = out.kv_capacity_tokens.map(|t| t / out.dp_ranks as f64);
    if out.kv_capacity_tokens_per_rank.is_some() {
        src.insert(
            "kv_capacity_tokens_per_rank",
            "vllm:cache_config_info / DP ranks".into(),
        );
    }
    out.prompt_tokens_total = first(
        src,
        "prompt_tokens_total",
        &["vllm:prompt_tokens_total"],
        |n| v.sum(n),
    );
    out.generation_tokens_total = first(
        src,
        "generation_tokens_total",
        &["vllm:generation_tokens_total"],
        |n| v.sum(n),
    );
    out.live_generation_tokens_total = out.generation_tokens_total;
    if out.live_generation_tokens_total.is_some() {
        src.insert(
            "live_generation_tokens_total",
            "vllm:generation_tokens_total".into(),
        );
    }
    out.steps_total = first(src, "steps_total", &["vllm:iteration_tokens_total"], |n| {
        v.hist(n).map(|h| h.count)
    });
    if out.steps_total.is_some() {
        src.insert("steps_total", "vllm:iteration_tokens_total_count".into());
    }
    out.preemptions_total = first(
        src,
        "preemptions_total",
        &["vllm:num_preemptions_total"],
        |n| v.sum(n),
    );
    out.prefix_cache_queries_total = first(
        src,
        "prefix_cache_queries_total",
        &[
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
        ],
        |n| v.sum(n),
    );
    out.prefix_cache_hits_total = first(
        src,
        "prefix_cache_hits_total",
        &[
            "vllm:prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits_total",
        ],
        |n| v.sum(n),
    );
    out.spec_drafts_total = first(
        src,
        "spec_drafts_total",
        &["vllm:spec_decode_num_drafts_total"],
        |n| v.sum(n),
    );
    out.spec_draft_tokens_total = first(
        src,
        "spec_draft_tokens_total",
        &["vllm:spec_decode_num_draft_tokens_total"],
        |n| v.sum(n),
    );
    out.spec_accepted_tokens_total = first(
        src,
        "spec_accepted_tokens_total",
        &["vllm:spec_decode_num_accepted_tokens_total"],
        |n| v.sum(n),
    );
    out.ttft_s = first(src, "ttft_s", &["vllm:time_to_first_token_seconds"], |n| {
        v.hist(n)
    });
    out.itl_s = first(
        src,
        "itl_s",
        &[
            "vllm:inter_token_latency_seconds",
            "vllm:time_per_output_token_seconds",
        ],
        |n| v.hist(n),
    );
    out.tpot_s = first(
        src,
        "tpot_s",
        &["vllm:request_time_per_output_token_seconds"],
        |n| v.hist(n),
    );
    out.e2e_s = first(src, "e2e_s", &["vllm:e2e_request_latency_seconds"], |n| {
        v.hist(n)
    });
    out.requests_finished_total = first(
        src,
        "requests_finished_total",
        &["vllm:request_success_total"],
        |n| v.sum(n),
    );
}

/// KV capacity in tokens from `cache_config_info`'s labels. 0.33's `kv_cache_size_tokens` is
/// per DP engine (summed over engines); `num_gpu_blocks` is already the DP total and repeated
/// on every engine's series (taken once). `"None"` (V1 0.8.x before the engine reported) is no
/// value.
fn kv_capacity(v: &View<'_>, name: &'static str) -> Option<f64> {
    let num = |s: Option<&str>| {
        s.and_then(|x| x.parse::<f64>().ok())
            .filter(|x| x.is_finite())
    };
    let per_engine: Vec<(Option<&str>, f64)> = v
        .series(name)
        .filter_map(|s| num(s.label("kv_cache_size_tokens")).map(|t| (s.label("engine"), t)))
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
        let blocks = num(s.label("num_gpu_blocks"))?;
        let size = num(s.label("block_size"))?;
        Some(blocks * size)
    })
}

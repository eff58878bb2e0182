//! llama.cpp `llama-server --metrics`: `docs/ENGINE-METRICS.md` section 3. One process, no
//! labels. No KV capacity in `/metrics` (it is in `/props`); no latency histograms.

use super::{Signals, View, first};

pub(super) const USED: &[&str] = &[
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "llamacpp:kv_cache_usage_ratio",
    "llamacpp:kv_cache_tokens",
    "llamacpp:prompt_tokens_total",
    "llamacpp:prompt_tokens_cached_total",
    "llamacpp:tokens_predicted_total",
    "llamacpp:n_decode_total",
    "llamacpp:n_busy_slots_per_decode",
    "llamacpp:spec_decode_num_drafts_total",
    "llamacpp:spec_decode_num_draft_tokens_total",
    "llamacpp:spec_decode_num_accepted_tokens_total",
];

pub(super) fn fill(v: &View<'_>, out: &mut Signals) {
    let src = &mut out.sources;
    out.running = first(src, "running", &["llamacpp:requests_processing"], |n| {
        v.sum(n)
    });
    out.waiting = first(src, "waiting", &["llamacpp:requests_deferred"], |n| {
        v.sum(n)
    });
    // Removed in May 2025 (#13660); older builds only.
    out.kv_usage_frac = first(
        src,
        "kv_usage_frac",
        &["llamacpp:kv_cache_usage_ratio"],
        |n| v.sum(n),
    );
    out.kv_used_tokens = first(src, "kv_used_tokens", &["llamacpp:kv_cache_tokens"], |n| {
        v.sum(n)
    });
    // Evaluated prompt tokens: cached ones are not in it (b11434 HELP).
    out.prompt_tokens_total = first(
        src,
        "prompt_tokens_total",
        &["llamacpp:prompt_tokens_total"],
        |n| v.sum(n),
    );
    out.generation_tokens_total = first(
        src,
        "generation_tokens_total",
        &["llamacpp:tokens_predicted_total"],
        |n| v.sum(n),
    );
    out.steps_total = first(src, "steps_total", &["llamacpp:n_decode_total"], |n| {
        v.sum(n)
    });
    out.busy_slots_per_decode = first(
        src,
        "busy_slots_per_decode",
        &["llamacpp:n_busy_slots_per_decode"],
        |n| v.sum(n),
    );
    out.prefix_cache_hits_total = first(
        src,
        "prefix_cache_hits_total",
        &["llamacpp:prompt_tokens_cached_total"],
        |n| v.sum(n),
    );
    if let (Some(hits), Some(evaluated)) = (out.prefix_cache_hits_total, out.prompt_tokens_total) {
        out.prefix_cache_queries_total = Some(hits + evaluated);
        src.insert(
            "prefix_cache_queries_total",
            "llamacpp:prompt_tokens_total + llamacpp:prompt_tokens_cached_total".into(),
        );
    }
    out.spec_drafts_total = first(
        src,
        "spec_drafts_total",
        &["llamacpp:spec_decode_num_drafts_total"],
        |n| v.sum(n),
    );
    out.spec_draft_tokens_total = first(
        src,
        "spec_draft_tokens_total",
        &["llamacpp:spec_decode_num_draft_tokens_total"],
        |n| v.sum(n),
    );
    out.spec_accepted_tokens_total = first(
        src,
        "spec_accepted_tokens_total",
        &["llamacpp:spec_decode_num_accepted_tokens_total"],
        |n| v.sum(n),
    );
}

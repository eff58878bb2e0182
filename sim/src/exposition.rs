//! `/metrics` text for each flavor: the real engines' metric names, types, HELP lines, labels
//! (sorted as prometheus_client sorts them), number formats and histogram buckets. Pure
//! rendering from snapshots of [`RankStats`]; it decides no values.
//!
//! Versions imitated: vLLM V1 as of 0.11 (`engine` label, `kv_cache_usage_perc`,
//! `inter_token_latency_seconds`, `request_time_per_output_token_seconds`; multiprocess-style
//! output without `_created` series), SGLang 0.5.8+ (scheduler labels with `moe_ep_rank`,
//! `realtime_tokens_total`, `cuda_graph_passes_total`), llama.cpp b11434.

use crate::flavor::SimFlavor;
use crate::profile::Profile;
use crate::role::SimRole;
use crate::stats::{FINISH_REASONS, Histogram, RankStats};
use text::{Expo, Getter, Labels, py_float};

mod llamacpp;
mod sglang;
pub(crate) mod text;

/// The exposition for `flavor` from per-rank snapshots.
pub(crate) fn render(
    flavor: SimFlavor,
    role: SimRole,
    profile: &Profile,
    ranks: &[RankStats],
) -> String {
    match flavor {
        SimFlavor::Vllm => render_vllm(profile, ranks),
        SimFlavor::Sglang => sglang::render(profile, role, ranks),
        SimFlavor::Llamacpp => llamacpp::render(profile, ranks),
    }
}

fn render_vllm(profile: &Profile, ranks: &[RankStats]) -> String {
    let mut e = Expo::new(py_float);
    let base = |r: usize| -> Labels {
        vec![
            ("engine", r.to_string()),
            ("model_name", profile.model.clone()),
        ]
    };
    let kv = f64::from(profile.kv_blocks);
    let scalars: &[(&str, &str, &str, Getter)] = &[
        (
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            "gauge",
            |s| f64::from(s.running),
        ),
        (
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            "gauge",
            |s| f64::from(s.waiting),
        ),
        (
            "vllm:num_preemptions_total",
            "Cumulative number of preemption from the engine.",
            "counter",
            |s| s.preemptions as f64,
        ),
        (
            "vllm:prompt_tokens_total",
            "Number of prefill tokens processed.",
            "counter",
            |s| s.prompt_tokens as f64,
        ),
        (
            "vllm:generation_tokens_total",
            "Number of generation tokens processed.",
            "counter",
            |s| s.generation_tokens as f64,
        ),
        (
            "vllm:prefix_cache_queries_total",
            "Prefix cache queries, in terms of number of queried tokens.",
            "counter",
            |s| s.prefix_queries as f64,
        ),
        (
            "vllm:prefix_cache_hits_total",
            "Prefix cache hits, in terms of number of cached tokens.",
            "counter",
            |s| s.prefix_hits as f64,
        ),
    ];
    for (name, help, kind, get) in scalars {
        e.header(name, help, kind);
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &base(r), get(s));
        }
        if *name == "vllm:num_requests_waiting" {
            e.header(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                "gauge",
            );
            for (r, s) in ranks.iter().enumerate() {
                // vLLM: 1 − free/(num_gpu_blocks − 1); the null block is never handed out.
                let usage = if kv > 1.0 {
                    f64::from(s.kv_used_blocks) / (kv - 1.0)
                } else {
                    0.0
                };
                e.sample("vllm:kv_cache_usage_perc", &base(r), usage.min(1.0));
            }
        }
    }
    e.header(
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        "counter",
    );
    for (r, s) in ranks.iter().enumerate() {
        for (i, reason) in FINISH_REASONS.iter().enumerate() {
            let mut l = base(r);
            l.push(("finished_reason", (*reason).to_string()));
            e.sample("vllm:request_success_total", &l, s.finished[i] as f64);
        }
    }
    vllm_spec(&mut e, profile, ranks, &base);
    vllm_histograms(&mut e, ranks, &base);
    vllm_cache_config(&mut e, profile, ranks.len());
    e.finish()
}

fn vllm_spec(e: &mut Expo, profile: &Profile, ranks: &[RankStats], base: &dyn Fn(usize) -> Labels) {
    if profile.spec.is_none() {
        return;
    }
    let counters: &[(&str, &str, Getter)] = &[
        (
            "vllm:spec_decode_num_drafts_total",
            "Number of spec decoding drafts.",
            |s| s.spec_drafts as f64,
        ),
        (
            "vllm:spec_decode_num_draft_tokens_total",
            "Number of draft tokens.",
            |s| s.spec_draft_tokens as f64,
        ),
        (
            "vllm:spec_decode_num_accepted_tokens_total",
            "Number of accepted tokens.",
            |s| s.spec_accepted as f64,
        ),
    ];
    for (name, help, get) in counters {
        e.header(name, help, "counter");
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &base(r), get(s));
        }
    }
    let name = "vllm:spec_decode_num_accepted_tokens_per_pos_total";
    e.header(name, "Accepted tokens per draft position.", "counter");
    for (r, s) in ranks.iter().enumerate() {
        for (pos, v) in s.spec_accepted_per_pos.iter().enumerate() {
            let mut l = base(r);
            l.push(("position", pos.to_string()));
            e.sample(name, &l, *v as f64);
        }
    }
}

fn vllm_histograms(e: &mut Expo, ranks: &[RankStats], base: &dyn Fn(usize) -> Labels) {
    type HGet = fn(&RankStats) -> &Histogram;
    let hists: &[(&str, &str, HGet)] = &[
        (
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            |s| &s.iteration_tokens,
        ),
        (
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            |s| &s.ttft,
        ),
        (
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            |s| &s.itl,
        ),
        (
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            |s| &s.tpot_request,
        ),
        (
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            |s| &s.e2e,
        ),
        (
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            |s| &s.queue,
        ),
        (
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            |s| &s.inference,
        ),
        (
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            |s| &s.prefill,
        ),
        (
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            |s| &s.decode,
        ),
        (
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            |s| &s.request_prompt_tokens,
        ),
        (
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            |s| &s.request_generation_tokens,
        ),
        (
            "vllm:request_params_n",
            "Histogram of the n request parameter.",
            |s| &s.request_params_n,
        ),
        (
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            |s| &s.request_params_max_tokens,
        ),
        (
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            |s| &s.request_max_num_generation_tokens,
        ),
    ];
    for (name, help, get) in hists {
        e.header(name, help, "histogram");
        for (r, s) in ranks.iter().enumerate() {
            e.histogram(name, &base(r), get(s));
        }
    }
}

/// `cache_config_info`: every CacheConfig field stringified, no `model_name`; with DP,
/// `num_gpu_blocks` is the sum over engines yet repeated on each `engine` series (as in vLLM).
fn vllm_cache_config(e: &mut Expo, profile: &Profile, dp: usize) {
    let name = "vllm:cache_config_info";
    e.header(name, "Information of the LLMEngine CacheConfig", "gauge");
    let total_blocks = u64::from(profile.kv_blocks) * dp as u64;
    let py_bool = |b: bool| if b { "True" } else { "False" }.to_string();
    for r in 0..dp {
        let labels: Labels = vec![
            ("block_size", profile.block_size.to_string()),
            ("cache_dtype", "auto".into()),
            ("calculate_kv_scales", "False".into()),
            ("cpu_offload_gb", "0".into()),
            ("enable_prefix_caching", py_bool(profile.prefix_cache)),
            ("engine", r.to_string()),
            ("gpu_memory_utilization", "0.9".into()),
            ("is_attention_free", "False".into()),
            ("num_cpu_blocks", "None".into()),
            ("num_gpu_blocks", total_blocks.to_string()),
            ("num_gpu_blocks_override", "None".into()),
            ("prefix_caching_hash_algo", "sha256".into()),
            ("sliding_window", "None".into()),
            ("swap_space", "4".into()),
            ("swap_space_bytes", "4294967296".into()),
        ];
        e.sample(name, &labels, 1.0);
    }
}

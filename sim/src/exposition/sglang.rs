//! SGLang's exposition (0.5.8+ names): scheduler-side gauges and counters per DP rank with the
//! scheduler label set, tokenizer-side counters and histograms with `model_name` only (one
//! tokenizer manager fronts every rank, so those are summed).
//!
//! With `--dp N` it imitates DP attention: each rank's scheduler is labelled `dp_rank="r"` and
//! `tp_rank="r"` (the global TP rank, one attention-TP rank per DP rank), as a real 0.5.x
//! DP-attention deployment over 8 ranks labels them (docs/ENGINE-METRICS.md §2.2). The gauge
//! `num_retracted_reqs` (retractions since the last log point) carries a `pid` label, as a
//! multiprocess gauge without a mode does.
//!
//! A prefill or decode server (PD disaggregation) labels its schedulers `engine_type` by its
//! role and adds that role's queue gauges.

use super::text::{Expo, Getter, Labels, merged, py_float};
use crate::profile::Profile;
use crate::role::SimRole;
use crate::stats::{Histogram, RankStats};

pub(super) fn render(profile: &Profile, role: SimRole, ranks: &[RankStats]) -> String {
    let mut e = Expo::new(py_float);
    let dp = ranks.len();
    let sched = |r: usize| -> Labels {
        let mut l: Labels = vec![
            ("engine_type", role.as_str().into()),
            ("model_name", profile.model.clone()),
            ("moe_ep_rank", "0".into()),
            ("pp_rank", "0".into()),
        ];
        if dp > 1 {
            l.push(("dp_rank", r.to_string()));
            l.push(("tp_rank", r.to_string()));
        } else {
            l.push(("tp_rank", "0".into()));
        }
        l
    };
    let capacity = profile.kv_capacity_tokens() as f64;
    let gauges: &[(&str, &str, Getter)] = &[
        (
            "sglang:num_running_reqs",
            "The number of running requests.",
            |s| f64::from(s.sg.num_running_reqs),
        ),
        (
            "sglang:num_used_tokens",
            "The number of used tokens.",
            |s| s.sg.num_used_tokens as f64,
        ),
        ("sglang:token_usage", "The token usage.", |s| {
            s.sg.token_usage
        }),
        (
            "sglang:gen_throughput",
            "The generation throughput (token/s).",
            |s| s.sg.gen_throughput,
        ),
        (
            "sglang:num_queue_reqs",
            "The number of requests in the waiting queue.",
            |s| f64::from(s.sg.num_queue_reqs),
        ),
        ("sglang:cache_hit_rate", "The prefix cache hit rate.", |s| {
            s.sg.cache_hit_rate
        }),
        (
            "sglang:decode_sum_seq_lens",
            "The sum of all sequence lengths in decode.",
            |s| s.sg.decode_sum_seq_lens as f64,
        ),
    ];
    per_rank_gauges(&mut e, gauges, ranks, &sched);
    per_rank_gauges(&mut e, pd_queue_gauges(role), ranks, &sched);
    if profile.spec.is_some() {
        let name = "sglang:spec_accept_length";
        e.header(
            name,
            "The average acceptance length of speculative decoding.",
            "gauge",
        );
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &sched(r), s.sg.spec_accept_length);
        }
    }
    let name = "sglang:max_total_num_tokens";
    e.header(
        name,
        "Maximum total number of tokens in the KV cache pool.",
        "gauge",
    );
    for r in 0..dp {
        e.sample(name, &sched(r), capacity);
    }
    scheduler_counters(&mut e, ranks, &sched);
    tokenizer_side(&mut e, profile, ranks);
    e.finish()
}

fn per_rank_gauges(
    e: &mut Expo,
    gauges: &[(&str, &str, Getter)],
    ranks: &[RankStats],
    sched: &dyn Fn(usize) -> Labels,
) {
    for (name, help, get) in gauges {
        e.header(name, help, "gauge");
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &sched(r), get(s));
        }
    }
}

/// The PD-disaggregation queues a prefill or decode scheduler exposes. The simulated transfer
/// is instant, so only a decode server's wait for KV blocks (its waiting queue, as of the last
/// log point) is ever non-zero.
fn pd_queue_gauges(role: SimRole) -> &'static [(&'static str, &'static str, Getter)] {
    match role {
        SimRole::Unified => &[],
        SimRole::Prefill => &[
            (
                "sglang:num_prefill_bootstrap_queue_reqs",
                "The number of requests in the prefill bootstrap queue.",
                |_| 0.0,
            ),
            (
                "sglang:num_prefill_prealloc_queue_reqs",
                "The number of requests in the prefill prealloc queue.",
                |_| 0.0,
            ),
            (
                "sglang:num_prefill_inflight_queue_reqs",
                "The number of requests in the prefill inflight queue.",
                |_| 0.0,
            ),
        ],
        SimRole::Decode => &[
            (
                "sglang:num_decode_prealloc_queue_reqs",
                "The number of requests in the decode prealloc queue.",
                |s| f64::from(s.sg.num_queue_reqs),
            ),
            (
                "sglang:num_decode_transfer_queue_reqs",
                "The number of requests in the decode transfer queue.",
                |_| 0.0,
            ),
        ],
    }
}

fn scheduler_counters(e: &mut Expo, ranks: &[RankStats], sched: &dyn Fn(usize) -> Labels) {
    let name = "sglang:realtime_tokens_total";
    e.header(
        name,
        "Total number of tokens processed (updated on each log interval).",
        "counter",
    );
    for (r, s) in ranks.iter().enumerate() {
        for (mode, v) in [
            ("prefill_compute", s.sg_realtime_prefill_compute),
            ("prefill_cache", s.sg_realtime_prefill_cache),
            ("decode", s.sg_realtime_decode),
        ] {
            let mut l = sched(r);
            l.push(("mode", mode.into()));
            e.sample(name, &l, v as f64);
        }
    }
    let name = "sglang:cuda_graph_passes_total";
    e.header(
        name,
        "Total number of forward passes categorized by mode (decode with/without cuda graph).",
        "counter",
    );
    for (r, s) in ranks.iter().enumerate() {
        for (mode, v) in [
            ("decode_cuda_graph", s.sg_decode_passes),
            ("decode_none", 0),
        ] {
            let mut l = sched(r);
            l.push(("mode", mode.into()));
            e.sample(name, &l, v as f64);
        }
    }
    let name = "sglang:num_retracted_requests_total";
    e.header(
        name,
        "Total number of retracted requests due to kvcache full.",
        "counter",
    );
    for (r, s) in ranks.iter().enumerate() {
        e.sample(name, &sched(r), s.sg_retracted as f64);
    }
    let name = "sglang:num_retracted_reqs";
    e.header(name, "The number of retracted requests.", "gauge");
    for (r, s) in ranks.iter().enumerate() {
        let mut l = sched(r);
        l.push(("pid", (4000 + r).to_string()));
        e.sample(name, &l, s.sg.num_retracted_reqs as f64);
    }
    let name = "sglang:queue_time_seconds";
    e.header(name, "Histogram of queueing time in seconds.", "histogram");
    for (r, s) in ranks.iter().enumerate() {
        e.histogram(name, &sched(r), &s.sg_queue);
    }
}

fn tokenizer_side(e: &mut Expo, profile: &Profile, ranks: &[RankStats]) {
    let labels: Labels = vec![("model_name", profile.model.clone())];
    let sum = |f: Getter| ranks.iter().map(f).sum::<f64>();
    let counters: &[(&str, &str, Getter)] = &[
        (
            "sglang:prompt_tokens_total",
            "Number of prefill tokens processed.",
            |s| s.sg_prompt_tokens as f64,
        ),
        (
            "sglang:generation_tokens_total",
            "Number of generation tokens processed.",
            |s| s.sg_generation_tokens as f64,
        ),
        (
            "sglang:cached_tokens_total",
            "Number of cached prompt tokens.",
            |s| s.sg_cached_tokens as f64,
        ),
        (
            "sglang:num_requests_total",
            "Number of requests processed.",
            |s| s.sg_requests as f64,
        ),
    ];
    for (name, help, get) in counters {
        e.header(name, help, "counter");
        e.sample(name, &labels, sum(*get));
    }
    type HGet = fn(&RankStats) -> Histogram;
    let hists: &[(&str, &str, HGet)] = &[
        (
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            |s| s.sg_ttft.clone(),
        ),
        (
            "sglang:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            |s| s.sg_itl.clone(),
        ),
        (
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            |s| s.sg_e2e.clone(),
        ),
    ];
    for (name, help, get) in hists {
        if let Some(h) = merged(ranks.iter().map(get)) {
            e.header(name, help, "histogram");
            e.histogram(name, &labels, &h);
        }
    }
}

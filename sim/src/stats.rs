//! Live per-rank counters, gauges and histograms, updated by the scheduler once per step under
//! one lock and read by the exposition and the truth. Holds the metric definitions' *values*
//! only; names and formats live in `exposition.rs`, and `truth.rs` turns the step aggregates
//! into the served ground truth (it depends on this module, never the reverse).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A cumulative Prometheus-style histogram.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    pub bounds: Arc<[f64]>,
    /// Per-bucket (non-cumulative) counts; the last slot is `+Inf`.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            bounds: Arc::from(bounds),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        self.observe_weighted(v, v, 1);
    }

    /// Adds `weight` observations of `bucket_value` whose total is `sum` (SGLang's per-token ITL).
    pub fn observe_weighted(&mut self, bucket_value: f64, sum: f64, weight: u64) {
        let i = self.bounds.partition_point(|b| *b < bucket_value);
        self.counts[i] += weight;
        self.sum += sum;
        self.count += weight;
    }

    /// Cumulative counts per bound, then `+Inf`.
    pub fn cumulative(&self) -> Vec<u64> {
        let mut acc = 0;
        self.counts
            .iter()
            .map(|c| {
                acc += c;
                acc
            })
            .collect()
    }
}

// vLLM V1 default buckets (vllm/v1/metrics/loggers.py, 0.10–0.11 era).
pub(crate) const VLLM_TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
pub(crate) const VLLM_ITL: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
pub(crate) const VLLM_REQUEST_LATENCY: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
pub(crate) const VLLM_ITERATION_TOKENS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];
// SGLang defaults (python/sglang/srt/metrics/collector.py, 0.4.x–0.5.x).
pub(crate) const SGLANG_TTFT: &[f64] = &[
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0,
    400.0,
];
pub(crate) const SGLANG_ITL: &[f64] = &[
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080,
    0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000,
];
pub(crate) const SGLANG_E2E: &[f64] = &[
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0,
    400.0, 600.0, 1200.0, 1800.0, 2400.0,
];
pub(crate) const SGLANG_QUEUE: &[f64] = &[
    0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0,
    80.0, 90.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0,
];

/// vLLM's 1-2-5 series up to `max` (request token-count histograms).
pub(crate) fn one_two_five(max: u32) -> Vec<f64> {
    let mut v = Vec::new();
    let mut exp = 1.0;
    'outer: loop {
        for m in [1.0, 2.0, 5.0] {
            let b = m * exp;
            if b > f64::from(max) {
                break 'outer;
            }
            v.push(b);
        }
        exp *= 10.0;
    }
    v
}

/// vLLM finish reasons, in the order the V1 logger pre-creates them.
pub(crate) const FINISH_REASONS: [&str; 3] = ["stop", "length", "abort"];

/// The SGLang scheduler gauges, which refresh only at prefill batches and every N decode steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct SglangGauges {
    pub num_running_reqs: u32,
    pub num_queue_reqs: u32,
    pub num_used_tokens: u64,
    pub token_usage: f64,
    pub gen_throughput: f64,
    pub cache_hit_rate: f64,
    pub spec_accept_length: f64,
    pub decode_sum_seq_lens: u64,
    /// Requests retracted since the previous log point.
    pub num_retracted_reqs: u64,
}

/// One llama.cpp slot as `/slots` shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotView {
    pub id: u32,
    pub is_processing: bool,
    pub n_prompt_tokens: u32,
    pub n_prompt_tokens_processed: u32,
    pub n_prompt_tokens_cache: u32,
    pub n_decoded: u32,
}

/// Everything one rank exposes. Counters only ever grow.
#[derive(Debug, Clone)]
pub(crate) struct RankStats {
    // Live state (vLLM gauges reflect the last step).
    pub running: u32,
    pub waiting: u32,
    pub kv_used_blocks: u32,
    pub steps: u64,
    /// Seconds spent in steps (for the simulated DCGM busy fraction).
    pub busy_s: f64,
    // vLLM V1.
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub preemptions: u64,
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    pub finished: [u64; 3],
    pub spec_drafts: u64,
    pub spec_draft_tokens: u64,
    pub spec_accepted: u64,
    pub spec_accepted_per_pos: Vec<u64>,
    pub iteration_tokens: Histogram,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub tpot_request: Histogram,
    pub e2e: Histogram,
    pub queue: Histogram,
    pub prefill: Histogram,
    pub decode: Histogram,
    pub inference: Histogram,
    pub request_prompt_tokens: Histogram,
    pub request_generation_tokens: Histogram,
    pub request_params_n: Histogram,
    pub request_params_max_tokens: Histogram,
    pub request_max_num_generation_tokens: Histogram,
    // SGLang.
    pub sg: SglangGauges,
    pub sg_decode_passes: u64,
    pub sg_realtime_prefill_compute: u64,
    pub sg_realtime_prefill_cache: u64,
    pub sg_realtime_decode: u64,
    pub sg_retracted: u64,
    pub sg_prompt_tokens: u64,
    pub sg_generation_tokens: u64,
    pub sg_cached_tokens: u64,
    pub sg_requests: u64,
    pub sg_ttft: Histogram,
    pub sg_itl: Histogram,
    pub sg_e2e: Histogram,
    pub sg_queue: Histogram,
    // llama.cpp: token counters move when a request finishes.
    pub lc_prompt_tokens: u64,
    pub lc_prompt_tokens_cached: u64,
    pub lc_prompt_seconds: f64,
    pub lc_tokens_predicted: u64,
    pub lc_tokens_predicted_seconds: f64,
    pub lc_n_decode: u64,
    pub lc_busy_slots_sum: u64,
    pub lc_n_tokens_max: u64,
    /// Spec-decode tallies of the requests whose slot was released.
    pub lc_spec_drafts: u64,
    pub lc_spec_draft_tokens: u64,
    pub lc_spec_accepted: u64,
    /// Window since the last `/metrics` scrape (each scrape resets it, as llama.cpp does).
    pub lc_win_prompt_tokens: u64,
    pub lc_win_prompt_s: f64,
    pub lc_win_decode_steps: u64,
    pub lc_win_decode_s: f64,
    pub slots: Vec<SlotView>,
    // Truth.
    pub decode_steps: BTreeMap<u32, StepAgg>,
    pub mixed_steps: BTreeMap<u32, StepAgg>,
    pub requests_finished: u64,
    pub requests_aborted: u64,
    /// llama.cpp: requests failed with "Context size has been exceeded." (of the aborted).
    pub context_exceeded: u64,
    /// Steps that left a waiting request out for want of free KV blocks (below the sequence
    /// cap): where a cache too small for the batch acted, whether or not it also preempted.
    pub kv_deferred_steps: u64,
    pub cached_prompt_tokens: u64,
}

impl RankStats {
    pub fn new(max_model_len: u32, spec_k: u32) -> Self {
        let tokens = one_two_five(max_model_len);
        RankStats {
            running: 0,
            waiting: 0,
            kv_used_blocks: 0,
            steps: 0,
            busy_s: 0.0,
            prompt_tokens: 0,
            generation_tokens: 0,
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            finished: [0; 3],
            spec_drafts: 0,
            spec_draft_tokens: 0,
            spec_accepted: 0,
            spec_accepted_per_pos: vec![0; spec_k as usize],
            iteration_tokens: Histogram::new(VLLM_ITERATION_TOKENS),
            ttft: Histogram::new(VLLM_TTFT),
            itl: Histogram::new(VLLM_ITL),
            tpot_request: Histogram::new(VLLM_ITL),
            e2e: Histogram::new(VLLM_REQUEST_LATENCY),
            queue: Histogram::new(VLLM_REQUEST_LATENCY),
            prefill: Histogram::new(VLLM_REQUEST_LATENCY),
            decode: Histogram::new(VLLM_REQUEST_LATENCY),
            inference: Histogram::new(VLLM_REQUEST_LATENCY),
            request_prompt_tokens: Histogram::new(&tokens),
            request_generation_tokens: Histogram::new(&tokens),
            request_params_n: Histogram::new(&[1.0, 2.0, 5.0, 10.0, 20.0]),
            request_params_max_tokens: Histogram::new(&tokens),
            request_max_num_generation_tokens: Histogram::new(&tokens),
            sg: SglangGauges::default(),
            sg_decode_passes: 0,
            sg_realtime_prefill_compute: 0,
            sg_realtime_prefill_cache: 0,
            sg_realtime_decode: 0,
            sg_retracted: 0,
            sg_prompt_tokens: 0,
            sg_generation_tokens: 0,
            sg_cached_tokens: 0,
            sg_requests: 0,
            sg_ttft: Histogram::new(SGLANG_TTFT),
            sg_itl: Histogram::new(SGLANG_ITL),
            sg_e2e: Histogram::new(SGLANG_E2E),
            sg_queue: Histogram::new(SGLANG_QUEUE),
            lc_prompt_tokens: 0,
            lc_prompt_tokens_cached: 0,
            lc_prompt_seconds: 0.0,
            lc_tokens_predicted: 0,
            lc_tokens_predicted_seconds: 0.0,
            lc_n_decode: 0,
            lc_busy_slots_sum: 0,
            lc_n_tokens_max: 0,
            lc_spec_drafts: 0,
            lc_spec_draft_tokens: 0,
            lc_spec_accepted: 0,
            lc_win_prompt_tokens: 0,
            lc_win_prompt_s: 0.0,
            lc_win_decode_steps: 0,
            lc_win_decode_s: 0.0,
            slots: Vec::new(),
            decode_steps: BTreeMap::new(),
            mixed_steps: BTreeMap::new(),
            requests_finished: 0,
            requests_aborted: 0,
            context_exceeded: 0,
            kv_deferred_steps: 0,
            cached_prompt_tokens: 0,
        }
    }
}

/// Running aggregate of step durations (actual wall seconds as executed, after time scaling).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct StepAgg {
    pub count: u64,
    pub sum_s: f64,
    pub nominal_sum_s: f64,
}

impl StepAgg {
    pub fn add(&mut self, actual_s: f64, nominal_s: f64) {
        self.count += 1;
        self.sum_s += actual_s;
        self.nominal_sum_s += nominal_s;
    }

    pub fn merge(&mut self, other: &StepAgg) {
        self.count += other.count;
        self.sum_s += other.sum_s;
        self.nominal_sum_s += other.nominal_sum_s;
    }
}

/// Locks a rank's stats; a poisoned lock (a thread panicked while holding it) still yields them,
/// so one failed step does not take `/metrics` and `/sim/truth` down with it.
pub(crate) fn lock(m: &Mutex<RankStats>) -> MutexGuard<'_, RankStats> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

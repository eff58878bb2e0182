//! The findings catalogue (DESIGN.md, "Findings"): places where the client, engine and GPU
//! views disagree or the run cannot be trusted. Each has a stable snake_case code, a severity, a
//! one-line message that says what to change, and its numbers as evidence. Clean data raises no
//! `warn` or `error`. Pure: it reads the figures the analysis computed.
//!
//! Codes: `request_failures`, `length_mismatch`, `no_measurement_window`,
//! `engine_batch_mismatch`, `engine_queueing`, `preemptions`, `prefix_cache_warm`,
//! `token_count_mismatch`, `step_time_disagreement`, `identity_broken`, `littles_law_broken`,
//! `above_roofline`, `client_lateness`, `gpu_throttling`, `gpu_memory_near_full`,
//! `kv_near_full`, `ceiling_extrapolated`.

use serde::Serialize;
use serde_json::json;

use crate::ceiling::Ceiling;
use crate::finding::{Finding, Severity};
use crate::step_time::StepTiming;
use crate::summary::StepSummary;

/// How far views may disagree before a finding is raised (relative errors unless named `_s`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// Client vs engine step time.
    pub step_time_rel: f64,
    /// `QPS × output_len` vs `bs × DP × MTP / t_fwd`.
    pub identity_rel: f64,
    pub littles_law_rel: f64,
    /// Client vs engine generation tokens.
    pub token_count_rel: f64,
    /// Share of failed requests above which `request_failures` is an error.
    pub failures_error_frac: f64,
    /// Client lateness p99.
    pub lateness_p99_s: f64,
    pub gpu_memory_frac: f64,
    pub kv_usage_frac: f64,
    /// Prefix-cache hit share above which a cold run counts as warm.
    pub prefix_hit_frac: f64,
    /// How much faster than the roofline a step may look before it is impossible.
    pub roofline_margin: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            step_time_rel: 0.05,
            identity_rel: 0.05,
            littles_law_rel: 0.15,
            token_count_rel: 0.01,
            failures_error_frac: 0.05,
            lateness_p99_s: 0.005,
            gpu_memory_frac: 0.98,
            kv_usage_frac: 0.95,
            prefix_hit_frac: 0.05,
            roofline_margin: 0.05,
        }
    }
}

fn finding(
    step: Option<u32>,
    code: &str,
    severity: Severity,
    message: String,
    evidence: serde_json::Value,
) -> Finding {
    Finding {
        step_idx: step,
        code: code.to_string(),
        severity,
        message,
        evidence,
    }
}

/// Every finding of a run, step by step, then the run-wide ones.
pub fn findings(
    summaries: &[StepSummary],
    timings: &[StepTiming],
    ceilings: &[Ceiling],
    tol: &Tolerances,
    prefix_cache_warm_expected: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (s, t) in summaries.iter().zip(timings) {
        step_findings(s, t, tol, prefix_cache_warm_expected, &mut out);
    }
    for c in ceilings.iter().filter(|c| c.extrapolated) {
        out.push(finding(
            None,
            "ceiling_extrapolated",
            Severity::Info,
            format!(
                "the ceiling at {}/{} tokens is at bs {} per rank, beyond the largest measured ({}); add bs {} to --batch-sizes to measure it",
                c.input_len, c.output_len, c.bs_per_rank, c.max_measured_bs_per_rank, c.bs_per_rank
            ),
            json!({"bs_per_rank": c.bs_per_rank, "max_measured_bs_per_rank": c.max_measured_bs_per_rank, "limited_by": c.limited_by}),
        ));
    }
    out
}

fn step_findings(
    s: &StepSummary,
    t: &StepTiming,
    tol: &Tolerances,
    warm_expected: bool,
    out: &mut Vec<Finding>,
) {
    let step = Some(s.step_idx);
    let bs = f64::from(s.batch_size);

    if s.requests_failed > 0 {
        let frac = f64::from(s.requests_failed) / f64::from(s.requests.max(1));
        out.push(finding(
            step,
            "request_failures",
            if frac > tol.failures_error_frac { Severity::Error } else { Severity::Warn },
            format!(
                "{} of {} requests failed ({}); check the engine log, raise --request-timeout, or lower the batch size",
                s.requests_failed,
                s.requests,
                s.failures_by_outcome
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({"failed": s.requests_failed, "requests": s.requests, "by_outcome": s.failures_by_outcome}),
        ));
    }
    if s.requests_length_mismatch > 0 {
        out.push(finding(
            step,
            "length_mismatch",
            Severity::Error,
            format!(
                "{} requests came back with other lengths than {}/{} tokens asked; make the engine honour ignore_eos/min_tokens and max_model_len, or use /v1/completions with token ids",
                s.requests_length_mismatch, s.input_len, s.output_len
            ),
            json!({"requests": s.requests_length_mismatch, "input_len": s.input_len, "output_len": s.output_len,
                   "input_tokens_requested": s.input_tokens_requested, "input_tokens_reported": s.input_tokens_reported,
                   "output_tokens_requested": s.output_tokens_requested, "output_tokens_reported": s.output_tokens_reported}),
        ));
    }
    if s.requests_ok > 0 && t.windows.is_empty() {
        out.push(finding(
            step,
            "no_measurement_window",
            Severity::Warn,
            format!(
                "no interval where all {} sequences decoded together, so no step time; raise --output-len (now {})",
                s.batch_size, s.output_len
            ),
            json!({"batch_size": s.batch_size, "output_len": s.output_len}),
        ));
    }

    let e = &t.engine;
    if let (Some(max), Some(min)) = (e.running_max, e.running_min) {
        if max < bs - 0.5 {
            out.push(finding(
                step,
                "engine_batch_mismatch",
                Severity::Error,
                format!(
                    "the engine ran at most {max:.0} sequences while the probe held {bs:.0}; raise the engine's sequence cap (--max-num-seqs) or KV memory, or lower the batch size"
                ),
                json!({"batch_size": s.batch_size, "running_min": min, "running_max": max, "running_mean": e.running_mean, "busy_slots_per_step": e.busy_slots_per_step}),
            ));
        } else if min > bs + 0.5 {
            out.push(finding(
                step,
                "engine_batch_mismatch",
                Severity::Warn,
                format!(
                    "the engine ran {min:.0}+ sequences while the probe held {bs:.0}: other traffic shares the engine; measure on an idle engine"
                ),
                json!({"batch_size": s.batch_size, "running_min": min, "running_max": max}),
            ));
        }
    }
    // Over the whole step, not only the windows: requests that wait for a slot decode in turns,
    // so a wave of them may have no window at all.
    let waiting = [e.waiting_max, e.waiting_max_step]
        .into_iter()
        .flatten()
        .reduce(f64::max);
    // llama.cpp's busy slots per decode call over the windows: the batch every step ran, not a
    // gauge sampled now and then.
    if let Some(b) = e.busy_slots_per_step.filter(|b| (b - bs).abs() > 0.5)
        && e.running_max.is_none_or(|max| max >= bs - 0.5)
    {
        out.push(finding(
            step,
            "engine_batch_mismatch",
            if b < bs { Severity::Error } else { Severity::Warn },
            format!(
                "the engine's steps held {b:.1} sequences on average while the probe held {bs:.0}; {}",
                if b < bs {
                    "raise the engine's slots (llama.cpp -np) or sequence cap, or lower the batch size"
                } else {
                    "other traffic shares the engine: measure on an idle engine"
                }
            ),
            json!({"batch_size": s.batch_size, "busy_slots_per_step": b, "running_max": e.running_max}),
        ));
    }
    if let Some(w) = waiting.filter(|w| *w > 0.0) {
        out.push(finding(
            step,
            "engine_queueing",
            Severity::Warn,
            format!(
                "up to {w:.0} requests waited in the engine queue during a fixed-bs step; the engine cannot hold bs {bs:.0} (KV memory or sequence cap, llama.cpp -np slots): lower the batch size or raise the engine's limits"
            ),
            json!({"waiting_max": w, "waiting_max_window": e.waiting_max, "waiting_max_step": e.waiting_max_step, "batch_size": s.batch_size}),
        ));
    }
    if let Some(p) = e.preemptions.filter(|p| *p > 0.0) {
        out.push(finding(
            step,
            "preemptions",
            Severity::Error,
            format!(
                "the engine preempted {p:.0} sequences: its KV cache cannot hold bs {bs:.0} × {} tokens; lower the batch size or give the engine more KV memory (--gpu-memory-utilization)",
                s.input_len + s.output_len
            ),
            json!({"preemptions": p, "batch_size": s.batch_size, "kv_usage_max_frac": e.kv_usage_max_frac}),
        ));
    }
    if !warm_expected
        && let (Some(h), Some(q)) = (e.prefix_cache_hits, e.prefix_cache_queries)
        && q > 0.0
        && h / q > tol.prefix_hit_frac
    {
        out.push(finding(
            step,
            "prefix_cache_warm",
            Severity::Warn,
            format!(
                "{:.0} % of prompt tokens hit the prefix cache in a cold run, so TTFT and prefill rate are flattered; keep unique prompts (--prefix-cache cold) or disable the engine's prefix caching",
                100.0 * h / q
            ),
            json!({"hits": h, "queries": q}),
        ));
    }
    if let Some(g) = e.generation_tokens
        && e.client_output_tokens > 0
    {
        let c = e.client_output_tokens as f64;
        if (g - c).abs() / c > tol.token_count_rel {
            out.push(finding(
                step,
                "token_count_mismatch",
                Severity::Warn,
                format!(
                    "the engine counted {g:.0} generated tokens over the step, the client {c:.0}; other traffic on the engine, or a scrape interval too long for the step (--scrape-interval)"
                ),
                json!({"engine_generation_tokens": g, "client_output_tokens": c}),
            ));
        }
    }
    if let (Some(d), Some(c), Some(en)) =
        (t.client_engine_rel_diff, t.t_fwd_client_s, t.t_fwd_engine_s)
        && d > tol.step_time_rel
    {
        let late = s
            .client_lateness_p99_s
            .is_some_and(|l| l > tol.lateness_p99_s);
        let cause = if late {
            "the client woke late (see client_lateness): run the probe on a quieter host"
        } else if c > en {
            "the client sees slower chunks than the engine steps: detokenization, stream batching (stream interval) or the network"
        } else {
            "the engine's counters run slower than the chunks: check the scrape interval and DP ranks (--dp)"
        };
        out.push(finding(
            step,
            "step_time_disagreement",
            Severity::Warn,
            format!(
                "client step time {:.2} ms vs engine {:.2} ms ({:.0} % apart); {cause}",
                c * 1e3,
                en * 1e3,
                d * 100.0
            ),
            json!({"t_fwd_client_s": c, "t_fwd_engine_s": en, "t_fwd_identity_s": t.t_fwd_identity_s, "rel_diff": d, "client_lateness_p99_s": s.client_lateness_p99_s}),
        ));
    }
    if let Some(err) = t.identity_rel_err.filter(|e| *e > tol.identity_rel) {
        out.push(finding(
            step,
            "identity_broken",
            Severity::Warn,
            format!(
                "throughput in the window ({:.0} tok/s) differs from bs × DP × MTP / t_fwd ({:.0} tok/s) by {:.0} %; check --dp, the MTP source ({:?}) and whether all bs sequences decoded",
                t.throughput_window_tok_s.unwrap_or(f64::NAN),
                t.throughput_identity_tok_s.unwrap_or(f64::NAN),
                err * 100.0,
                t.mtp_source
            ),
            json!({"throughput_window_tok_s": t.throughput_window_tok_s, "throughput_identity_tok_s": t.throughput_identity_tok_s, "mtp": t.mtp, "rel_err": err}),
        ));
    }
    if let Some(l) = t.littles_law.filter(|l| l.rel_err > tol.littles_law_rel) {
        out.push(finding(
            step,
            "littles_law_broken",
            Severity::Warn,
            format!(
                "the engine held {:.1} requests on average but QPS × E2E says {:.1}; requests queue outside the engine (proxy, client) or other traffic shares it",
                l.engine_in_flight_mean,
                l.qps * l.e2e_mean_s
            ),
            json!(l),
        ));
    }
    if let (Some(tmin), Some(tf)) = (t.roofline_t_min_s, t.t_fwd_s)
        && tf < tmin * (1.0 - tol.roofline_margin)
    {
        out.push(finding(
            step,
            "above_roofline",
            Severity::Error,
            format!(
                "the step takes {:.2} ms, faster than the hardware's minimum {:.2} ms: the model config, GPU, TP or quantization given is wrong, or tokens are not really generated",
                tf * 1e3,
                tmin * 1e3
            ),
            json!({"t_fwd_s": tf, "t_min_s": tmin}),
        ));
    }
    if let Some(p99) = s.client_lateness_p99_s.filter(|l| *l > tol.lateness_p99_s) {
        out.push(finding(
            step,
            "client_lateness",
            Severity::Warn,
            format!(
                "the probe's runtime woke {:.1} ms late at p99 (max {:.1} ms): the client may set the pace; run the probe on a less loaded host or with fewer streams",
                p99 * 1e3,
                s.client_lateness_max_s.unwrap_or(p99) * 1e3
            ),
            json!({"p50_s": s.client_lateness_p50_s, "p99_s": p99, "max_s": s.client_lateness_max_s}),
        ));
    }
    let g = &t.gpu;
    if !g.throttle_reasons.is_empty() {
        out.push(finding(
            step,
            "gpu_throttling",
            Severity::Warn,
            format!(
                "the GPU slowed its clocks during the window ({}; SM clock down to {} MHz); check power limits and cooling before trusting the step time",
                g.throttle_reasons.join(", "),
                g.sm_clock_min_mhz.map_or("?".into(), |c| c.to_string())
            ),
            json!({"reasons": g.throttle_reasons, "mask": g.throttle_reasons_mask, "sm_clock_min_mhz": g.sm_clock_min_mhz, "power_max_w": g.power_max_w}),
        ));
    }
    if let Some(f) = g.mem_used_max_frac.filter(|f| *f >= tol.gpu_memory_frac) {
        out.push(finding(
            step,
            "gpu_memory_near_full",
            Severity::Warn,
            format!(
                "GPU memory {:.1} % used; the engine is one allocation from an out-of-memory error: lower --gpu-memory-utilization or the batch size",
                f * 100.0
            ),
            json!({"mem_used_max_frac": f, "mem_used_max_bytes": g.mem_used_max_bytes}),
        ));
    }
    if let Some(k) = e.kv_usage_max_frac.filter(|k| *k >= tol.kv_usage_frac) {
        out.push(finding(
            step,
            "kv_near_full",
            Severity::Warn,
            format!(
                "the KV cache reached {:.0} % at bs {bs:.0}; a larger batch or longer sequences will queue or preempt",
                k * 100.0
            ),
            json!({"kv_usage_max_frac": k, "kv_capacity_tokens": e.kv_capacity_tokens}),
        ));
    }
}

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

//! The macro view: open-loop rate steps (DESIGN.md, "Probe semantics"; docs/PROBE.md, "Open
//! and closed loop"). A rate step has no fixed batch: requests arrive on a schedule and the
//! engine's batch is whatever the arrivals and its scheduler make of them. Per rate step this
//! module gives what load-testing practice reads — the asked and the achieved request rate,
//! throughput, TTFT/TPOT/ITL/E2E percentiles, the error rate, the client's lateness against its
//! schedule and the engine's running and waiting gauges ([`RateStep`]) — and over a run's rate
//! steps the macro ceiling: the highest rate whose p99 TTFT and TPOT meet the SLA with errors
//! under 5 % ([`macro_ceiling`], in [`ceiling`]). Pure: figures from the recording's frames and
//! the step summaries; no I/O.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::engine;
use crate::frames::Rows;
use crate::metrics::Distribution;
use crate::recording::{Pattern, Recording};
use crate::summary::StepSummary;

pub mod ceiling;
pub use ceiling::{MacroCeiling, MacroGap, MacroSla, macro_ceiling};

/// One open-loop step's figures. Latencies, throughput and counts are the step summary's (over
/// its non-warm-up requests); the rate and lateness figures are the schedule's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateStep {
    pub step_idx: u32,
    /// The asked arrival rate, requests/s; `None` when every request was sent at once (`inf`).
    pub rate_asked_rps: Option<f64>,
    pub burstiness: Option<f64>,
    /// `--max-concurrency`, when the step had one.
    pub max_concurrency: Option<u32>,
    /// Requests sent (warm-up excluded), whatever their outcome.
    pub requests: u32,
    pub requests_failed: u32,
    /// `requests_failed / requests`.
    pub error_rate: Option<f64>,
    /// The rate the schedule itself drew: `(n − 1) / (last − first scheduled send)`. A Poisson
    /// schedule of n arrivals lands within about `1/√n` of the asked rate.
    pub rate_scheduled_rps: Option<f64>,
    /// The rate the client sent at: `(n − 1) / (last − first actual send)`.
    pub rate_achieved_rps: Option<f64>,
    /// Successful requests completed per second of the step's span.
    pub completed_rps: Option<f64>,
    /// Output tokens of successful requests per second of the span.
    pub output_tokens_per_s: Option<f64>,
    /// Goodput as vLLM defines it: successful requests per second of the span whose own TTFT
    /// and TPOT meet the SLA's limits (`None` without a latency SLA).
    pub goodput_rps: Option<f64>,
    /// Mean output tokens of the successful requests (the `output_len` of the identity).
    pub output_len_mean: Option<f64>,
    /// Mean prompt tokens asked (the length mix's mean).
    pub input_len_mean: Option<f64>,
    /// How late each send was against its schedule: `sent_t_s − scheduled_t_s`.
    pub send_lateness_s: Option<Distribution>,
    pub ttft_s: Option<Distribution>,
    pub tpot_s: Option<Distribution>,
    pub itl_s: Option<Distribution>,
    pub e2e_s: Option<Distribution>,
    /// The engine's running gauge over the step (summed over ranks): mean and max.
    pub engine_running_mean: Option<f64>,
    pub engine_running_max: Option<f64>,
    /// The engine's queue over the step: mean and max.
    pub engine_waiting_mean: Option<f64>,
    pub engine_waiting_max: Option<f64>,
    /// The client's runtime lateness ticker over the step, p99.
    pub client_lateness_p99_s: Option<f64>,
}

impl RateStep {
    /// The step's rate for ordering and charts: the achieved rate, else the asked one.
    pub fn rate_rps(&self) -> Option<f64> {
        self.rate_achieved_rps.or(self.rate_asked_rps)
    }
}

/// Per step with a schedule: send count, the scheduled and actual send span, lateness
/// quantiles, the mean lengths, and the successful requests meeting `sla` per request.
fn schedule_rows(figures: &DataFrame, sla: &MacroSla) -> PolarsResult<Rows> {
    let late = (col("sent_t_s") - col("scheduled_t_s")).alias("late");
    let ok = col("measured_ok");
    let within = |c: &str, limit: Option<f64>| {
        limit.map_or(lit(true), |l| col(c).lt_eq(lit(l)).fill_null(lit(false)))
    };
    let good = ok
        .clone()
        .and(within("ttft_s", sla.ttft_p99_s))
        .and(within("tpot_s", sla.tpot_p99_s));
    let df = figures
        .clone()
        .lazy()
        .filter(col("warmup").not().and(col("scheduled_t_s").is_not_null()))
        .with_column(late)
        .group_by([col("step_idx")])
        .agg([
            len().alias("n"),
            col("scheduled_t_s").min().alias("sched_min"),
            col("scheduled_t_s").max().alias("sched_max"),
            col("sent_t_s").min().alias("sent_min"),
            col("sent_t_s").max().alias("sent_max"),
            col("late").mean().alias("late_mean"),
            col("late")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("late_p50"),
            col("late")
                .quantile(lit(0.9), QuantileMethod::Linear)
                .alias("late_p90"),
            col("late")
                .quantile(lit(0.99), QuantileMethod::Linear)
                .alias("late_p99"),
            col("late")
                .quantile(lit(0.95), QuantileMethod::Linear)
                .alias("late_p95"),
            col("late").std(0).alias("late_std"),
            col("late").max().alias("late_max"),
            col("output_tokens")
                .filter(ok)
                .cast(DataType::Float64)
                .mean()
                .alias("out_mean"),
            col("prompt_tokens_requested")
                .cast(DataType::Float64)
                .mean()
                .alias("in_mean"),
            good.cast(DataType::UInt32).sum().alias("good"),
        ])
        .collect()?;
    Rows::new(df, "step_idx")
}

/// `(n − 1) / span`, for at least two sends over a positive span.
fn rate_over(n: u64, first: Option<f64>, last: Option<f64>) -> Option<f64> {
    match (first, last) {
        (Some(a), Some(b)) if n >= 2 && b > a => Some((n - 1) as f64 / (b - a)),
        _ => None,
    }
}

/// The mean and max of a gauge over the engine samples inside `[start, end]`.
pub(crate) fn gauge(
    samples: &[engine::EngineSample],
    get: impl Fn(&engine::EngineSample) -> Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let v: Vec<f64> = samples.iter().filter_map(get).collect();
    if v.is_empty() {
        return (None, None);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (Some(mean), v.iter().copied().reduce(f64::max))
}

/// The figures of every rate step of `rec`, in step order; `summaries` are the steps' summaries
/// and `figures` the per-request figures ([`crate::frames::request_figures`]); `sla` the limits
/// each request's goodput is judged by.
pub fn rate_steps(
    rec: &Recording,
    figures: &DataFrame,
    summaries: &[StepSummary],
    sla: &MacroSla,
) -> PolarsResult<Vec<RateStep>> {
    if !rec.steps.iter().any(|s| s.pattern == Pattern::Rate) {
        return Ok(Vec::new());
    }
    let rows = schedule_rows(figures, sla)?;
    let has_sla = sla.ttft_p99_s.is_some() || sla.tpot_p99_s.is_some();
    let by_idx: BTreeMap<u32, &StepSummary> = summaries.iter().map(|s| (s.step_idx, s)).collect();
    let mut out = Vec::new();
    for step in rec.steps.iter().filter(|s| s.pattern == Pattern::Rate) {
        let Some(summary) = by_idx.get(&step.idx) else {
            continue;
        };
        let k = step.idx;
        let n = rows.u64(k, "n")?.unwrap_or(0);
        let late = match rows.u64(k, "n")? {
            Some(n) if n > 0 => Some(Distribution {
                n: n as usize,
                mean: rows.f64(k, "late_mean")?.unwrap_or(0.0),
                p50: rows.f64(k, "late_p50")?.unwrap_or(0.0),
                p90: rows.f64(k, "late_p90")?.unwrap_or(0.0),
                p95: rows.f64(k, "late_p95")?.unwrap_or(0.0),
                std: rows.f64(k, "late_std")?.unwrap_or(0.0),
                p99: rows.f64(k, "late_p99")?.unwrap_or(0.0),
                max: rows.f64(k, "late_max")?.unwrap_or(0.0),
            }),
            _ => None,
        };
        let end = step.end_t_s.unwrap_or(f64::INFINITY);
        let inside = engine::inside(&rec.engine, step.start_t_s, end);
        let (run_mean, run_max) = gauge(inside, |s| s.signals.running);
        let (wait_mean, wait_max) = gauge(inside, |s| s.signals.waiting);
        let requests = summary.requests;
        out.push(RateStep {
            step_idx: k,
            rate_asked_rps: step.rate_rps.filter(|r| r.is_finite()),
            burstiness: step.burstiness,
            max_concurrency: (step.batch_size > 0).then_some(step.batch_size),
            requests,
            requests_failed: summary.requests_failed,
            error_rate: (requests > 0)
                .then(|| f64::from(summary.requests_failed) / f64::from(requests)),
            rate_scheduled_rps: rate_over(n, rows.f64(k, "sched_min")?, rows.f64(k, "sched_max")?),
            rate_achieved_rps: rate_over(n, rows.f64(k, "sent_min")?, rows.f64(k, "sent_max")?),
            completed_rps: summary.requests_per_s,
            output_tokens_per_s: summary.output_tokens_per_s,
            goodput_rps: match (has_sla, rows.u64(k, "good")?, summary.span_s) {
                (true, Some(g), Some(span)) if span > 0.0 => Some(g as f64 / span),
                _ => None,
            },
            output_len_mean: rows.f64(k, "out_mean")?,
            input_len_mean: rows.f64(k, "in_mean")?,
            send_lateness_s: late,
            ttft_s: summary.ttft_s,
            tpot_s: summary.tpot_s,
            itl_s: summary.itl_s,
            e2e_s: summary.e2e_s,
            engine_running_mean: run_mean,
            engine_running_max: run_max,
            engine_waiting_mean: wait_mean,
            engine_waiting_max: wait_max,
            client_lateness_p99_s: summary.client_lateness_p99_s,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

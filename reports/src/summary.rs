//! The per-step summary the probe prints at its end and `analyze` opens with: request counts by
//! outcome, the latency distributions of [`crate::metrics`], throughput over the step, tokens
//! asked vs reported, and the client's own lateness. Each figure is a group-by over the
//! recording's frames by `step_idx`: the per-request figures ([`frames::request_figures`]) for
//! counts, latencies, span and tokens; the chunks' gaps for the ITL; the ticks for the
//! lateness. Pure: it returns serializable figures; it never prints.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::frames::{self, Rows, distribution_aggs};
use crate::metrics::Distribution;
use crate::recording::{Outcome, Pattern, Recording, StepRecord};

mod answers;
pub(crate) use answers::{NoAnswer, no_answer};

/// One step's figures. Latencies are over the step's successful, non-warm-up requests; rates
/// are over the span from the first such request sent to the last one done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    pub step_idx: u32,
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub pattern: Pattern,
    /// Requests sent outside warm-up, whatever their outcome.
    pub requests: u32,
    pub requests_ok: u32,
    pub requests_failed: u32,
    pub requests_warmup: u32,
    /// Failed (non-warm-up) requests by outcome kind (`timeout`, `http_error`, …).
    pub failures_by_outcome: BTreeMap<String, u32>,
    /// The error the most failed (non-warm-up) requests recorded, as the engine or the client
    /// wrote it (ties: the first in byte order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_most_common: Option<String>,
    pub ttft_s: Option<Distribution>,
    pub ttft_answer_s: Option<Distribution>,
    pub tpot_s: Option<Distribution>,
    pub itl_s: Option<Distribution>,
    pub e2e_s: Option<Distribution>,
    /// From the first measured request sent to the last one done.
    pub span_s: Option<f64>,
    /// Output tokens of successful requests per second of the span.
    pub output_tokens_per_s: Option<f64>,
    /// Successful requests per second of the span.
    pub requests_per_s: Option<f64>,
    /// The same per minute, as llmperf and load-testing reports state it.
    #[serde(default)]
    pub requests_per_min: Option<f64>,
    pub input_tokens_requested: u64,
    /// Sum of `usage.prompt_tokens` over the requests that reported it.
    pub input_tokens_reported: Option<u64>,
    pub output_tokens_requested: u64,
    /// Sum of output tokens (see [`crate::metrics::output_tokens`]) over the requests that had any.
    pub output_tokens_reported: Option<u64>,
    /// Requests whose reported prompt or completion tokens differ from what was asked.
    pub requests_length_mismatch: u32,
    pub client_lateness_p50_s: Option<f64>,
    pub client_lateness_p99_s: Option<f64>,
    pub client_lateness_max_s: Option<f64>,
    /// Successful requests whose reasoning used the whole `max_tokens`, so no answer came.
    #[serde(default)]
    pub requests_reasoning_exhausted: u32,
    /// Successful requests with no answer token, not for lack of budget.
    #[serde(default)]
    pub requests_empty_answer: u32,
}

/// Summarizes every step of a recording, in step order.
pub fn summarize_steps(rec: &Recording) -> PolarsResult<Vec<StepSummary>> {
    let figures = frames::request_figures(rec)?;
    let chunks = frames::chunk_gaps(rec, &figures)?;
    summarize(rec, &figures, &chunks)
}

/// [`summarize_steps`] over the already computed per-request figures and chunk gaps.
pub(crate) fn summarize(
    rec: &Recording,
    figures: &DataFrame,
    chunks: &DataFrame,
) -> PolarsResult<Vec<StepSummary>> {
    let requests = Rows::new(per_step_requests(figures)?, "step_idx")?;
    let itl = itl_by_step(chunks)?;
    let late = col("late_s").filter(col("late_s").is_finite());
    let lateness = Rows::new(
        rec.ticks
            .clone()
            .lazy()
            .group_by([col("step_idx")])
            .agg([
                late.clone()
                    .quantile(lit(0.5), QuantileMethod::Linear)
                    .alias("p50"),
                late.clone()
                    .quantile(lit(0.99), QuantileMethod::Linear)
                    .alias("p99"),
                late.max().alias("max"),
            ])
            .collect()?,
        "step_idx",
    )?;
    let failures = failures_by_outcome(figures)?;
    let mut most_common = failure_most_common(figures)?;
    let no_answer = answers::by_step(&rec.chunks, figures)?;
    rec.steps
        .iter()
        .map(|s| {
            let f = failures.get(&s.idx).cloned().unwrap_or_default();
            let mut out = step_summary(s, &requests, &itl, &lateness, f)?;
            out.failure_most_common = most_common.remove(&s.idx);
            (out.requests_reasoning_exhausted, out.requests_empty_answer) =
                no_answer.get(&s.idx).copied().unwrap_or_default();
            Ok(out)
        })
        .collect()
}

/// Per step, the [`Distribution`] of the ITLs (chunk gaps) of its measured successful requests:
/// one pass over the chunk columns gathers each step's gaps in row order, and each step's
/// distribution is read from its own vector ([`frames::distribution_of`], polars' figures to
/// the bit). The polars group-by with `distribution_aggs` gave the same figures but filtered
/// and copied every step's gaps once per quantile: 0.4–0.7 s and +220 MiB at 10 M chunk rows.
fn itl_by_step(chunks: &DataFrame) -> PolarsResult<BTreeMap<u32, Distribution>> {
    let steps = chunks.column("step_idx")?.u32()?;
    let gaps = chunks.column("gap_s")?.f64()?;
    let ok = chunks.column("measured_ok")?.bool()?;
    let mut by_step: Vec<(u32, Vec<f64>)> = Vec::new();
    let mut at = 0;
    let rows = frames::values(steps)
        .zip(frames::values(gaps))
        .zip(frames::flags(ok));
    for ((s, g), ok) in rows {
        let (Some(s), Some(g), Some(true)) = (s, g, ok) else {
            continue;
        };
        // The chunks come by request, so in runs of one step's rows: find its vector once a run.
        if by_step.get(at).is_none_or(|(step, _)| *step != s) {
            at = match by_step.iter().position(|(step, _)| *step == s) {
                Some(i) => i,
                None => {
                    by_step.push((s, Vec::new()));
                    by_step.len() - 1
                }
            };
        }
        by_step[at].1.push(g);
    }
    Ok(by_step
        .into_iter()
        .filter_map(|(s, v)| Some((s, frames::distribution_of(v)?)))
        .collect())
}

/// Per step: counts, latency distributions, the span, token sums and mismatches.
fn per_step_requests(figures: &DataFrame) -> PolarsResult<DataFrame> {
    let measured = col("warmup").not();
    let ok = col("measured_ok");
    let sum_u64 = |c: &str, when: Expr| col(c).cast(DataType::UInt64).filter(when).sum();
    // A dataset's text was counted, not made to length: the engine's count is the measure.
    let mismatch = ok.clone().and(
        col("prompt_tokens_reported")
            .is_not_null()
            .and(col("prompt_from_text").not())
            .and(col("prompt_tokens_reported").neq(col("prompt_tokens_requested")))
            .fill_null(lit(false))
            .or(col("output_tokens_known").and(
                col("output_tokens")
                    .neq(col("completion_tokens_requested").cast(DataType::UInt64))
                    .fill_null(lit(true)),
            )),
    );
    let mut aggs = vec![
        measured.clone().sum().alias("requests"),
        ok.clone().sum().alias("requests_ok"),
        col("warmup").sum().alias("requests_warmup"),
        col("sent_t_s")
            .filter(ok.clone())
            .min()
            .alias("ok_sent_min"),
        col("done_t_s")
            .filter(ok.clone())
            .max()
            .alias("ok_done_max"),
        sum_u64("output_tokens", ok.clone()).alias("ok_output_tokens"),
        sum_u64("prompt_tokens_requested", measured.clone()).alias("input_requested"),
        sum_u64("prompt_tokens_reported", measured.clone()).alias("input_reported"),
        col("prompt_tokens_reported")
            .filter(measured.clone())
            .count()
            .alias("input_reported_n"),
        sum_u64("completion_tokens_requested", measured.clone()).alias("output_requested"),
        sum_u64("output_tokens", measured.clone()).alias("output_reported"),
        col("output_tokens")
            .filter(measured)
            .count()
            .alias("output_reported_n"),
        mismatch.sum().alias("length_mismatch"),
    ];
    for name in ["ttft_s", "ttft_answer_s", "tpot_s", "e2e_s"] {
        aggs.extend(distribution_aggs(col(name).filter(ok.clone()), name));
    }
    figures
        .clone()
        .lazy()
        .group_by([col("step_idx")])
        .agg(aggs)
        .collect()
}

/// Failed (non-warm-up) requests per step and outcome.
fn failures_by_outcome(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, BTreeMap<String, u32>>> {
    let df = figures
        .clone()
        .lazy()
        .filter(
            col("warmup")
                .not()
                .and(col("outcome").neq(lit(Outcome::Ok.as_str()))),
        )
        .group_by([col("step_idx"), col("outcome")])
        .agg([len().alias("n")])
        .collect()?;
    let mut out: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    let steps = df.column("step_idx")?.u32()?;
    let outcomes = df.column("outcome")?.str()?;
    let n = df.column("n")?.u32()?;
    for ((s, o), n) in steps.iter().zip(outcomes.iter()).zip(n.iter()) {
        if let (Some(s), Some(o), Some(n)) = (s, o, n) {
            out.entry(s).or_default().insert(o.to_string(), n);
        }
    }
    Ok(out)
}

/// Per step, the error text the most failed (non-warm-up) requests recorded.
fn failure_most_common(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, String>> {
    let failed = col("warmup")
        .not()
        .and(col("outcome").neq(lit(Outcome::Ok.as_str())))
        .and(col("error").is_not_null());
    let df = figures
        .clone()
        .lazy()
        .filter(failed)
        .group_by([col("step_idx"), col("error")])
        .agg([len().alias("n")])
        .sort_by_exprs(
            [col("step_idx"), col("n"), col("error")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .group_by_stable([col("step_idx")])
        .agg([col("error").first()])
        .collect()?;
    let steps = df.column("step_idx")?.u32()?;
    let errors = df.column("error")?.str()?;
    Ok(steps
        .iter()
        .zip(errors.iter())
        .filter_map(|(s, e)| Some((s?, e?.to_string())))
        .collect())
}

fn step_summary(
    step: &StepRecord,
    requests: &Rows,
    itl: &BTreeMap<u32, Distribution>,
    lateness: &Rows,
    failures_by_outcome: BTreeMap<String, u32>,
) -> PolarsResult<StepSummary> {
    let k = step.idx;
    let count =
        |name: &str| -> PolarsResult<u32> { Ok(requests.u64(k, name)?.unwrap_or(0) as u32) };
    let (measured, ok) = (count("requests")?, count("requests_ok")?);
    let span_s = match (
        requests.f64(k, "ok_sent_min")?,
        requests.f64(k, "ok_done_max")?,
    ) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    let out_tokens_ok = requests.u64(k, "ok_output_tokens")?.unwrap_or(0);
    // A sum over the requests that reported a figure; `None` when none did.
    let reported = |sum: &str, n: &str| -> PolarsResult<Option<u64>> {
        Ok(if requests.u64(k, n)?.unwrap_or(0) > 0 {
            Some(requests.u64(k, sum)?.unwrap_or(0))
        } else {
            None
        })
    };
    Ok(StepSummary {
        step_idx: step.idx,
        batch_size: step.batch_size,
        input_len: step.input_len,
        output_len: step.output_len,
        pattern: step.pattern,
        requests: measured,
        requests_ok: ok,
        requests_failed: measured - ok,
        requests_warmup: count("requests_warmup")?,
        failures_by_outcome,
        failure_most_common: None,
        ttft_s: requests.distribution(k, "ttft_s")?,
        ttft_answer_s: requests.distribution(k, "ttft_answer_s")?,
        tpot_s: requests.distribution(k, "tpot_s")?,
        itl_s: itl.get(&k).copied(),
        e2e_s: requests.distribution(k, "e2e_s")?,
        span_s,
        output_tokens_per_s: span_s.map(|d| out_tokens_ok as f64 / d),
        requests_per_s: span_s.map(|d| f64::from(ok) / d),
        requests_per_min: span_s.map(|d| f64::from(ok) / d * 60.0),
        input_tokens_requested: requests.u64(k, "input_requested")?.unwrap_or(0),
        input_tokens_reported: reported("input_reported", "input_reported_n")?,
        output_tokens_requested: requests.u64(k, "output_requested")?.unwrap_or(0),
        output_tokens_reported: reported("output_reported", "output_reported_n")?,
        requests_length_mismatch: count("length_mismatch")?,
        client_lateness_p50_s: lateness.f64(k, "p50")?,
        client_lateness_p99_s: lateness.f64(k, "p99")?,
        client_lateness_max_s: lateness.f64(k, "max")?,
        requests_reasoning_exhausted: 0,
        requests_empty_answer: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{WaveSpec, wave_recording};

    #[test]
    fn a_clean_wave_summarizes_to_its_truth() {
        let spec = WaveSpec {
            batch_size: 8,
            output_len: 11,
            step_time_s: 0.010,
            ..WaveSpec::default()
        };
        let rec = wave_recording(&[spec]);
        let s = summarize_steps(&rec.recording()).unwrap();
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!((s.requests, s.requests_ok, s.requests_failed), (24, 24, 0));
        assert_eq!(s.requests_warmup, 8);
        let tpot = s.tpot_s.unwrap();
        assert!((tpot.p50 - 0.010).abs() < 1e-9, "{tpot:?}");
        let itl = s.itl_s.unwrap();
        assert!((itl.p99 - 0.010).abs() < 1e-9, "{itl:?}");
        assert_eq!(s.output_tokens_reported, Some(24 * 11));
        assert_eq!(s.output_tokens_requested, 24 * 11);
        assert_eq!(s.requests_length_mismatch, 0);
        assert!(s.output_tokens_per_s.unwrap() > 0.0);
        assert!(s.client_lateness_p99_s.unwrap() < 0.001);
    }

    #[test]
    fn failures_are_counted_by_kind_and_left_out_of_latency() {
        let mut rec = wave_recording(&[WaveSpec::default()]);
        let measured: Vec<usize> = (0..rec.requests.len())
            .filter(|&i| !rec.requests[i].warmup)
            .collect();
        rec.requests[measured[0]].outcome = Outcome::Timeout;
        rec.requests[measured[1]].outcome = Outcome::HttpError;
        rec.requests[measured[2]].outcome = Outcome::HttpError;
        let s = &summarize_steps(&rec.recording()).unwrap()[0];
        assert_eq!(s.requests_failed, 3);
        assert_eq!(s.failures_by_outcome["http_error"], 2);
        assert_eq!(s.failures_by_outcome["timeout"], 1);
        assert_eq!(s.ttft_s.unwrap().n, s.requests_ok as usize);
        let rpm = s.requests_per_min.expect("a span");
        assert!((rpm - s.requests_per_s.expect("a span") * 60.0).abs() < 1e-9);
        let e2e = s.e2e_s.expect("latencies");
        assert!(
            e2e.p90 <= e2e.p95 && e2e.p95 <= e2e.p99 && e2e.std >= 0.0,
            "{e2e:?}"
        );
    }

    #[test]
    fn an_empty_step_has_no_figures_rather_than_zeros() {
        let rec = wave_recording(&[WaveSpec::default()]);
        let empty = crate::recording::Recording::from_records(
            Default::default(),
            &rec.steps,
            &[],
            &[],
            Vec::new(),
            Vec::new(),
        )
        .unwrap();
        let s = &summarize_steps(&empty).unwrap()[0];
        assert_eq!(s.requests, 0);
        assert_eq!(s.tpot_s, None);
        assert_eq!(s.output_tokens_per_s, None);
        assert_eq!(s.output_tokens_reported, None);
        assert_eq!(s.client_lateness_p50_s, None);
    }
}

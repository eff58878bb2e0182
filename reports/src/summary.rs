//! The per-step summary the probe prints at its end and `analyze` opens with: request counts by
//! outcome, the latency distributions of [`crate::metrics`], throughput over the step, tokens
//! asked vs reported, and the client's own lateness. Pure: it takes the recorded rows and
//! returns serializable figures; it never prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{self, Distribution};
use crate::recording::{LatenessTick, Outcome, Pattern, RequestRecord, StepRecord};

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
    pub input_tokens_requested: u64,
    /// Sum of `usage.prompt_tokens` over the requests that reported it.
    pub input_tokens_reported: Option<u64>,
    pub output_tokens_requested: u64,
    /// Sum of output tokens (see [`metrics::output_tokens`]) over the requests that had any.
    pub output_tokens_reported: Option<u64>,
    /// Requests whose reported prompt or completion tokens differ from what was asked.
    pub requests_length_mismatch: u32,
    pub client_lateness_p50_s: Option<f64>,
    pub client_lateness_p99_s: Option<f64>,
    pub client_lateness_max_s: Option<f64>,
}

/// Summarizes every step of a recording, in step order.
pub fn summarize_steps(
    steps: &[StepRecord],
    requests: &[RequestRecord],
    ticks: &[LatenessTick],
) -> Vec<StepSummary> {
    let mut by_step: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    for r in requests {
        by_step.entry(r.step_idx).or_default().push(r);
    }
    let mut ticks_by_step: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for t in ticks {
        ticks_by_step.entry(t.step_idx).or_default().push(t.late_s);
    }
    steps
        .iter()
        .map(|s| {
            let reqs = by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
            let late = ticks_by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
            summarize_step(s, reqs, late)
        })
        .collect()
}

fn summarize_step(step: &StepRecord, reqs: &[&RequestRecord], late: &[f64]) -> StepSummary {
    let measured: Vec<&RequestRecord> = reqs.iter().copied().filter(|r| !r.warmup).collect();
    let ok: Vec<&RequestRecord> = measured
        .iter()
        .copied()
        .filter(|r| r.outcome == Outcome::Ok)
        .collect();
    let mut failures_by_outcome = BTreeMap::new();
    for r in measured.iter().filter(|r| r.outcome != Outcome::Ok) {
        *failures_by_outcome
            .entry(r.outcome.as_str().to_string())
            .or_insert(0) += 1;
    }

    let start = ok.iter().map(|r| r.sent_t_s).reduce(f64::min);
    let end = ok.iter().filter_map(|r| r.done_t_s).reduce(f64::max);
    let span_s = match (start, end) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    let out_tokens_ok: u64 = ok
        .iter()
        .filter_map(|r| metrics::output_tokens(r))
        .map(u64::from)
        .sum();

    let sum_opt = |it: &mut dyn Iterator<Item = Option<u32>>| -> Option<u64> {
        let mut any = false;
        let mut total = 0u64;
        for v in it.flatten() {
            any = true;
            total += u64::from(v);
        }
        any.then_some(total)
    };

    let requests_length_mismatch = measured
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .filter(|r| {
            r.prompt_tokens_reported
                .is_some_and(|p| p != r.prompt_tokens_requested)
                || (metrics::output_tokens_known(r)
                    && metrics::output_tokens(r) != Some(r.completion_tokens_requested))
        })
        .count() as u32;

    let mut late_sorted: Vec<f64> = late.iter().copied().filter(|x| x.is_finite()).collect();
    late_sorted.sort_by(f64::total_cmp);

    StepSummary {
        step_idx: step.idx,
        batch_size: step.batch_size,
        input_len: step.input_len,
        output_len: step.output_len,
        pattern: step.pattern,
        requests: measured.len() as u32,
        requests_ok: ok.len() as u32,
        requests_failed: (measured.len() - ok.len()) as u32,
        requests_warmup: (reqs.len() - measured.len()) as u32,
        failures_by_outcome,
        ttft_s: Distribution::of(ok.iter().filter_map(|r| metrics::ttft_s(r))),
        ttft_answer_s: Distribution::of(ok.iter().filter_map(|r| metrics::ttft_answer_s(r))),
        tpot_s: Distribution::of(ok.iter().filter_map(|r| metrics::tpot_s(r))),
        itl_s: Distribution::of(ok.iter().flat_map(|r| metrics::itls_s(r))),
        e2e_s: Distribution::of(ok.iter().filter_map(|r| metrics::e2e_s(r))),
        span_s,
        output_tokens_per_s: span_s.map(|d| out_tokens_ok as f64 / d),
        requests_per_s: span_s.map(|d| ok.len() as f64 / d),
        input_tokens_requested: measured
            .iter()
            .map(|r| u64::from(r.prompt_tokens_requested))
            .sum(),
        input_tokens_reported: sum_opt(&mut measured.iter().map(|r| r.prompt_tokens_reported)),
        output_tokens_requested: measured
            .iter()
            .map(|r| u64::from(r.completion_tokens_requested))
            .sum(),
        output_tokens_reported: sum_opt(&mut measured.iter().map(|r| metrics::output_tokens(r))),
        requests_length_mismatch,
        client_lateness_p50_s: metrics::percentile(&late_sorted, 50.0),
        client_lateness_p99_s: metrics::percentile(&late_sorted, 99.0),
        client_lateness_max_s: late_sorted.last().copied(),
    }
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
        let s = summarize_steps(&rec.steps, &rec.requests, &rec.ticks);
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
        let s = &summarize_steps(&rec.steps, &rec.requests, &rec.ticks)[0];
        assert_eq!(s.requests_failed, 3);
        assert_eq!(s.failures_by_outcome["http_error"], 2);
        assert_eq!(s.failures_by_outcome["timeout"], 1);
        assert_eq!(s.ttft_s.unwrap().n, s.requests_ok as usize);
    }

    #[test]
    fn an_empty_step_has_no_figures_rather_than_zeros() {
        let rec = wave_recording(&[WaveSpec::default()]);
        let s = &summarize_steps(&rec.steps, &[], &[])[0];
        assert_eq!(s.requests, 0);
        assert_eq!(s.tpot_s, None);
        assert_eq!(s.output_tokens_per_s, None);
        assert_eq!(s.output_tokens_reported, None);
        assert_eq!(s.client_lateness_p50_s, None);
    }
}

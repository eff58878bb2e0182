//! The per-step summary as loops over request records: the oracle of the polars pipeline in
//! [`crate::summary`].

use std::collections::BTreeMap;

use crate::metrics::{self, Distribution};
use crate::recording::{LatenessTick, Outcome, RequestRecord, StepRecord};
use crate::summary::{NoAnswer, StepSummary, no_answer};

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
    let mut errors: BTreeMap<&str, u32> = BTreeMap::new();
    for r in measured.iter().filter(|r| r.outcome != Outcome::Ok) {
        *failures_by_outcome
            .entry(r.outcome.as_str().to_string())
            .or_insert(0) += 1;
        if let Some(e) = &r.error {
            *errors.entry(e.as_str()).or_insert(0) += 1;
        }
    }
    // The most frequent; among equals the first in byte order (the map's order).
    let mut failure_most_common: Option<(&str, u32)> = None;
    for (e, n) in errors {
        if failure_most_common.is_none_or(|(_, best)| n > best) {
            failure_most_common = Some((e, n));
        }
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
        failure_most_common: failure_most_common.map(|(e, _)| e.to_string()),
        ttft_s: Distribution::of(ok.iter().filter_map(|r| metrics::ttft_s(r))),
        ttft_answer_s: Distribution::of(ok.iter().filter_map(|r| metrics::ttft_answer_s(r))),
        tpot_s: Distribution::of(ok.iter().filter_map(|r| metrics::tpot_s(r))),
        itl_s: Distribution::of(ok.iter().flat_map(|r| metrics::itls_s(r))),
        e2e_s: Distribution::of(ok.iter().filter_map(|r| metrics::e2e_s(r))),
        span_s,
        output_tokens_per_s: span_s.map(|d| out_tokens_ok as f64 / d),
        requests_per_s: span_s.map(|d| ok.len() as f64 / d),
        requests_per_min: span_s.map(|d| ok.len() as f64 / d * 60.0),
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
        requests_reasoning_exhausted: count_no_answer(&ok, NoAnswer::ReasoningExhausted),
        requests_empty_answer: count_no_answer(&ok, NoAnswer::Empty),
    }
}

/// How many of `ok` came back without an answer for `why`.
fn count_no_answer(ok: &[&RequestRecord], why: NoAnswer) -> u32 {
    ok.iter().filter(|r| no_answer(r) == Some(why)).count() as u32
}

//! A step of one of `ceiling`'s own runs as a [`PeerPoint`], so `ceiling compare` holds a
//! recorded run against another run or an imported result figure for figure: the step's
//! measured requests (warm-up left out), its lengths, latencies and rates under the same
//! convention the imports are normalised to.

use super::{LoadMode, PeerPoint, Stats, Tool};
use crate::metrics::Distribution;
use crate::recording::Pattern;
use crate::summary::StepSummary;

/// The figures of a distribution; p95 and the standard deviation are 0 in results written
/// before they were kept, so 0 there reads as unknown (a spread of exactly 0 is no loss: the
/// compare's noise then falls back to its default).
fn stats(d: Option<&Distribution>) -> Stats {
    let Some(d) = d else {
        return Stats::default();
    };
    let known = |v: f64| (v > 0.0).then_some(v);
    Stats {
        mean_s: Some(d.mean),
        p50_s: Some(d.p50),
        p90_s: Some(d.p90),
        p95_s: known(d.p95),
        p99_s: Some(d.p99),
        std_s: known(d.std),
    }
}

/// Step `s` of run `run_id` as a point; `model` is the run's.
pub fn point_of_step(run_id: i64, s: &StepSummary, model: Option<&str>) -> PeerPoint {
    let mut p = PeerPoint::new(Tool::Ceiling);
    p.tool_version = Some(env!("CARGO_PKG_VERSION").to_string());
    p.label = Some(format!(
        "run {run_id} step {} (bs {}, {}/{})",
        s.step_idx, s.batch_size, s.input_len, s.output_len
    ));
    p.model = model.map(str::to_string);
    p.mode = match s.pattern {
        Pattern::Wave | Pattern::ClosedLoop => LoadMode::ClosedLoop,
        Pattern::Rate => LoadMode::Rate,
    };
    p.concurrency = (s.batch_size > 0).then_some(f64::from(s.batch_size));
    p.input_len_requested = Some(f64::from(s.input_len));
    p.output_len_requested = Some(f64::from(s.output_len));
    let per_ok = |tokens: Option<u64>| {
        tokens
            .filter(|_| s.requests_ok > 0)
            .map(|t| t as f64 / f64::from(s.requests_ok))
    };
    p.input_len_mean = per_ok(s.input_tokens_reported);
    p.output_len_mean = per_ok(s.output_tokens_reported);
    p.warmup_requests = Some(u64::from(s.requests_warmup));
    p.completed = Some(u64::from(s.requests_ok));
    p.failed = Some(u64::from(s.requests_failed));
    p.duration_s = s.span_s;
    p.req_per_s = s.requests_per_s;
    p.output_tok_per_s = s.output_tokens_per_s;
    p.ttft = stats(s.ttft_s.as_ref());
    p.tpot = stats(s.tpot_s.as_ref());
    p.itl = stats(s.itl_s.as_ref());
    p.e2e = stats(s.e2e_s.as_ref());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(mean: f64, std: f64) -> Distribution {
        Distribution {
            n: 100,
            mean,
            p50: mean,
            p90: mean * 1.1,
            p95: mean * 1.15,
            p99: mean * 1.2,
            max: mean * 1.3,
            std,
        }
    }

    #[test]
    fn a_step_becomes_a_closed_loop_point_with_its_lengths_and_latencies() {
        let s = StepSummary {
            step_idx: 2,
            batch_size: 16,
            input_len: 256,
            output_len: 128,
            pattern: Pattern::Wave,
            requests: 32,
            requests_ok: 32,
            requests_failed: 0,
            requests_warmup: 16,
            failures_by_outcome: Default::default(),
            failure_most_common: None,
            ttft_s: Some(dist(0.05, 0.01)),
            ttft_answer_s: None,
            tpot_s: Some(dist(0.01, 0.0)),
            itl_s: None,
            e2e_s: Some(dist(1.32, 0.02)),
            span_s: Some(2.64),
            output_tokens_per_s: Some(1550.0),
            requests_per_s: Some(12.1),
            requests_per_min: Some(726.0),
            input_tokens_requested: 32 * 256,
            input_tokens_reported: Some(32 * 256),
            output_tokens_requested: 32 * 128,
            output_tokens_reported: Some(32 * 128),
            requests_length_mismatch: 0,
            client_lateness_p50_s: None,
            client_lateness_p99_s: None,
            client_lateness_max_s: None,
            requests_reasoning_exhausted: 0,
            requests_empty_answer: 0,
        };
        let p = point_of_step(7, &s, Some("llama"));
        assert_eq!(p.tool, Tool::Ceiling);
        assert_eq!(p.mode, LoadMode::ClosedLoop);
        assert_eq!(p.concurrency, Some(16.0));
        assert_eq!(
            (p.input_len_mean, p.output_len_mean),
            (Some(256.0), Some(128.0))
        );
        assert_eq!(
            (p.completed, p.failed, p.warmup_requests),
            (Some(32), Some(0), Some(16))
        );
        assert_eq!(p.ttft.mean_s, Some(0.05));
        assert_eq!(p.ttft.std_s, Some(0.01));
        assert_eq!(p.e2e.p99_s, Some(1.32 * 1.2));
        // A standard deviation of 0 is an old result's missing figure.
        assert_eq!(p.tpot.std_s, None);
        assert_eq!(p.itl, Stats::default());
        assert_eq!(p.label.as_deref(), Some("run 7 step 2 (bs 16, 256/128)"));
    }
}

//! The recording as polars DataFrames, for the renderers and for ad-hoc analysis: one row per
//! request with its [`crate::metrics`] figures, and one row per chunk with its gap to the
//! previous chunk of the same request. Built from the recording types; no I/O.

use polars::prelude::*;

use crate::metrics;
use crate::recording::RequestRecord;

/// One row per request: `request` (index in the recording), `step_idx`, `wave`, `warmup`,
/// `outcome`, `sent_t_s`, `ttft_s`, `ttft_answer_s`, `tpot_s`, `e2e_s`, `output_tokens`,
/// `prompt_tokens_requested`, `prompt_tokens_reported`.
pub fn requests_frame(requests: &[RequestRecord]) -> PolarsResult<DataFrame> {
    let n = requests.len();
    df!(
        "request" => (0..n as u32).collect::<Vec<u32>>(),
        "step_idx" => requests.iter().map(|r| r.step_idx).collect::<Vec<u32>>(),
        "wave" => requests.iter().map(|r| r.wave).collect::<Vec<Option<u32>>>(),
        "warmup" => requests.iter().map(|r| r.warmup).collect::<Vec<bool>>(),
        "outcome" => requests.iter().map(|r| r.outcome.as_str()).collect::<Vec<&str>>(),
        "sent_t_s" => requests.iter().map(|r| r.sent_t_s).collect::<Vec<f64>>(),
        "ttft_s" => requests.iter().map(metrics::ttft_s).collect::<Vec<Option<f64>>>(),
        "ttft_answer_s" => requests.iter().map(metrics::ttft_answer_s).collect::<Vec<Option<f64>>>(),
        "tpot_s" => requests.iter().map(metrics::tpot_s).collect::<Vec<Option<f64>>>(),
        "e2e_s" => requests.iter().map(metrics::e2e_s).collect::<Vec<Option<f64>>>(),
        "output_tokens" => requests.iter().map(metrics::output_tokens).collect::<Vec<Option<u32>>>(),
        "prompt_tokens_requested" => requests.iter().map(|r| r.prompt_tokens_requested).collect::<Vec<u32>>(),
        "prompt_tokens_reported" => requests.iter().map(|r| r.prompt_tokens_reported).collect::<Vec<Option<u32>>>(),
    )
}

/// One row per chunk: `request`, `step_idx`, `warmup`, `t_s`, `tokens`, `kind`, and `gap_s`
/// (the ITL: time since the request's previous chunk; null for its first chunk).
pub fn chunks_frame(requests: &[RequestRecord]) -> PolarsResult<DataFrame> {
    let total: usize = requests.iter().map(|r| r.chunks.len()).sum();
    let mut request = Vec::with_capacity(total);
    let mut step = Vec::with_capacity(total);
    let mut warmup = Vec::with_capacity(total);
    let mut t = Vec::with_capacity(total);
    let mut tokens = Vec::with_capacity(total);
    let mut kind = Vec::with_capacity(total);
    let mut gap = Vec::with_capacity(total);
    for (i, r) in requests.iter().enumerate() {
        let mut prev: Option<f64> = None;
        for c in &r.chunks {
            request.push(i as u32);
            step.push(r.step_idx);
            warmup.push(r.warmup);
            t.push(c.t_s);
            tokens.push(c.tokens);
            kind.push(c.kind.as_str());
            gap.push(prev.map(|p| c.t_s - p));
            prev = Some(c.t_s);
        }
    }
    df!(
        "request" => request,
        "step_idx" => step,
        "warmup" => warmup,
        "t_s" => t,
        "tokens" => tokens,
        "kind" => kind,
        "gap_s" => gap,
    )
}

/// Per step, the ITL distribution of measured requests: `step_idx`, `itl_n`, `itl_mean_s`,
/// `itl_p50_s`, `itl_p99_s` (polars' linear quantile, the same method as
/// [`metrics::percentile`]).
pub fn itl_by_step(chunks: &DataFrame) -> PolarsResult<DataFrame> {
    chunks
        .clone()
        .lazy()
        .filter(col("warmup").not().and(col("gap_s").is_not_null()))
        .group_by([col("step_idx")])
        .agg([
            col("gap_s").count().alias("itl_n"),
            col("gap_s").mean().alias("itl_mean_s"),
            col("gap_s")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("itl_p50_s"),
            col("gap_s")
                .quantile(lit(0.99), QuantileMethod::Linear)
                .alias("itl_p99_s"),
        ])
        .sort(["step_idx"], SortMultipleOptions::default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{WaveSpec, wave_recording};

    #[test]
    fn frames_carry_one_row_per_request_and_chunk_and_itl_agrees_with_metrics() {
        let rec = wave_recording(&[WaveSpec {
            output_len: 11,
            ..WaveSpec::default()
        }]);
        let req = requests_frame(&rec.requests).unwrap();
        assert_eq!(req.height(), rec.requests.len());
        let chunks = chunks_frame(&rec.requests).unwrap();
        assert_eq!(chunks.height(), rec.requests.len() * 11);
        let itl = itl_by_step(&chunks).unwrap();
        let p50 = itl
            .column("itl_p50_s")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap();
        let summary = crate::summarize_steps(&rec.steps, &rec.requests, &rec.ticks);
        assert!((p50 - summary[0].itl_s.unwrap().p50).abs() < 1e-12);
    }
}

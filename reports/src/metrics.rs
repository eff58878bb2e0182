//! THE metric definitions, written once. Every figure `ceiling` prints about latency comes from
//! these functions; the probe summary, `analyze` and the reports all call them. The conventions
//! are vLLM's (`vllm bench serve`), so numbers compare with the figures people already quote.
//! This module only computes; it never reads a file or prints.
//!
//! All instants are seconds from the run's start on the probe's monotonic clock
//! ([`RequestRecord`]). For one request `r` with `n` output tokens:
//!
//! - **TTFT** (time to first token) = `first_token_t_s − sent_t_s`: to the first chunk that
//!   carried any token, reasoning or answer ([`ttft_s`]).
//! - **TTFT to answer** = `first_answer_t_s − sent_t_s`: to the first answer (non-reasoning)
//!   token; equals TTFT for models that do not reason ([`ttft_answer_s`]).
//! - **E2E** (end-to-end latency) = `done_t_s − sent_t_s` ([`e2e_s`]).
//! - **Output tokens** `n`: the engine's `usage.completion_tokens`; when the engine did not
//!   report usage, the sum of per-chunk token counts if every chunk carried one, else the number
//!   of chunks (one token per chunk, a lower bound under speculative decoding) ([`output_tokens`]).
//! - **TPOT** (time per output token after the first) = `(E2E − TTFT) / (n − 1)`, defined for
//!   `n ≥ 2` ([`tpot_s`]). `OTPS = 1 / TPOT` is one sequence's decode speed.
//! - **ITL** (inter-token latency) = the gaps between consecutive chunk arrivals of one request,
//!   `chunk[i].t_s − chunk[i−1].t_s` ([`itls_s`]). A chunk can hold several tokens (speculative
//!   decoding / MTP, or a server that batches its stream), so an ITL is per chunk, not per token.
//!
//! Percentiles ([`percentile`]) use linear interpolation between the two nearest ranks, the
//! method of `numpy.percentile` (its default, "linear") that vLLM uses: for sorted values
//! `x[0..m]` and `p` in 0..=100, the rank is `h = (m − 1) × p / 100` and the percentile is
//! `x[⌊h⌋] + (h − ⌊h⌋) × (x[⌊h⌋+1] − x[⌊h⌋])`. Means are arithmetic. Distributions are taken
//! over requests (TTFT, TPOT, E2E) or over all gaps of all requests (ITL), never averaged per
//! request first.
//!
//! Each definition exists twice, side by side: as a function of one [`RequestRecord`] and as a
//! polars expression over the per-request frame ([`crate::frames::request_figures`]: the
//! recording's `requests` columns plus, per request, `chunks_n`, `chunk_tokens_sum`,
//! `chunk_tokens_nulls` and `last_chunk_t_s` from its chunks). The analysis runs the
//! expressions; the functions serve the charts and the test oracle ([`crate::legacy`]), and the
//! equivalence tests hold the two to the same figures.

use polars::prelude::{DataType, Expr, NULL, col, lit, when};
use serde::{Deserialize, Serialize};

use crate::recording::{Outcome, RequestRecord};

/// Time to first token (reasoning or answer), seconds.
pub fn ttft_s(r: &RequestRecord) -> Option<f64> {
    r.first_token_t_s.map(|t| t - r.sent_t_s)
}

/// Time to the first answer (non-reasoning) token, seconds.
pub fn ttft_answer_s(r: &RequestRecord) -> Option<f64> {
    r.first_answer_t_s.map(|t| t - r.sent_t_s)
}

/// End-to-end latency, seconds.
pub fn e2e_s(r: &RequestRecord) -> Option<f64> {
    r.done_t_s.map(|t| t - r.sent_t_s)
}

/// Output tokens of a request: reported usage, else per-chunk counts, else one per chunk.
pub fn output_tokens(r: &RequestRecord) -> Option<u32> {
    if let Some(n) = r.completion_tokens_reported {
        return Some(n);
    }
    if r.chunks.is_empty() {
        return None;
    }
    let per_chunk: Option<u32> = r.chunks.iter().map(|c| c.tokens).sum();
    Some(per_chunk.unwrap_or(r.chunks.len() as u32))
}

/// Whether the output token count came from the engine (usage or per-chunk counts) rather than
/// from counting chunks.
pub fn output_tokens_known(r: &RequestRecord) -> bool {
    r.completion_tokens_reported.is_some()
        || (!r.chunks.is_empty() && r.chunks.iter().all(|c| c.tokens.is_some()))
}

/// Time per output token after the first: `(E2E − TTFT) / (n − 1)`, seconds, for `n ≥ 2`.
pub fn tpot_s(r: &RequestRecord) -> Option<f64> {
    let n = output_tokens(r)?;
    if n < 2 {
        return None;
    }
    Some((e2e_s(r)? - ttft_s(r)?) / f64::from(n - 1))
}

/// Inter-token latencies: the gaps between consecutive chunk arrivals, seconds.
pub fn itls_s(r: &RequestRecord) -> impl Iterator<Item = f64> + '_ {
    r.chunks.windows(2).map(|w| w[1].t_s - w[0].t_s)
}

/// Whether a request counts in the latency figures: it succeeded and was not warm-up.
pub fn is_measured_ok(r: &RequestRecord) -> bool {
    r.outcome == Outcome::Ok && !r.warmup
}

/// [`ttft_s`] over the per-request frame.
pub fn ttft_expr() -> Expr {
    col("first_token_t_s") - col("sent_t_s")
}

/// [`ttft_answer_s`] over the per-request frame.
pub fn ttft_answer_expr() -> Expr {
    col("first_answer_t_s") - col("sent_t_s")
}

/// [`e2e_s`] over the per-request frame.
pub fn e2e_expr() -> Expr {
    col("done_t_s") - col("sent_t_s")
}

/// [`output_tokens`] over the per-request frame (UInt64; null for a request with no usage and
/// no chunk).
pub fn output_tokens_expr() -> Expr {
    let from_chunks = when(col("chunk_tokens_nulls").eq(lit(0)))
        .then(col("chunk_tokens_sum").cast(DataType::UInt64))
        .otherwise(col("chunks_n").cast(DataType::UInt64));
    col("completion_tokens_reported")
        .cast(DataType::UInt64)
        .fill_null(
            when(col("chunks_n").gt(lit(0)))
                .then(from_chunks)
                .otherwise(lit(NULL).cast(DataType::UInt64)),
        )
}

/// [`output_tokens_known`] over the per-request frame.
pub fn output_tokens_known_expr() -> Expr {
    col("completion_tokens_reported")
        .is_not_null()
        .or(col("chunks_n")
            .gt(lit(0))
            .and(col("chunk_tokens_nulls").eq(lit(0))))
}

/// [`tpot_s`] over the per-request frame; needs the `output_tokens` column
/// ([`output_tokens_expr`]).
pub fn tpot_expr() -> Expr {
    let n = col("output_tokens").cast(DataType::Float64);
    when(col("output_tokens").gt_eq(lit(2)))
        .then((e2e_expr() - ttft_expr()) / (n - lit(1.0)))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// [`is_measured_ok`] over the per-request frame.
pub fn is_measured_ok_expr() -> Expr {
    col("outcome")
        .eq(lit(Outcome::Ok.as_str()))
        .and(col("warmup").not())
}

/// The `p`-th percentile (0..=100) of already **sorted** values, numpy's linear method.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * (p / 100.0).clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The linear quantiles `qs` (fractions in 0..=1) of unsorted values, which are reordered:
/// [`percentile`]'s figures, polars' `QuantileMethod::Linear` (a rank's value, plus the
/// fraction of the way to the next rank's). Each rank is a selection within the part the
/// previous one left above or below it (`select_nth_unstable`), so three quantiles of millions
/// of gaps cost about two linear passes rather than a sort or polars' copy per quantile.
pub fn quantiles_unsorted<const N: usize>(values: &mut [f64], qs: [f64; N]) -> Option<[f64; N]> {
    use std::cmp::Ordering;
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Polars' order for floats (`TotalOrd`): -0.0 and 0.0 tie, as in its selection.
    let cmp = |a: &f64, b: &f64| a.partial_cmp(b).unwrap_or(Ordering::Equal);
    let mut out = [0.0; N];
    // The rank last selected: values[..r] hold the r lowest values, values[r] the next.
    let mut selected: Option<usize> = None;
    for (slot, q) in out.iter_mut().zip(qs) {
        let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
        let lo = (h as usize).min(n - 1);
        match selected {
            Some(r) if r == lo => {}
            Some(r) if lo > r => {
                values[r + 1..].select_nth_unstable_by(lo - r - 1, cmp);
            }
            Some(r) => {
                values[..r].select_nth_unstable_by(lo, cmp);
            }
            None => {
                values.select_nth_unstable_by(lo, cmp);
            }
        }
        selected = Some(lo);
        let lower = values[lo];
        *slot = if h.ceil() as usize == lo {
            lower
        } else {
            let upper = values[lo + 1..]
                .iter()
                .copied()
                .min_by(cmp)
                .unwrap_or(lower);
            if lower == upper {
                lower
            } else {
                (h - lo as f64) * (upper - lower) + lower
            }
        };
    }
    Some(out)
}

/// The median of unsorted values (sorts a copy).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

/// Mean, p50, p90, p99 and max of a sample, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    /// Read as 0 from results written before it was added.
    #[serde(default)]
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Population standard deviation (`np.std`, as the peer tools report it); 0 in results
    /// written before it was added.
    #[serde(default)]
    pub std: f64,
}

/// Population standard deviation of finite values around `mean`.
pub fn population_std(values: &[f64], mean: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

impl Distribution {
    /// Summarizes the finite values; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Distribution> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        Some(Distribution {
            n,
            mean,
            p50: percentile(&v, 50.0)?,
            p90: percentile(&v, 90.0)?,
            p95: percentile(&v, 95.0)?,
            p99: percentile(&v, 99.0)?,
            max: v[n - 1],
            std: population_std(&v, mean),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_has_numpy_p95_and_population_std() {
        let d = Distribution::of([1.0, 2.0, 3.0, 4.0]).expect("values");
        // numpy.percentile([1, 2, 3, 4], 95) = 3.85; numpy.std = sqrt(1.25).
        assert!((d.p95 - 3.85).abs() < 1e-12, "{d:?}");
        assert!((d.std - 1.25f64.sqrt()).abs() < 1e-12, "{d:?}");
    }

    #[test]
    fn quantiles_by_selection_are_the_sorted_percentiles() {
        let mut seed = 7u64;
        for n in [1usize, 2, 3, 10, 101, 1000, 4097] {
            let mut v: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Few distinct values too, so ranks tie.
                    ((seed >> 33) % if n > 100 { 97 } else { 1 << 20 }) as f64 * 1e-4
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let got = quantiles_unsorted(&mut v, [0.5, 0.9, 0.99, 0.0, 1.0, 0.25]).unwrap();
            for (g, p) in got.iter().zip([50.0, 90.0, 99.0, 0.0, 100.0, 25.0]) {
                assert_eq!(
                    g.to_bits(),
                    percentile(&sorted, p).unwrap().to_bits(),
                    "n {n} p {p}"
                );
            }
        }
        assert_eq!(quantiles_unsorted(&mut [], [0.5]), None);
    }
    use crate::recording::{ChunkArrival, ChunkKind};

    pub(crate) fn req(sent: f64, chunks: &[f64], reported: Option<u32>) -> RequestRecord {
        RequestRecord {
            scheduled_t_s: None,
            response_id: None,
            step_idx: 0,
            worker: 0,
            wave: None,
            warmup: false,
            sent_t_s: sent,
            headers_t_s: Some(sent),
            first_token_t_s: chunks.first().copied(),
            first_answer_t_s: chunks.first().copied(),
            done_t_s: chunks.last().copied(),
            prompt_tokens_requested: 16,
            completion_tokens_requested: chunks.len() as u32,
            prompt_tokens_reported: Some(16),
            completion_tokens_reported: reported,
            cached_tokens_reported: None,
            prompt_from_text: false,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            chunks: chunks
                .iter()
                .map(|&t| ChunkArrival {
                    t_s: t,
                    tokens: None,
                    kind: ChunkKind::Answer,
                })
                .collect(),
        }
    }

    #[test]
    fn tpot_follows_the_vllm_formula_on_a_hand_example() {
        // Sent at 1.0, first token at 1.5, done at 2.5 with 11 tokens:
        // TTFT 0.5, E2E 1.5, TPOT = (1.5 - 0.5) / 10 = 0.1.
        let mut r = req(1.0, &[1.5, 2.5], Some(11));
        assert!((ttft_s(&r).unwrap() - 0.5).abs() < 1e-12);
        assert!((e2e_s(&r).unwrap() - 1.5).abs() < 1e-12);
        assert!((tpot_s(&r).unwrap() - 0.1).abs() < 1e-12);
        r.completion_tokens_reported = Some(1);
        assert_eq!(tpot_s(&r), None, "undefined for a single token");
    }

    #[test]
    fn output_tokens_fall_back_to_chunk_counts() {
        let mut r = req(0.0, &[0.1, 0.2, 0.3], None);
        assert_eq!(output_tokens(&r), Some(3));
        assert!(!output_tokens_known(&r));
        for c in &mut r.chunks {
            c.tokens = Some(2);
        }
        assert_eq!(output_tokens(&r), Some(6));
        assert!(output_tokens_known(&r));
    }

    #[test]
    fn itl_is_the_gaps_between_chunks() {
        let r = req(0.0, &[0.1, 0.15, 0.3], None);
        let gaps: Vec<f64> = itls_s(&r).collect();
        assert_eq!(gaps.len(), 2);
        assert!((gaps[0] - 0.05).abs() < 1e-12 && (gaps[1] - 0.15).abs() < 1e-12);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [50, 90, 99]) = 2.5, 3.7, 3.97
        assert!((percentile(&v, 50.0).unwrap() - 2.5).abs() < 1e-12);
        assert!((percentile(&v, 90.0).unwrap() - 3.7).abs() < 1e-12);
        assert!((percentile(&v, 99.0).unwrap() - 3.97).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
        let d = Distribution::of([4.0, 1.0, 3.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((d.n, d.mean, d.max), (4, 2.5, 4.0));
    }
}

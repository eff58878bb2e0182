//! The ceiling: the best feasible batch size and the output throughput there,
//!
//! `limit = max over feasible bs of bs × DP × MTP / t_fwd(bs)`,
//!
//! over the measured batch sizes (their measured step time) and every integer batch size the
//! fit reaches (its fitted step time). A batch size (per DP rank) is feasible when
//!
//! - its KV cache fits: `bs ≤ ⌊kv_capacity_tokens / (input_len + output_len)⌋` (capacity per
//!   rank, from the engine's metrics or `--kv-capacity-tokens`);
//! - it is within the engine's sequence cap (`--max-num-seqs`);
//! - it meets the SLA: `OTPS = MTP / t_fwd ≥ sla_otps` (default 20 tokens/s) and/or
//!   `TPOT = t_fwd / MTP ≤ sla_tpot_s`.
//!
//! With no KV capacity and no cap known, the search stops at four times the largest measured
//! batch size and says so (`limited_by = "search_limit"`). The request rate that follows is
//! `QPS_max ≈ 1 / (input_len / prefill_rate + output_len × t_fwd / (bs × DP × MTP))`, the
//! prefill rate being the node's (best wave prefill rate measured); with DP = MTP = 1 this is
//! DESIGN.md's `1 / (input_len / prefill_rate + output_len × t_fwd / bs)`.
//! The uncertainty is the fit's 95 % interval on `t_fwd` at the chosen batch size carried to
//! throughput; `extrapolated` says the chosen batch size is beyond the measured ones.
//!
//! There is one ceiling per `(input_len, output_len)` pair the run measured: the fitted step
//! time is taken at that pair's decode context (so the context term, where fitted, lowers the
//! ceiling of long sequences), and the KV limit uses that pair's tokens per sequence. Each
//! ceiling names its length bucket ([`length_bucket`]), the bands load-testing practice reports
//! lengths in: 0–4k, 4k–16k, 16k–32k, then doubling (32k–64k, 64k–128k, …), of the sequence's
//! whole length `input_len + output_len` (the context it reaches, what its KV holds at the end),
//! with k = 1,024 tokens and each band closed below and open above.

use serde::Serialize;

use crate::fit::{StepTimeFit, decode_context};
use crate::step_time::StepTiming;

/// What the ceiling is computed under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CeilingOptions {
    pub dp: u32,
    /// Minimum tokens/s per sequence; 20 when neither SLA is given.
    pub sla_otps: Option<f64>,
    /// Maximum time per output token.
    pub sla_tpot_s: Option<f64>,
    /// KV capacity per rank in tokens; overrides the engine's figure.
    pub kv_capacity_tokens: Option<f64>,
    /// The engine's sequence cap per rank.
    pub max_num_seqs: Option<u32>,
}

impl Default for CeilingOptions {
    fn default() -> Self {
        CeilingOptions {
            dp: 1,
            sla_otps: None,
            sla_tpot_s: None,
            kv_capacity_tokens: None,
            max_num_seqs: None,
        }
    }
}

/// Default SLA: 20 output tokens per second per sequence.
pub const DEFAULT_SLA_OTPS: f64 = 20.0;

/// The ceiling for one pair of lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ceiling {
    pub input_len: u32,
    pub output_len: u32,
    /// `input_len + output_len`: the context a sequence reaches.
    pub seq_len_tokens: u32,
    /// The length band `seq_len_tokens` falls in, e.g. `4k-16k` ([`length_bucket`]).
    pub length_bucket: String,
    pub dp: u32,
    pub mtp: f64,
    /// Best feasible batch size per rank.
    pub bs_per_rank: u32,
    pub t_fwd_s: f64,
    pub t_fwd_ci95_s: Option<[f64; 2]>,
    /// `bs × DP × MTP / t_fwd`, output tokens/s of the node.
    pub throughput_tok_s: f64,
    pub throughput_ci95_tok_s: Option<[f64; 2]>,
    pub otps_per_seq: f64,
    pub tpot_s: f64,
    /// Node prefill rate used for `QPS_max` (input tokens/s), where measured.
    pub prefill_rate_tok_s: Option<f64>,
    pub qps_max: Option<f64>,
    /// Taken at a measured step (its measured step time) rather than from the fit.
    pub measured: bool,
    /// Beyond the largest measured batch size.
    pub extrapolated: bool,
    pub max_measured_bs_per_rank: f64,
    /// What stops a larger batch: `sla`, `kv_capacity`, `max_num_seqs` or `search_limit`.
    pub limited_by: String,
    pub kv_capacity_tokens: Option<f64>,
    pub bs_max_kv: Option<u32>,
    pub sla_otps: Option<f64>,
    pub sla_tpot_s: Option<f64>,
}

struct Limits {
    mtp: f64,
    sla_otps: Option<f64>,
    sla_tpot_s: Option<f64>,
    bs_max_kv: Option<u32>,
    max_num_seqs: Option<u32>,
}

impl Limits {
    /// Why `bs` at step time `t` is infeasible, or `None` when it is feasible.
    fn blocks(&self, bs: f64, t: f64) -> Option<&'static str> {
        if self.bs_max_kv.is_some_and(|m| bs > f64::from(m)) {
            return Some("kv_capacity");
        }
        if self.max_num_seqs.is_some_and(|m| bs > f64::from(m)) {
            return Some("max_num_seqs");
        }
        if t.is_nan() || t <= 0.0 {
            return Some("sla");
        }
        if self.sla_otps.is_some_and(|s| self.mtp / t < s)
            || self.sla_tpot_s.is_some_and(|s| t / self.mtp > s)
        {
            return Some("sla");
        }
        None
    }
}

/// Upper edges of the length buckets in tokens, below the doubling that continues past them.
const BUCKET_EDGES: [u64; 3] = [4 * 1024, 16 * 1024, 32 * 1024];

/// The edges `[lo, hi)` of the length bucket holding a sequence of `tokens` tokens.
pub fn length_bucket_edges(tokens: u32) -> (u64, u64) {
    let t = u64::from(tokens);
    let mut lo = 0;
    let mut hi = BUCKET_EDGES[0];
    let mut edges = BUCKET_EDGES.iter().skip(1);
    while t >= hi {
        lo = hi;
        hi = edges.next().copied().unwrap_or(hi * 2);
    }
    (lo, hi)
}

/// The length bucket of a sequence of `tokens` tokens: `0-4k`, `4k-16k`, `16k-32k`, then
/// doubling (`32k-64k`, `64k-128k`, …). Each band holds its lower edge: 4,096 tokens is `4k-16k`.
pub fn length_bucket(tokens: u32) -> String {
    let (lo, hi) = length_bucket_edges(tokens);
    let k = |v: u64| {
        if v == 0 {
            "0".to_string()
        } else {
            format!("{}k", v / 1024)
        }
    };
    format!("{}-{}", k(lo), k(hi))
}

/// One ceiling per distinct (input_len, output_len) among the timed steps.
pub fn ceilings(
    timings: &[StepTiming],
    fit: Option<&StepTimeFit>,
    opts: &CeilingOptions,
) -> Vec<Ceiling> {
    let mut lengths: Vec<(u32, u32)> = timings
        .iter()
        .filter(|t| t.t_fwd_s.is_some())
        .map(|t| (t.input_len, t.output_len))
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
        .into_iter()
        .filter_map(|(i, o)| ceiling_for(timings, fit, opts, i, o))
        .collect()
}

fn ceiling_for(
    timings: &[StepTiming],
    fit: Option<&StepTimeFit>,
    opts: &CeilingOptions,
    input_len: u32,
    output_len: u32,
) -> Option<Ceiling> {
    let dp = opts.dp.max(1);
    let steps: Vec<&StepTiming> = timings
        .iter()
        .filter(|t| t.input_len == input_len && t.output_len == output_len && t.t_fwd_s.is_some())
        .collect();
    let (limits, kv_capacity_tokens) = limits_for(timings, &steps, opts, input_len + output_len);
    let Limits {
        mtp,
        sla_otps,
        sla_tpot_s,
        bs_max_kv,
        ..
    } = limits;
    let max_measured = steps.iter().map(|t| t.bs_per_rank).fold(0.0, f64::max);
    let ctx = decode_context(input_len, output_len);
    let throughput = |bs: f64, t: f64| bs * f64::from(dp) * mtp / t;

    // (bs, t_fwd, measured)
    let mut candidates: Vec<(f64, f64, bool)> = steps
        .iter()
        .filter_map(|t| t.t_fwd_s.map(|v| (t.bs_per_rank, v, true)))
        .collect();
    let hard_cap = [bs_max_kv, opts.max_num_seqs].into_iter().flatten().min();
    let search_limit = (4.0 * max_measured).ceil().max(1.0) as u32;
    let grid_max = hard_cap.unwrap_or(search_limit).min(65_536);
    // A measured batch size keeps its own step time; the fit fills in the others.
    let measured_bs: Vec<f64> = candidates.iter().map(|c| c.0).collect();
    if let Some(f) = fit {
        candidates.extend(
            (1..=grid_max)
                .map(f64::from)
                .filter(|bs| !measured_bs.contains(bs))
                .map(|bs| (bs, f.predict(bs, ctx), false)),
        );
    }
    let best = candidates
        .iter()
        .filter(|(bs, t, _)| limits.blocks(*bs, *t).is_none())
        .copied()
        .max_by(|a, b| {
            throughput(a.0, a.1)
                .total_cmp(&throughput(b.0, b.1))
                .then(a.2.cmp(&b.2))
        })?;
    let (bs, t, measured) = best;
    let next = bs + 1.0;
    let limited_by = match fit.map(|f| limits.blocks(next, f.predict(next, ctx))) {
        Some(Some(reason)) => reason,
        _ if hard_cap.is_none() && next > f64::from(search_limit) => "search_limit",
        _ => limits.blocks(next, t).unwrap_or("search_limit"),
    };
    let t_fwd_ci95_s = fit.and_then(|f| f.predict_ci95(bs, ctx)).map(|[lo, hi]| {
        // Centre the fit's half-width on the value used (measured or fitted).
        let half = (hi - lo) / 2.0;
        [(t - half).max(0.0), t + half]
    });
    let prefill_rate_tok_s = timings
        .iter()
        .filter_map(|s| s.prefill_rate_tok_s)
        .reduce(f64::max);
    let tput = throughput(bs, t);
    Some(Ceiling {
        input_len,
        output_len,
        seq_len_tokens: input_len.saturating_add(output_len),
        length_bucket: length_bucket(input_len.saturating_add(output_len)),
        dp,
        mtp,
        bs_per_rank: bs.round() as u32,
        t_fwd_s: t,
        t_fwd_ci95_s,
        throughput_tok_s: tput,
        // A step-time interval that reaches zero bounds the throughput from below only: no
        // upper bound is honest, so the interval is left out rather than made infinite.
        throughput_ci95_tok_s: t_fwd_ci95_s
            .filter(|[lo, _]| *lo > 0.0)
            .map(|[lo, hi]| [throughput(bs, hi), throughput(bs, lo)]),
        otps_per_seq: mtp / t,
        tpot_s: t / mtp,
        prefill_rate_tok_s,
        qps_max: prefill_rate_tok_s
            .map(|p| 1.0 / (f64::from(input_len) / p + f64::from(output_len) / tput)),
        measured,
        extrapolated: bs > max_measured + 1e-9,
        max_measured_bs_per_rank: max_measured,
        limited_by: limited_by.to_string(),
        kv_capacity_tokens,
        bs_max_kv,
        sla_otps,
        sla_tpot_s,
    })
}

/// What bounds the batch at one length pair (`seq_len` tokens a sequence): the steps' median
/// MTP, the SLA (the default OTPS where none is given), the batch the KV cache holds (from the
/// options, else the engine's largest reported capacity) and the sequence cap; and that
/// capacity.
fn limits_for(
    timings: &[StepTiming],
    steps: &[&StepTiming],
    opts: &CeilingOptions,
    seq_len: u32,
) -> (Limits, Option<f64>) {
    let mut mtps: Vec<f64> = steps.iter().map(|t| t.mtp).collect();
    mtps.sort_by(f64::total_cmp);
    let mtp = crate::metrics::percentile(&mtps, 50.0).unwrap_or(1.0);
    let kv_capacity_tokens = opts.kv_capacity_tokens.or_else(|| {
        timings
            .iter()
            .filter_map(|t| t.engine.kv_capacity_tokens)
            .reduce(f64::max)
    });
    let per_seq = f64::from(seq_len).max(1.0);
    let bs_max_kv = kv_capacity_tokens.map(|c| (c / per_seq).floor().max(0.0) as u32);
    let (sla_otps, sla_tpot_s) = match (opts.sla_otps, opts.sla_tpot_s) {
        (None, None) => (Some(DEFAULT_SLA_OTPS), None),
        other => other,
    };
    let limits = Limits {
        mtp,
        sla_otps,
        sla_tpot_s,
        bs_max_kv,
        max_num_seqs: opts.max_num_seqs,
    };
    (limits, kv_capacity_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{FitPoint, fit_step_time};

    /// Steps at bs 1, 2, 4 with the given step times, and the fit through them.
    fn steps(t_fwd_s: [f64; 3]) -> (Vec<StepTiming>, Option<StepTimeFit>) {
        let timings: Vec<StepTiming> = [1u32, 2, 4]
            .into_iter()
            .zip(t_fwd_s)
            .enumerate()
            .map(|(i, (bs, t))| {
                let mut s = crate::findings::fixture::timing();
                s.step_idx = i as u32;
                s.batch_size = bs;
                s.bs_per_rank = f64::from(bs);
                s.t_fwd_s = Some(t);
                s
            })
            .collect();
        let points: Vec<FitPoint> = timings
            .iter()
            .map(|t| FitPoint {
                step_idx: t.step_idx,
                bs: t.bs_per_rank,
                context_tokens: crate::fit::decode_context(t.input_len, t.output_len),
                t_fwd_s: t.t_fwd_s.unwrap_or(f64::NAN),
            })
            .collect();
        let fit = fit_step_time(&points);
        (timings, fit)
    }

    #[test]
    fn length_buckets_follow_load_testing_practice() {
        let b = |t| length_bucket(t);
        assert_eq!(
            [
                b(0),
                b(256),
                b(4095),
                b(4096),
                b(16_383),
                b(16_384),
                b(32_768),
                b(65_536)
            ],
            [
                "0-4k", "0-4k", "0-4k", "4k-16k", "4k-16k", "16k-32k", "32k-64k", "64k-128k"
            ]
        );
        assert_eq!(b(200_000), "128k-256k");
        assert_eq!(b(u32::MAX), "2097152k-4194304k");
    }

    #[test]
    fn a_tight_fit_bounds_the_throughput_on_both_sides() {
        let (timings, fit) = steps([0.0101, 0.0102, 0.01041]);
        let c = &ceilings(&timings, fit.as_ref(), &CeilingOptions::default())[0];
        let [lo, hi] = c
            .t_fwd_ci95_s
            .expect("a fit with one degree of freedom has an interval");
        assert!(
            lo > 0.0 && lo <= c.t_fwd_s && c.t_fwd_s <= hi,
            "{lo} {} {hi}",
            c.t_fwd_s
        );
        let [tlo, thi] = c.throughput_ci95_tok_s.expect("bounded");
        assert!(tlo <= c.throughput_tok_s && c.throughput_tok_s <= thi);
        assert!(thi.is_finite());
    }

    #[test]
    fn a_step_time_interval_that_reaches_zero_leaves_the_throughput_unbounded_not_infinite() {
        // Noise as large as the signal: the interval's lower end would be below zero.
        let (timings, fit) = steps([0.010, 0.001, 0.030]);
        let c = &ceilings(&timings, fit.as_ref(), &CeilingOptions::default())[0];
        let [lo, _] = c.t_fwd_ci95_s.expect("an interval");
        assert_eq!(lo, 0.0);
        assert_eq!(c.throughput_ci95_tok_s, None);
        let json = serde_json::to_string(c).expect("serializes");
        assert!(json.contains("\"throughput_ci95_tok_s\":null"), "{json}");
    }
}

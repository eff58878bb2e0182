//! The client's chunks inside the measurement windows, per step: each chunk placed in its
//! step's window, then group-bys for the gaps between consecutive chunks of a request inside one
//! window, each request's mean gap over its run of chunks in a window, tokens per chunk where
//! the engine counted them, and the tokens that arrived in the windows (a chunk counted as one
//! token where unknown).
//!
//! Placing a chunk in a window is a binary search of its instant in its step's sorted windows
//! (one pass over the `step_idx` and `t_s` columns; [`window::index_of`]): polars' as-of join
//! would do the same but brings polars-time and the streaming engine into the build.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use crate::frames::{Rows, same_request};
use crate::window::{self, Window};

/// One step's client cadence.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cadence {
    /// Gaps between consecutive chunks of one request within one window.
    pub gaps: usize,
    pub gap_median_s: Option<f64>,
    /// Median over (request, window) runs of three chunks or more of `(last − first) /
    /// (chunks − 1)`. A late read moves one arrival but not the span, so this holds where the
    /// gaps do not.
    pub span_gap_median_s: Option<f64>,
    pub tokens_per_chunk: Option<f64>,
    /// Tokens that arrived inside the windows after their start.
    pub window_tokens: f64,
    /// Every chunk counted in `window_tokens` said how many tokens it held.
    pub window_tokens_known: bool,
}

/// Adds `win` (a window id unique over the run; null outside every window) and `win_open`
/// (inside a window and after its start) to the chunks.
fn place_in_windows(
    chunks: &DataFrame,
    windows: &BTreeMap<u32, Vec<Window>>,
) -> PolarsResult<DataFrame> {
    let mut base: HashMap<u32, (u32, &[Window])> = HashMap::new();
    let mut next = 0u32;
    for (&step, w) in windows {
        base.insert(step, (next, w.as_slice()));
        next += w.len() as u32;
    }
    let steps = chunks.column("step_idx")?.u32()?;
    let ts = chunks.column("t_s")?.f64()?;
    let (win, open): (Vec<Option<u32>>, Vec<bool>) = steps
        .iter()
        .zip(ts.iter())
        .map(|(s, t)| {
            let (Some(s), Some(t)) = (s, t) else {
                return (None, false);
            };
            let Some(&(off, ws)) = base.get(&s) else {
                return (None, false);
            };
            match window::index_of(ws, t) {
                Some(i) => (Some(off + i as u32), t > ws[i].start_t_s),
                None => (None, false),
            }
        })
        .unzip();
    let mut out = chunks.clone();
    out.with_column(Column::new("win".into(), win))?;
    out.with_column(Column::new("win_open".into(), open))?;
    Ok(out)
}

/// The cadence of every step with windows, from the chunks with their gaps
/// ([`crate::frames::chunk_gaps`]); warm-up requests left out.
pub(super) fn cadence_by_step(
    chunks: &DataFrame,
    windows: &BTreeMap<u32, Vec<Window>>,
) -> PolarsResult<BTreeMap<u32, Cadence>> {
    let placed = place_in_windows(chunks, windows)?
        .lazy()
        .filter(col("warmup").not())
        .with_column(
            same_request()
                .and(col("win").is_not_null())
                .and(col("win").eq(col("win").shift(lit(1))))
                .fill_null(lit(false))
                .alias("in_pair"),
        );
    let median = |e: Expr| e.quantile(lit(0.5), QuantileMethod::Linear);
    let gap = col("gap_s").filter(col("in_pair").and(col("gap_s").is_finite()));
    let pair_tokens = col("tokens").cast(DataType::Float64).filter(col("in_pair"));
    let open_tokens = col("tokens")
        .cast(DataType::Float64)
        .filter(col("win_open"));
    let per_step = Rows::new(
        placed
            .clone()
            .group_by([col("step_idx")])
            .agg([
                col("gap_s").filter(col("in_pair")).count().alias("gaps"),
                median(gap).alias("gap_median"),
                pair_tokens.clone().sum().alias("pair_tokens"),
                pair_tokens.count().alias("pair_tokens_n"),
                open_tokens
                    .clone()
                    .fill_null(lit(1.0))
                    .sum()
                    .alias("win_tokens"),
                open_tokens.null_count().alias("win_tokens_unknown"),
            ])
            .collect()?,
        "step_idx",
    )?;
    let n = col("n").cast(DataType::Float64);
    let span_gap = (col("last") - col("first")) / (n - lit(1.0));
    let spans = Rows::new(
        placed
            .filter(col("win").is_not_null())
            .group_by([col("step_idx"), col("request"), col("win")])
            .agg([
                col("t_s").first().alias("first"),
                col("t_s").last().alias("last"),
                len().alias("n"),
            ])
            .filter(col("n").gt_eq(lit(3u32)))
            .group_by([col("step_idx")])
            .agg([median(span_gap.clone().filter(span_gap.is_finite())).alias("span_gap_median")])
            .collect()?,
        "step_idx",
    )?;
    let mut out = BTreeMap::new();
    for &step in windows.keys() {
        let known = per_step.u64(step, "pair_tokens_n")?.unwrap_or(0);
        out.insert(
            step,
            Cadence {
                gaps: per_step.u64(step, "gaps")?.unwrap_or(0) as usize,
                gap_median_s: per_step.f64(step, "gap_median")?,
                span_gap_median_s: spans.f64(step, "span_gap_median")?,
                tokens_per_chunk: match per_step.f64(step, "pair_tokens")? {
                    Some(t) if known > 0 => Some(t / known as f64),
                    _ => None,
                },
                window_tokens: per_step.f64(step, "win_tokens")?.unwrap_or(0.0),
                window_tokens_known: per_step.u64(step, "win_tokens_unknown")?.unwrap_or(0) == 0,
            },
        );
    }
    Ok(out)
}

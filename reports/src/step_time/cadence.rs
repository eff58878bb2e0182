//! The client's chunks inside the measurement windows, per step: each chunk placed in its
//! step's window, then group-bys for the gaps between consecutive chunks of a request inside one
//! window, each request's mean gap over its run of chunks in a window, tokens per chunk where
//! the engine counted them, and the tokens that arrived in the windows (a chunk counted as one
//! token where unknown).
//!
//! Placing a chunk in a window is a binary search of its instant in its step's sorted windows
//! (one pass over the `step_idx` and `t_s` columns; [`window::index_of`]): polars' as-of join
//! would do the same but brings polars-time and the streaming engine into the build. Warm-up
//! chunks are placed in no window, so no query filters (copies) the chunk frame for them. The
//! per-(request, window) spans are one pass over the placed rows rather than a group-by on three
//! keys over every chunk (most of the cadence's time at 10 M chunks).

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

impl Cadence {
    /// The client's step time: the median over requests of each one's mean gap inside a window
    /// (a late read of the client's moves single arrivals — the gaps' median can fall to 0 when
    /// chunks are read in bursts — but not a request's span), else the gaps' median, divided by
    /// the engine steps one chunk spans (`tokens_per_chunk / MTP`, at least 1).
    pub(crate) fn t_fwd_s(&self, mtp: f64) -> Option<f64> {
        let steps_per_chunk = self
            .tokens_per_chunk
            .map_or(1.0, |tpc| (tpc / mtp).max(1.0));
        self.span_gap_median_s
            .or(self.gap_median_s)
            .map(|g| g / steps_per_chunk)
    }

    /// Output tokens that arrived inside the windows per second of window; chunks of unknown
    /// size count as one engine step's tokens, MTP.
    pub(crate) fn throughput_tok_s(&self, window_s: f64, mtp: f64) -> Option<f64> {
        (window_s > 0.0 && self.gaps > 0).then(|| {
            let tokens = if self.window_tokens_known {
                self.window_tokens
            } else {
                self.window_tokens * mtp
            };
            tokens / window_s
        })
    }
}

/// A step's first window id over the run and its windows.
type StepWindows<'a> = (u32, &'a [Window]);

/// Adds `win` (a window id unique over the run; null outside every window and for a warm-up
/// request's chunks) and `win_open` (in a window and after its start) to the chunks. The chunks
/// come by request, so the step's windows are looked up once per run of one step's rows.
fn place_in_windows(
    chunks: &DataFrame,
    windows: &BTreeMap<u32, Vec<Window>>,
) -> PolarsResult<DataFrame> {
    let mut base: HashMap<u32, StepWindows> = HashMap::new();
    let mut next = 0u32;
    for (&step, w) in windows {
        base.insert(step, (next, w.as_slice()));
        next += w.len() as u32;
    }
    let steps = chunks.column("step_idx")?.u32()?;
    let ts = chunks.column("t_s")?.f64()?;
    let warmup = chunks.column("warmup")?.bool()?;
    let mut win: Vec<Option<u32>> = Vec::with_capacity(chunks.height());
    let mut open: Vec<bool> = Vec::with_capacity(chunks.height());
    let mut cached: Option<(u32, Option<StepWindows>)> = None;
    for ((s, t), warm) in steps.iter().zip(ts.iter()).zip(warmup.iter()) {
        let (Some(s), Some(t), Some(false)) = (s, t, warm) else {
            win.push(None);
            open.push(false);
            continue;
        };
        let step_windows = match cached {
            Some((step, w)) if step == s => w,
            _ => {
                let w = base.get(&s).copied();
                cached = Some((s, w));
                w
            }
        };
        match step_windows.and_then(|(off, ws)| Some((off, ws, window::index_of(ws, t)?))) {
            Some((off, ws, i)) => {
                win.push(Some(off + i as u32));
                open.push(t > ws[i].start_t_s);
            }
            None => {
                win.push(None);
                open.push(false);
            }
        }
    }
    let mut out = chunks.clone();
    out.with_column(Column::new("win".into(), win))?;
    out.with_column(Column::new("win_open".into(), open))?;
    Ok(out)
}

/// Per (request, window) run of three chunks or more, its step and `(last − first) / (chunks −
/// 1)`, as columns `step_idx`, `span_gap`. One pass over the placed chunks: they come by request
/// then arrival, so a request's chunks in a window are among its own rows (no group-by over
/// every chunk row).
fn span_gaps(placed: &DataFrame) -> PolarsResult<DataFrame> {
    let request = placed.column("request")?.u32()?;
    let step = placed.column("step_idx")?.u32()?;
    let win = placed.column("win")?.u32()?;
    let ts = placed.column("t_s")?.f64()?;
    let mut out = SpanGaps::default();
    // The current request's windows: (window, step, first, last, chunks).
    let mut runs: Vec<(u32, u32, f64, f64, u32)> = Vec::new();
    let mut current = None;
    for (((r, s), w), t) in request
        .iter()
        .zip(step.iter())
        .zip(win.iter())
        .zip(ts.iter())
    {
        if r != current {
            out.flush(&mut runs);
            current = r;
        }
        let (Some(s), Some(w), Some(t)) = (s, w, t) else {
            continue;
        };
        match runs.iter_mut().rev().find(|run| run.0 == w) {
            Some(run) => {
                run.3 = t;
                run.4 += 1;
            }
            None => runs.push((w, s, t, t, 1)),
        }
    }
    out.flush(&mut runs);
    df!("step_idx" => out.steps, "span_gap" => out.gaps)
}

#[derive(Default)]
struct SpanGaps {
    steps: Vec<u32>,
    gaps: Vec<f64>,
}

impl SpanGaps {
    fn flush(&mut self, runs: &mut Vec<(u32, u32, f64, f64, u32)>) {
        for &(_, step, first, last, n) in runs.iter().filter(|run| run.4 >= 3) {
            self.steps.push(step);
            self.gaps.push((last - first) / (f64::from(n) - 1.0));
        }
        runs.clear();
    }
}

/// The cadence of every step with windows, from the chunks with their gaps
/// ([`crate::frames::chunk_gaps`]); warm-up requests left out (placed in no window).
pub(super) fn cadence_by_step(
    chunks: &DataFrame,
    windows: &BTreeMap<u32, Vec<Window>>,
) -> PolarsResult<BTreeMap<u32, Cadence>> {
    let placed = place_in_windows(chunks, windows)?;
    let median = |e: Expr| e.quantile(lit(0.5), QuantileMethod::Linear);
    let gap = col("gap_s").filter(col("in_pair").and(col("gap_s").is_finite()));
    let pair_tokens = col("tokens").cast(DataType::Float64).filter(col("in_pair"));
    let open_tokens = col("tokens")
        .cast(DataType::Float64)
        .filter(col("win_open"));
    let per_step = Rows::new(
        placed
            .clone()
            .lazy()
            .with_column(
                same_request()
                    .and(col("win").is_not_null())
                    .and(col("win").eq(col("win").shift(lit(1))))
                    .fill_null(lit(false))
                    .alias("in_pair"),
            )
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
    let span_gap = col("span_gap");
    let spans = Rows::new(
        span_gaps(&placed)?
            .lazy()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_per_request_and_window_of_three_chunks_warm_up_left_out() {
        let w = |start_t_s, end_t_s| Window {
            start_t_s,
            end_t_s,
            wave: None,
        };
        let windows = BTreeMap::from([(0u32, vec![w(1.0, 2.0), w(3.0, 4.0)])]);
        let chunks = df!(
            "request" => [0u32, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
            "step_idx" => [0u32; 13],
            "t_s" => [1.0, 1.5, 2.0, 2.5, 3.0, 3.2, 1.1, 1.2, 1.3, 3.0, 3.1, 3.2, 3.9],
            "warmup" => [false, false, false, false, false, false, true, true, true,
                false, false, false, false],
        )
        .unwrap();
        let placed = place_in_windows(&chunks, &windows).unwrap();
        let win: Vec<Option<u32>> = placed
            .column("win")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            win,
            [
                Some(0),
                Some(0),
                Some(0),
                None,
                Some(1),
                Some(1),
                None,
                None,
                None,
                Some(1),
                Some(1),
                Some(1),
                Some(1)
            ]
        );
        let open: Vec<Option<bool>> = placed
            .column("win_open")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(open[..3], [Some(false), Some(true), Some(true)]);
        let spans = span_gaps(&placed).unwrap();
        let steps: Vec<Option<u32>> = spans
            .column("step_idx")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .collect();
        let gaps: Vec<f64> = spans
            .column("span_gap")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        // Request 0 in window 1 has two chunks only; request 1 is warm-up.
        assert_eq!(steps, [Some(0), Some(0)]);
        assert!((gaps[0] - 0.5).abs() < 1e-12, "{gaps:?}");
        assert!((gaps[1] - 0.3).abs() < 1e-12, "{gaps:?}");
    }
}

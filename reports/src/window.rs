//! The measurement window of a step: the intervals where exactly the requested batch decodes
//! together, so that chunk cadence, engine counters and GPU samples taken inside them describe
//! one engine step at that batch size.
//!
//! - Wave: per wave, from the last first token to the first finish
//!   (`[max first_token_t_s, min done_t_s]` over the wave's measured requests). Before it some
//!   sequences are still in prefill; after it the batch shrinks.
//! - Closed loop: the intervals where exactly `bs` requests are in flight (sent, not done),
//!   counting warm-up requests as load but starting no earlier than the first measured request.
//!
//! Warm-up requests never open a window. A wave whose window is empty (one output token, or a
//! request that finished before another started decoding) contributes none.
//!
//! A request's end is its `done_t_s`, else its last chunk's arrival. The wave windows are a
//! group-by over the per-request figures ([`crate::frames::request_figures`]); the closed-loop
//! ones a sweep over each step's send and end instants (two events per request, in Rust: an
//! in-flight count that opens and closes intervals is a scan, not a query).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::recording::{Outcome, Pattern, StepRecord};

/// One interval of a step's measurement window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub start_t_s: f64,
    pub end_t_s: f64,
    /// The wave it belongs to (wave pattern).
    pub wave: Option<u32>,
}

impl Window {
    pub fn duration_s(&self) -> f64 {
        self.end_t_s - self.start_t_s
    }

    pub fn contains(&self, t: f64) -> bool {
        self.start_t_s <= t && t <= self.end_t_s
    }
}

/// Total time covered by windows.
pub fn total_s(windows: &[Window]) -> f64 {
    windows.iter().map(Window::duration_s).sum()
}

/// The window holding instant `t`, for windows sorted by start and not overlapping.
pub fn index_of(windows: &[Window], t: f64) -> Option<usize> {
    let i = windows
        .partition_point(|w| w.start_t_s <= t)
        .checked_sub(1)?;
    windows[i].contains(t).then_some(i)
}

/// Closed-loop intervals separated by less than this are one: a worker hands over from a
/// finished request to its next one in microseconds, and that blip is not a smaller batch.
pub const HANDOVER_S: f64 = 0.010;

/// The measurement windows of every step, from the per-request figures; each step's sorted by
/// start and not overlapping.
pub fn windows_by_step(
    steps: &[StepRecord],
    figures: &DataFrame,
) -> PolarsResult<BTreeMap<u32, Vec<Window>>> {
    let mut out: BTreeMap<u32, Vec<Window>> = steps.iter().map(|s| (s.idx, Vec::new())).collect();
    let pattern: BTreeMap<u32, &StepRecord> = steps.iter().map(|s| (s.idx, s)).collect();
    for (step, w) in wave_windows(figures)? {
        if pattern
            .get(&step)
            .is_some_and(|s| s.pattern == Pattern::Wave)
        {
            out.entry(step).or_default().push(w);
        }
    }
    for (step, w) in closed_loop_windows(steps, figures)? {
        out.entry(step).or_default().extend(w);
    }
    for w in out.values_mut() {
        *w = sorted_without_overlap(std::mem::take(w));
    }
    Ok(out)
}

pub(crate) fn sorted_without_overlap(mut w: Vec<Window>) -> Vec<Window> {
    w.sort_by(|a, b| a.start_t_s.total_cmp(&b.start_t_s));
    // Overlapping waves (a late straggler) would double count: keep the first.
    let mut out: Vec<Window> = Vec::with_capacity(w.len());
    for win in w {
        match out.last() {
            Some(last) if win.start_t_s <= last.end_t_s => {}
            _ => out.push(win),
        }
    }
    out
}

/// A request's end: done, else its last chunk.
fn end_expr() -> Expr {
    col("done_t_s").fill_null(col("last_chunk_t_s"))
}

/// Per step and wave: `[max first token, min end]` over the wave's measured requests that
/// decoded. A request that failed before its first token never decoded: it does not bound the
/// window (its absence shows in the engine-batch check instead); one that failed without a
/// chunk does not end it.
fn wave_windows(figures: &DataFrame) -> PolarsResult<Vec<(u32, Window)>> {
    let ends = col("outcome")
        .eq(lit(Outcome::Ok.as_str()))
        .or(col("chunks_n").gt(lit(0)));
    let df = figures
        .clone()
        .lazy()
        .filter(
            col("warmup")
                .not()
                .and(col("first_token_t_s").is_not_null()),
        )
        .with_column(col("wave").fill_null(lit(0u32)))
        .group_by([col("step_idx"), col("wave")])
        .agg([
            col("first_token_t_s").max().alias("start"),
            end_expr().filter(ends).min().alias("end"),
        ])
        .sort(["step_idx", "wave"], SortMultipleOptions::default())
        .collect()?;
    let step = df.column("step_idx")?.u32()?;
    let wave = df.column("wave")?.u32()?;
    let start = df.column("start")?.f64()?;
    let end = df.column("end")?.f64()?;
    let mut out = Vec::new();
    for i in 0..df.height() {
        if let (Some(st), Some(w), Some(s), Some(e)) =
            (step.get(i), wave.get(i), start.get(i), end.get(i))
            && e > s
        {
            out.push((
                st,
                Window {
                    start_t_s: s,
                    end_t_s: e,
                    wave: Some(w),
                },
            ));
        }
    }
    Ok(out)
}

/// One request's send and end instants, for the closed-loop sweep.
pub(crate) struct Flight {
    pub(crate) sent: f64,
    pub(crate) end: Option<f64>,
    pub(crate) warmup: bool,
}

fn closed_loop_windows(
    steps: &[StepRecord],
    figures: &DataFrame,
) -> PolarsResult<Vec<(u32, Vec<Window>)>> {
    let closed: Vec<&StepRecord> = steps
        .iter()
        .filter(|s| s.pattern == Pattern::ClosedLoop)
        .collect();
    if closed.is_empty() {
        return Ok(Vec::new());
    }
    let df = figures
        .clone()
        .lazy()
        .select([
            col("step_idx"),
            col("sent_t_s"),
            end_expr().alias("end"),
            col("warmup"),
        ])
        .collect()?;
    let mut by_step: BTreeMap<u32, Vec<Flight>> = BTreeMap::new();
    let step = df.column("step_idx")?.u32()?;
    let sent = df.column("sent_t_s")?.f64()?;
    let end = df.column("end")?.f64()?;
    let warmup = df.column("warmup")?.bool()?;
    for i in 0..df.height() {
        if let (Some(st), Some(sent)) = (step.get(i), sent.get(i)) {
            by_step.entry(st).or_default().push(Flight {
                sent,
                end: end.get(i),
                warmup: warmup.get(i).unwrap_or(false),
            });
        }
    }
    Ok(closed
        .into_iter()
        .map(|s| {
            let flights = by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
            (s.idx, in_flight_windows(s.batch_size, flights))
        })
        .collect())
}

/// The intervals where exactly `bs` requests are in flight, from the first measured send on.
pub(crate) fn in_flight_windows(bs: u32, requests: &[Flight]) -> Vec<Window> {
    let Some(first_measured) = requests
        .iter()
        .filter(|r| !r.warmup)
        .map(|r| r.sent)
        .reduce(f64::min)
    else {
        return Vec::new();
    };
    // +1 at send, −1 at done; ends sort before starts at equal instants.
    let mut events: Vec<(f64, i32)> = Vec::with_capacity(requests.len() * 2);
    for r in requests {
        let Some(end) = r.end else { continue };
        events.push((r.sent, 1));
        events.push((end, -1));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<Window> = Vec::new();
    let mut in_flight = 0i64;
    let mut open: Option<f64> = None;
    for (t, d) in events {
        in_flight += i64::from(d);
        let full = in_flight == i64::from(bs);
        match (open, full) {
            (None, true) => open = Some(t.max(first_measured)),
            (Some(s), false) => {
                match out.last_mut() {
                    Some(last) if s - last.end_t_s < HANDOVER_S => last.end_t_s = t,
                    _ if t > s => out.push(Window {
                        start_t_s: s,
                        end_t_s: t,
                        wave: None,
                    }),
                    _ => {}
                }
                open = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{WaveSpec, wave_recording};

    #[test]
    fn a_wave_window_runs_from_the_last_first_token_to_the_first_finish() {
        let rec = wave_recording(&[WaveSpec {
            output_len: 11,
            waves: 2,
            ..WaveSpec::default()
        }]);
        let r = rec.recording();
        let figures = crate::frames::request_figures(&r).unwrap();
        let w = windows_by_step(&r.steps, &figures)
            .unwrap()
            .remove(&0)
            .unwrap();
        assert_eq!(w.len(), 2, "warm-up wave opens no window");
        // Ten decode steps of 10 ms; the last request's offset is 7 µs.
        for win in &w {
            assert!((win.duration_s() - 0.1).abs() < 1e-4, "{win:?}");
        }
        assert_eq!(w[0].wave, Some(1));
    }

    #[test]
    fn closed_loop_windows_are_where_bs_are_in_flight() {
        let mk = |sent: f64, done: f64, warmup: bool| crate::recording::RequestRecord {
            scheduled_t_s: None,
            response_id: None,
            warmup,
            done_t_s: Some(done),
            ..crate::synthetic::request_at(sent)
        };
        // bs 2: worker A 0..1, 1..2 ; worker B 0.5..1.5 (warm-up), 1.5..2.5
        let reqs = [
            mk(0.0, 1.0, true),
            mk(0.5, 1.5, true),
            mk(1.0, 2.0, false),
            mk(1.5, 2.5, false),
        ];
        let step = StepRecord {
            rate_rps: None,
            burstiness: None,
            idx: 0,
            batch_size: 2,
            input_len: 1,
            output_len: 1,
            pattern: Pattern::ClosedLoop,
            start_t_s: 0.0,
            end_t_s: Some(2.5),
        };
        let r = crate::recording::Recording::from_records(
            Default::default(),
            std::slice::from_ref(&step),
            &reqs,
            &[],
            Vec::new(),
            Vec::new(),
        )
        .unwrap();
        let figures = crate::frames::request_figures(&r).unwrap();
        let w = windows_by_step(&r.steps, &figures)
            .unwrap()
            .remove(&0)
            .unwrap();
        // In flight = 2 on [0.5, 2.0] but for the hand-over instants; after warm-up: [1, 2].
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].start_t_s, w[0].end_t_s), (1.0, 2.0));
        assert_eq!(index_of(&w, 1.5), Some(0));
        assert_eq!(index_of(&w, 2.1), None);
    }
}

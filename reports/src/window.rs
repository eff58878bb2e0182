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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::recording::{Outcome, Pattern, RequestRecord, StepRecord};

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

/// The measurement windows of one step from that step's requests (any order), sorted by
/// start and not overlapping.
pub fn step_windows(step: &StepRecord, requests: &[&RequestRecord]) -> Vec<Window> {
    let mut w = match step.pattern {
        Pattern::Wave => wave_windows(requests),
        Pattern::ClosedLoop => closed_loop_windows(step.batch_size, requests),
    };
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

fn wave_windows(requests: &[&RequestRecord]) -> Vec<Window> {
    let mut waves: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    for r in requests.iter().filter(|r| !r.warmup) {
        waves.entry(r.wave.unwrap_or(0)).or_default().push(r);
    }
    let mut out = Vec::new();
    for (wave, reqs) in waves {
        // A request that failed before its first token never decoded: it does not bound the
        // window (its absence shows in the engine-batch check instead).
        let decoding: Vec<&&RequestRecord> = reqs
            .iter()
            .filter(|r| r.first_token_t_s.is_some())
            .collect();
        let start = decoding
            .iter()
            .filter_map(|r| r.first_token_t_s)
            .reduce(f64::max);
        let end = decoding
            .iter()
            .filter_map(|r| {
                r.done_t_s
                    .or_else(|| r.chunks.last().map(|c| c.t_s))
                    .filter(|_| r.outcome == Outcome::Ok || !r.chunks.is_empty())
            })
            .reduce(f64::min);
        if let (Some(s), Some(e)) = (start, end)
            && e > s
        {
            out.push(Window {
                start_t_s: s,
                end_t_s: e,
                wave: Some(wave),
            });
        }
    }
    out
}

fn closed_loop_windows(bs: u32, requests: &[&RequestRecord]) -> Vec<Window> {
    let Some(first_measured) = requests
        .iter()
        .filter(|r| !r.warmup)
        .map(|r| r.sent_t_s)
        .reduce(f64::min)
    else {
        return Vec::new();
    };
    // +1 at send, −1 at done; ends sort before starts at equal instants.
    let mut events: Vec<(f64, i32)> = Vec::with_capacity(requests.len() * 2);
    for r in requests {
        let end = r.done_t_s.or_else(|| r.chunks.last().map(|c| c.t_s));
        let Some(end) = end else { continue };
        events.push((r.sent_t_s, 1));
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
        let reqs: Vec<&RequestRecord> = rec.requests.iter().collect();
        let w = step_windows(&rec.steps[0], &reqs);
        assert_eq!(w.len(), 2, "warm-up wave opens no window");
        // Ten decode steps of 10 ms; the last request's offset is 7 µs.
        for win in &w {
            assert!((win.duration_s() - 0.1).abs() < 1e-4, "{win:?}");
        }
        assert_eq!(w[0].wave, Some(1));
    }

    #[test]
    fn closed_loop_windows_are_where_bs_are_in_flight() {
        let mk = |sent: f64, done: f64, warmup: bool| RequestRecord {
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
        let refs: Vec<&RequestRecord> = reqs.iter().collect();
        let step = StepRecord {
            idx: 0,
            batch_size: 2,
            input_len: 1,
            output_len: 1,
            pattern: Pattern::ClosedLoop,
            start_t_s: 0.0,
            end_t_s: Some(2.5),
        };
        let w = step_windows(&step, &refs);
        // In flight = 2 on [0.5, 2.0] but for the hand-over instants; after warm-up: [1, 2].
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].start_t_s, w[0].end_t_s), (1.0, 2.0));
        assert_eq!(index_of(&w, 1.5), Some(0));
        assert_eq!(index_of(&w, 2.1), None);
    }
}

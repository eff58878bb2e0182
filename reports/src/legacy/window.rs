//! The measurement windows from request records: the oracle of [`crate::window`].

use std::collections::BTreeMap;

use crate::recording::{Outcome, Pattern, RequestRecord, StepRecord};
use crate::window::{HANDOVER_S, Window};

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

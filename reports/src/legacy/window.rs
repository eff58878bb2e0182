//! The measurement windows from request records: the oracle of [`crate::window`].

use std::collections::BTreeMap;

use crate::recording::{Outcome, Pattern, RequestRecord, StepRecord};
use crate::window::{Flight, Window, in_flight_windows, sorted_without_overlap};

/// The measurement windows of one step from that step's requests (any order), sorted by
/// start and not overlapping.
pub fn step_windows(step: &StepRecord, requests: &[&RequestRecord]) -> Vec<Window> {
    let w = match step.pattern {
        Pattern::Wave => wave_windows(requests),
        Pattern::ClosedLoop => closed_loop_windows(step.batch_size, requests),
        Pattern::Rate => Vec::new(),
    };
    sorted_without_overlap(w)
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

/// The closed-loop sweep is plain Rust in both implementations; only its inputs are gathered
/// differently (here from the records).
fn closed_loop_windows(bs: u32, requests: &[&RequestRecord]) -> Vec<Window> {
    let flights: Vec<Flight> = requests
        .iter()
        .map(|r| Flight {
            sent: r.sent_t_s,
            end: r.done_t_s.or_else(|| r.chunks.last().map(|c| c.t_s)),
            warmup: r.warmup,
        })
        .collect();
    in_flight_windows(bs, &flights)
}

//! Little's law paired at the scrapes, on hand-made waves whose engine view is known.

use ceiling_collectors::engines::Signals;

use super::*;

/// A wave of 24 requests sent at 0–9 ms, their last token at 1.765 s and done at 1.77 s.
fn wave() -> (StepRequests, Vec<Span>) {
    let spans: Vec<Span> = (0..24)
        .map(|i| (f64::from(i) * 0.0004, Some(1.765), 1.77))
        .collect();
    let e2e = spans.iter().map(|(a, _, b)| b - a).sum::<f64>() / 24.0;
    let req = StepRequests {
        ok_sent_min: Some(0.0),
        ok_done_max: Some(1.77),
        ok_n: 24,
        ok_e2e_mean_s: Some(e2e),
        ..StepRequests::default()
    };
    (req, spans)
}

/// Interval scrapes every 100 ms from 50 ms, the engine holding `held(t)`.
fn scrapes(held: impl Fn(f64) -> f64) -> Vec<EngineSample> {
    (0..18)
        .map(|i| {
            let t = 0.05 + f64::from(i) * 0.1;
            EngineSample {
                t_s: t,
                signals: Signals {
                    running: Some(held(t)),
                    waiting: Some(0.0),
                    ..Signals::default()
                },
                boundary: false,
            }
        })
        .collect()
}

/// Chunks every 10 ms from `from` to the wave's end.
fn chunks(from: f64) -> Vec<f64> {
    (0..)
        .map(|i| from + f64::from(i) * 0.01)
        .take_while(|&t| t < 1.77)
        .collect()
}

/// The law over [`wave`] with the engine holding `held(t)` and chunks from `first_chunk`.
fn wave_law(held: impl Fn(f64) -> f64, first_chunk: f64, t_fwd_s: Option<f64>) -> LittlesLaw {
    let (req, spans) = wave();
    let flight = InFlight::new(spans, &chunks(first_chunk));
    littles_law(&req, &flight, &scrapes(held), t_fwd_s).unwrap()
}

#[test]
fn a_wave_half_of_which_arrives_during_a_long_first_prefill_step_keeps_the_law() {
    // The engine's first step (0–0.5 s, its first chunk at 0.508 s) took the 12 requests that
    // had arrived; the other 12 are in no gauge until it ends, as vLLM's scheduler stats.
    let l = wave_law(|t| if t < 0.508 { 12.0 } else { 24.0 }, 0.508, Some(0.010));
    assert_eq!(l.samples, 18);
    // Scrapes at 50…450 ms see 12, at 550 ms… 24.
    assert!((l.engine_in_flight_mean - (5.0 * 12.0 + 13.0 * 24.0) / 18.0).abs() < 1e-9);
    assert!((l.client_in_flight_mean - 24.0).abs() < 1e-9, "{l:?}");
    assert!(
        (l.client_seen_mean - 13.0 * 24.0 / 18.0).abs() < 1e-9,
        "{l:?}"
    );
    assert_eq!(l.rel_err, 0.0);
    // Against QPS × E2E alone the same wave misses by more than the 15 % tolerance.
    let unpaired = (l.qps * l.e2e_mean_s - l.engine_in_flight_mean) / l.engine_in_flight_mean;
    assert!(unpaired > 0.15, "{unpaired}");
}

#[test]
fn a_proxy_that_passes_8_of_24_breaks_the_law() {
    // Chunks flow from 50 ms (the first 8 decode), so the other 16 have been waiting outside
    // the engine for a whole step at every scrape after.
    let l = wave_law(|_| 8.0, 0.05, Some(0.010));
    assert!((l.client_seen_mean - 24.0).abs() < 1e-9, "{l:?}");
    // 13.6 req/s × 10 ms steps: 0.14 requests may be a step late.
    assert!(
        (l.step_allowance - 24.0 / 1.77 * 0.010).abs() < 1e-9,
        "{l:?}"
    );
    assert!(
        (l.rel_err - (16.0 - l.step_allowance) / 24.0).abs() < 1e-9,
        "{l:?}"
    );
}

#[test]
fn more_in_the_engine_than_the_client_sent_is_no_shortfall() {
    // Other traffic: the token counters say it exactly.
    let l = wave_law(|_| 30.0, 0.05, Some(0.010));
    assert_eq!(l.rel_err, 0.0, "{l:?}");
}

#[test]
fn sglangs_log_point_gauges_are_not_paired() {
    let (req, spans) = wave();
    let mut eng = scrapes(|_| 4.0);
    for s in &mut eng {
        s.signals.flavor = Some(Flavor::Sglang);
    }
    assert_eq!(
        littles_law(
            &req,
            &InFlight::new(spans, &chunks(0.05)),
            &eng,
            Some(0.010)
        ),
        None
    );
}

#[test]
fn fewer_than_ten_scrapes_or_no_span_give_no_law() {
    let (req, spans) = wave();
    let flight = InFlight::new(spans, &chunks(0.05));
    let mut eng = scrapes(|_| 24.0);
    eng.truncate(9);
    assert_eq!(littles_law(&req, &flight, &eng, None), None);
    let empty = StepRequests::default();
    assert_eq!(littles_law(&empty, &flight, &scrapes(|_| 24.0), None), None);
}

#[test]
fn a_request_counts_from_the_next_chunk_after_its_send_to_its_last_chunk() {
    let f = InFlight::new(
        [
            (0.0, Some(0.9), 1.0),
            (0.5, Some(0.51), 0.52),
            (2.0, None, 3.0),
        ],
        &[0.1, 0.2, 0.6],
    );
    assert_eq!(f.seen, vec![0.1, 0.51, 2.0]);
    assert_eq!(f.last, vec![0.51, 0.9, 2.0]);
    assert_eq!(InFlight::at(&f.sent, &f.done, 0.505), 2.0);
    assert_eq!(InFlight::at(&f.seen, &f.last, 0.505), 1.0);
    // Past its last token, before the client read the stream's end.
    assert_eq!(InFlight::at(&f.sent, &f.done, 0.95), 1.0);
    assert_eq!(InFlight::at(&f.seen, &f.last, 0.95), 0.0);
    // No chunk at all: never surely counted.
    assert_eq!(InFlight::at(&f.seen, &f.last, 2.5), 0.0);
}

#[test]
fn short_requests_in_a_closed_loop_may_each_be_a_step_late() {
    // 8 streams of 60 ms requests back to back, 10 ms steps: 133 req/s, so 1.33 requests on
    // average reached the engine just after a step ended and wait one more to be counted.
    let spans: Vec<Span> = (0..8)
        .flat_map(|s| {
            (0..30).map(move |k| {
                let sent = f64::from(k) * 0.06 + f64::from(s) * 0.0075;
                (sent, Some(sent + 0.058), sent + 0.06)
            })
        })
        .collect();
    let req = StepRequests {
        ok_sent_min: Some(0.0),
        ok_done_max: Some(1.8525),
        ok_n: 240,
        ok_e2e_mean_s: Some(0.06),
        ..StepRequests::default()
    };
    let chunks: Vec<f64> = (1..190).map(|i| f64::from(i) * 0.01).collect();
    let flight = InFlight::new(spans, &chunks);
    let eng = scrapes(|_| 6.5);
    let with = littles_law(&req, &flight, &eng, Some(0.010)).unwrap();
    assert!(
        (with.step_allowance - 240.0 / 1.8525 * 0.010).abs() < 1e-9,
        "{with:?}"
    );
    assert!(with.rel_err < 0.15, "{with:?}");
    // Without the step, the same engine reads as a shortfall past the tolerance.
    let without = littles_law(&req, &flight, &eng, None).unwrap();
    assert!(without.rel_err > 0.15, "{without:?}");
}

#[test]
fn with_dp_ranks_a_request_may_go_unseen_for_the_length_biased_step() {
    // One rank: the client's next chunk ends the request's own rank's step.
    assert_eq!(unseen_step_s(1, Some(0.010), Some(0.150)), Some(0.010));
    // Two: that chunk may be the other rank's, while its own runs a 0.3 s prefill.
    assert_eq!(unseen_step_s(2, Some(0.010), Some(0.150)), Some(0.150));
    assert_eq!(unseen_step_s(2, Some(0.010), Some(0.008)), Some(0.010));
    assert_eq!(unseen_step_s(2, None, Some(0.150)), Some(0.150));
    assert_eq!(unseen_step_s(2, None, None), None);
}

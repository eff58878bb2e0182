//! The timing rules: each fires and stays silent; `step_time_disagreement` with each cause.

use super::super::fixture::{Step, T_FWD_S, num};
use super::super::timing::{
    ABOVE_ROOFLINE, CLIENT_LATENESS, IDENTITY_BROKEN, LITTLES_LAW_BROKEN, STEP_TIME_DISAGREEMENT,
};
use crate::finding::Severity;
use crate::step_time::LittlesLaw;

/// A client step time `client_s` (median and mean) against the engine's [`T_FWD_S`].
fn client_at(client_s: f64) -> Step {
    let mut step = Step::clean();
    step.timing.t_fwd_client_s = Some(client_s);
    step.timing.t_fwd_client_mean_s = Some(client_s);
    step.timing.client_engine_rel_diff = Some((client_s - T_FWD_S).abs() / T_FWD_S);
    step
}

#[test]
fn step_time_disagreement_blames_the_stream_when_the_client_is_slower() {
    let f = client_at(0.0224).one(&STEP_TIME_DISAGREEMENT);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "t_fwd_client_s"), num(&f, "t_fwd_engine_s")),
        (0.0224, T_FWD_S)
    );
    assert!((num(&f, "rel_diff") - 0.12).abs() < 1e-12);
    assert!(
        f.message
            == "client mean step time 22.40 ms vs engine 20.00 ms (12 % apart); the chunks leave the engine slower than it steps: a front-end that cannot keep up with this many streams (detokenization, SSE writes), stream batching (stream interval) or the network",
        "{}",
        f.message
    );
}

#[test]
fn step_time_disagreement_blames_the_counters_when_the_engine_is_slower() {
    let f = client_at(0.017).one(&STEP_TIME_DISAGREEMENT);
    assert!(
        f.message
            .ends_with("check the scrape interval and DP ranks (--dp)"),
        "{}",
        f.message
    );
    assert_eq!(num(&f, "t_fwd_client_s"), 0.017);
}

#[test]
fn step_time_disagreement_blames_a_late_client_first() {
    let mut step = client_at(0.0224);
    step.summary.client_lateness_p99_s = Some(0.0051);
    let f = step.one(&STEP_TIME_DISAGREEMENT);
    assert!(f.message.contains("the client woke late"), "{}", f.message);
    assert_eq!(num(&f, "client_lateness_p99_s"), 0.0051);
}

#[test]
fn step_time_disagreement_blames_preemptions_where_the_engine_recomputed() {
    // A vLLM closed loop of 8 on a small cache (grid seed 47): 5 preemptions, the engine's
    // mean step 8.96 ms against the client's 7.83 ms.
    let mut step = client_at(0.017);
    step.timing.engine.preemptions = Some(5.0);
    let f = step.one(&STEP_TIME_DISAGREEMENT);
    assert!(f.message.contains("preempted sequences"), "{}", f.message);
    assert_eq!(num(&f, "preemptions"), 5.0);
}

#[test]
fn step_time_disagreement_stays_silent_at_the_tolerance_or_without_an_engine_time() {
    let mut at = Step::clean();
    at.timing.client_engine_rel_diff = Some(0.05);
    at.silent(&STEP_TIME_DISAGREEMENT);
    let mut no_engine = client_at(0.03);
    no_engine.timing.t_fwd_engine_s = None;
    no_engine.silent(&STEP_TIME_DISAGREEMENT);
}

fn identity_off(rel_err: f64) -> Step {
    let mut step = Step::clean();
    step.timing.identity_rel_err = Some(rel_err);
    step.timing.throughput_window_tok_s = Some(368.0);
    step
}

#[test]
fn identity_broken_warns_beyond_the_tolerance() {
    let f = identity_off(0.08).one(&IDENTITY_BROKEN);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(num(&f, "rel_err"), 0.08);
    assert_eq!(
        (
            num(&f, "throughput_window_tok_s"),
            num(&f, "throughput_identity_tok_s")
        ),
        (368.0, 400.0)
    );
    assert!(
        f.message.contains("(368 tok/s)") && f.message.contains("(Assumed)"),
        "{}",
        f.message
    );
}

#[test]
fn identity_broken_stays_silent_at_the_tolerance() {
    identity_off(0.05).silent(&IDENTITY_BROKEN);
}

/// The engine's mean in flight against a client that had 8 in flight, 7 of them seen.
fn littles(engine: f64, rel_err: f64) -> Step {
    let mut step = Step::clean();
    step.timing.littles_law = Some(LittlesLaw {
        engine_in_flight_mean: engine,
        client_in_flight_mean: 8.0,
        client_seen_mean: 7.0,
        samples: 12,
        step_allowance: 0.0,
        qps: 1.5,
        e2e_mean_s: 5.2,
        rel_err,
    });
    step
}

#[test]
fn littles_law_broken_warns_beyond_the_tolerance() {
    let f = littles(5.0, 0.29).one(&LITTLES_LAW_BROKEN);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "engine_in_flight_mean"), num(&f, "rel_err")),
        (5.0, 0.29)
    );
    assert!(f.message.contains("QPS × E2E says 7.8"), "{}", f.message);
    assert!(f.message.contains("outside the engine"), "{}", f.message);
}

#[test]
fn littles_law_broken_stays_silent_at_the_tolerance_or_without_the_law() {
    littles(5.95, 0.15).silent(&LITTLES_LAW_BROKEN);
    let mut step = Step::clean();
    step.timing.littles_law = None;
    step.silent(&LITTLES_LAW_BROKEN);
}

fn roofline(t_min_s: f64) -> Step {
    let mut step = Step::clean();
    step.timing.roofline_t_min_s = Some(t_min_s);
    step
}

#[test]
fn above_roofline_is_an_error_beyond_the_margin() {
    let f = roofline(0.0215).one(&ABOVE_ROOFLINE);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!((num(&f, "t_fwd_s"), num(&f, "t_min_s")), (T_FWD_S, 0.0215));
}

#[test]
fn above_roofline_stays_silent_within_the_margin_or_without_a_step_time() {
    // 20 ms against a 21 ms minimum is within the 5 % margin (19.95 ms).
    roofline(0.021).silent(&ABOVE_ROOFLINE);
    let mut step = roofline(0.05);
    step.timing.t_fwd_s = None;
    step.silent(&ABOVE_ROOFLINE);
}

#[test]
fn client_lateness_warns_above_the_p99_limit() {
    let mut step = Step::clean();
    step.summary.client_lateness_p99_s = Some(0.0051);
    step.summary.client_lateness_max_s = Some(0.0123);
    let f = step.one(&CLIENT_LATENESS);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!((num(&f, "p99_s"), num(&f, "max_s")), (0.0051, 0.0123));
    assert!(
        f.message.contains("5.1 ms late at p99 (max 12.3 ms)"),
        "{}",
        f.message
    );
}

#[test]
fn client_lateness_stays_silent_at_the_p99_limit() {
    let mut step = Step::clean();
    step.summary.client_lateness_p99_s = Some(0.005);
    step.silent(&CLIENT_LATENESS);
}

#[test]
fn a_window_of_few_steps_cannot_resolve_the_tolerance() {
    // 12 % apart over a window of 10 steps (±1 step at each edge is ±20 %): silent; the same
    // over 100 steps fires.
    for rule in [&STEP_TIME_DISAGREEMENT, &IDENTITY_BROKEN] {
        let mut short = client_at(0.0224);
        short.timing.identity_rel_err = Some(0.12);
        short.timing.window_s = 10.0 * T_FWD_S;
        short.silent(rule);
        short.timing.window_s = 100.0 * T_FWD_S;
        assert_eq!(short.one(rule).severity, Severity::Warn);
    }
}

#[test]
fn uneven_gaps_place_the_windows_edges_to_the_gap_an_instant_falls_in() {
    // 12 % apart over 100 steps fires while the gaps are even; where long gaps interleave
    // (an edge falls in a gap of 10 steps on average) the window's ends are placed to ±20 %:
    // silent.
    for rule in [&STEP_TIME_DISAGREEMENT, &IDENTITY_BROKEN] {
        let mut step = client_at(0.0224);
        step.timing.identity_rel_err = Some(0.12);
        step.timing.window_s = 100.0 * T_FWD_S;
        step.timing.chunk_gap_at_edge_s = Some(T_FWD_S);
        assert_eq!(step.one(rule).severity, Severity::Warn);
        step.timing.chunk_gap_at_edge_s = Some(10.0 * T_FWD_S);
        step.silent(rule);
    }
}

#[test]
fn step_time_disagreement_allows_the_acceptance_noise_of_a_per_token_engine_figure() {
    // 12 % apart: within a 15 % acceptance noise, silent; beyond a 10 % one, fires.
    let mut step = client_at(0.0224);
    step.timing.acceptance_noise_rel = Some(0.15);
    step.silent(&STEP_TIME_DISAGREEMENT);
    step.timing.acceptance_noise_rel = Some(0.10);
    let f = step.one(&STEP_TIME_DISAGREEMENT);
    assert_eq!(num(&f, "acceptance_noise_rel"), 0.10);
}

#[test]
fn a_late_read_as_long_as_a_tenth_of_the_window_cannot_resolve_a_tenth() {
    // 12 % apart over 100 steps fires with the client on time; a single read 15 steps late
    // (its p99 still low) moves an edge by 15 % of the window: silent.
    for rule in [&STEP_TIME_DISAGREEMENT, &IDENTITY_BROKEN] {
        let mut step = client_at(0.0224);
        step.timing.identity_rel_err = Some(0.12);
        step.timing.window_s = 100.0 * T_FWD_S;
        assert_eq!(step.one(rule).severity, Severity::Warn);
        step.summary.client_lateness_max_s = Some(15.0 * T_FWD_S);
        step.silent(rule);
    }
}

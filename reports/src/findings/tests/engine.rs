//! The engine rules: each fires and stays silent; `engine_batch_mismatch` on each of its
//! readings, alone and together.

use super::super::engine::{
    CLIENT_BEHIND_ENGINE, ENGINE_BATCH_MISMATCH, ENGINE_QUEUEING, KV_NEAR_FULL, PREEMPTIONS,
    PREFIX_CACHE_WARM, TOKEN_COUNT_MISMATCH,
};
use super::super::fixture::{BS, Step, num};
use crate::finding::Severity;

fn running(min: Option<f64>, max: Option<f64>, busy: Option<f64>) -> Step {
    let mut step = Step::clean();
    let e = &mut step.timing.engine;
    (e.running_min, e.running_max, e.busy_slots_per_step) = (min, max, busy);
    step
}

#[test]
fn engine_batch_mismatch_is_an_error_when_the_gauge_ran_fewer_than_bs() {
    // Busy slots also below bs: the gauge's finding says it, once.
    let f = running(Some(5.0), Some(7.4), Some(6.0)).one(&ENGINE_BATCH_MISMATCH);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!((num(&f, "running_min"), num(&f, "running_max")), (5.0, 7.4));
    assert_eq!(num(&f, "batch_size"), f64::from(BS));
    assert!(
        f.message.starts_with("the engine ran at most 7 sequences"),
        "{}",
        f.message
    );
}

#[test]
fn engine_batch_mismatch_warns_when_the_gauge_ran_more_than_bs() {
    let f = running(Some(8.6), Some(11.0), None).one(&ENGINE_BATCH_MISMATCH);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "running_min"), num(&f, "running_max")),
        (8.6, 11.0)
    );
}

#[test]
fn engine_batch_mismatch_is_an_error_when_the_busy_slots_held_fewer_than_bs() {
    let f = running(None, None, Some(7.4)).one(&ENGINE_BATCH_MISMATCH);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(num(&f, "busy_slots_per_step"), 7.4);
    assert!(f.evidence["running_max"].is_null(), "{}", f.evidence);
    assert!(f.message.contains("(llama.cpp -np)"), "{}", f.message);
}

#[test]
fn engine_batch_mismatch_raises_one_finding_per_reading_that_ran_more_than_bs() {
    let got = running(Some(10.0), Some(12.0), Some(10.5)).raised(&ENGINE_BATCH_MISMATCH);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().all(|f| f.severity == Severity::Warn
        && f.code == "engine_batch_mismatch"
        && f.step_idx == Some(0)));
    assert_eq!(num(&got[0], "running_min"), 10.0, "the gauge's first");
    assert_eq!(num(&got[1], "busy_slots_per_step"), 10.5);
}

#[test]
fn engine_batch_mismatch_stays_silent_within_half_a_sequence_of_bs() {
    let bs = f64::from(BS);
    running(Some(bs - 0.4), Some(bs + 0.4), Some(bs + 0.4)).silent(&ENGINE_BATCH_MISMATCH);
    running(None, None, None).silent(&ENGINE_BATCH_MISMATCH);
}

#[test]
fn engine_queueing_warns_when_requests_waited_and_no_moment_had_the_whole_batch() {
    let mut step = Step::clean();
    step.timing.windows.clear();
    step.timing.engine.waiting_max = Some(1.0);
    step.timing.engine.waiting_max_step = Some(3.0);
    let f = step.one(&ENGINE_QUEUEING);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(num(&f, "waiting_max"), 1.0, "the window's first");
    assert_eq!(
        (num(&f, "waiting_max_window"), num(&f, "waiting_max_step")),
        (1.0, 3.0)
    );
    assert!(
        f.message.contains("no moment had the whole batch"),
        "{}",
        f.message
    );
}

#[test]
fn engine_queueing_warns_when_a_wave_waited_inside_its_decode_window() {
    let mut step = Step::clean();
    step.timing.engine.waiting_max = Some(2.0);
    let f = step.one(&ENGINE_QUEUEING);
    assert_eq!(f.severity, Severity::Warn);
    assert!(
        f.message.contains("inside the decode window"),
        "{}",
        f.message
    );
}

#[test]
fn waiting_for_a_prefill_chunk_before_the_window_is_info_with_the_prefill_steps() {
    // bs 96 × 256 prompt tokens in chunks of 8,192: three prefill steps, 63 waiting at most.
    let mut step = Step::clean();
    step.timing.engine.waiting_max = Some(0.0);
    step.timing.engine.waiting_max_step = Some(63.0);
    step.timing.prefill_steps_max = Some(3);
    let f = step.one(&ENGINE_QUEUEING);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(
        (num(&f, "waiting_max"), num(&f, "prefill_steps_max")),
        (63.0, 3.0)
    );
    assert!(
        f.message.contains("a wave's prefill took 3 engine steps"),
        "{}",
        f.message
    );
}

#[test]
fn a_closed_loop_request_waiting_for_the_next_step_is_info_while_the_engine_held_bs() {
    let mut step = Step::clean();
    step.summary.pattern = crate::recording::Pattern::ClosedLoop;
    step.timing.engine.waiting_max = Some(1.0);
    step.timing.engine.running_max = Some(f64::from(BS));
    assert_eq!(step.one(&ENGINE_QUEUEING).severity, Severity::Info);
    // Never all bs running, but the queue drained: requests passing through.
    step.timing.engine.running_max = Some(f64::from(BS) - 2.0);
    assert_eq!(step.one(&ENGINE_QUEUEING).severity, Severity::Info);
    // And a queue that never drained: the engine cannot hold them.
    step.timing.engine.waiting_min = Some(1.0);
    assert_eq!(step.one(&ENGINE_QUEUEING).severity, Severity::Warn);
}

#[test]
fn engine_queueing_stays_silent_when_nothing_waited() {
    let mut step = Step::clean();
    step.timing.engine.waiting_max = None;
    step.silent(&ENGINE_QUEUEING);
}

#[test]
fn busy_slots_per_decode_call_are_one_ranks_so_they_hold_bs_over_dp() {
    // Two ranks behind one llama.cpp exposition, bs 8 on DP 2: each decode call holds 4.
    let bs = f64::from(BS);
    let mut step = running(Some(bs), Some(bs), Some(bs / 2.0));
    step.timing.bs_per_rank = bs / 2.0;
    step.silent(&ENGINE_BATCH_MISMATCH);
    step.timing.engine.busy_slots_per_step = Some(bs / 2.0 - 1.0);
    let f = step.one(&ENGINE_BATCH_MISMATCH);
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains(" per DP rank;"), "{}", f.message);
}

#[test]
fn a_batch_that_does_not_divide_over_the_dp_ranks_is_no_mismatch() {
    // SGLang DP 2 at bs 1: one rank runs the sequence, the idle one still reports its last.
    let mut step = Step::clean();
    step.summary.batch_size = 1;
    step.timing.batch_size = 1;
    step.timing.bs_per_rank = 0.5;
    let e = &mut step.timing.engine;
    (e.running_min, e.running_max) = (Some(2.0), Some(2.0));
    step.silent(&ENGINE_BATCH_MISMATCH);
    // Three on a batch of one is other traffic.
    let e = &mut step.timing.engine;
    (e.running_min, e.running_max) = (Some(3.0), Some(3.0));
    assert_eq!(step.one(&ENGINE_BATCH_MISMATCH).severity, Severity::Warn);
}

#[test]
fn preemptions_are_an_error_naming_the_tokens_per_sequence() {
    let mut step = Step::clean();
    step.timing.engine.preemptions = Some(3.0);
    step.timing.engine.kv_usage_max_frac = Some(0.99);
    let f = step.one(&PREEMPTIONS);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        (num(&f, "preemptions"), num(&f, "kv_usage_max_frac")),
        (3.0, 0.99)
    );
    assert!(f.message.contains("bs 8 × 384 tokens"), "{}", f.message);
}

#[test]
fn preemptions_stay_silent_when_the_counter_did_not_rise_or_is_missing() {
    Step::clean().silent(&PREEMPTIONS);
    let mut step = Step::clean();
    step.timing.engine.preemptions = None;
    step.silent(&PREEMPTIONS);
}

fn hits(share: f64) -> Step {
    let mut step = Step::clean();
    let e = &mut step.timing.engine;
    e.prefix_cache_hits = e.prefix_cache_queries.map(|q| q * share);
    step
}

#[test]
fn prefix_cache_warm_warns_above_the_hit_share_on_a_cold_run() {
    let f = hits(0.06).one(&PREFIX_CACHE_WARM);
    assert_eq!(f.severity, Severity::Warn);
    assert!((num(&f, "hits") / num(&f, "queries") - 0.06).abs() < 1e-12);
    assert!(
        f.message.starts_with("6 % of prompt tokens"),
        "{}",
        f.message
    );
}

#[test]
fn prefix_cache_warm_stays_silent_at_the_hit_share_or_when_warm_was_asked() {
    hits(0.05).silent(&PREFIX_CACHE_WARM);
    let mut warm = hits(0.5);
    warm.warm_expected = true;
    warm.silent(&PREFIX_CACHE_WARM);
}

fn generated(tokens: Option<f64>) -> Step {
    let mut step = Step::clean();
    step.timing.engine.generation_tokens = tokens;
    step
}

#[test]
fn token_count_mismatch_warns_beyond_the_tolerance() {
    let f = generated(Some(4096.0 * 1.02)).one(&TOKEN_COUNT_MISMATCH);
    assert_eq!(f.severity, Severity::Warn);
    assert!((num(&f, "engine_generation_tokens") - 4177.92).abs() < 1e-9);
    assert_eq!(num(&f, "client_output_tokens"), 4096.0);
}

#[test]
fn token_count_mismatch_stays_silent_within_the_tolerance_or_without_client_tokens() {
    generated(Some(4096.0 + 40.0)).silent(&TOKEN_COUNT_MISMATCH);
    let mut step = generated(Some(4096.0 * 2.0));
    step.timing.engine.client_output_tokens = 0;
    step.silent(&TOKEN_COUNT_MISMATCH);
    generated(None).silent(&TOKEN_COUNT_MISMATCH);
}

#[test]
fn kv_near_full_warns_at_the_usage_share() {
    let mut step = Step::clean();
    step.timing.engine.kv_usage_max_frac = Some(0.95);
    let f = step.one(&KV_NEAR_FULL);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "kv_usage_max_frac"), num(&f, "kv_capacity_tokens")),
        (0.95, 100_000.0)
    );
}

#[test]
fn kv_near_full_stays_silent_below_the_usage_share() {
    let mut step = Step::clean();
    step.timing.engine.kv_usage_max_frac = Some(0.949);
    step.silent(&KV_NEAR_FULL);
}

#[test]
fn a_closed_loop_batch_short_of_bs_whose_queue_drained_is_the_loops_turnaround() {
    let mut step = running(Some(36.0), Some(7.0), Some(6.5));
    step.summary.pattern = crate::recording::Pattern::ClosedLoop;
    step.timing.engine.running_min = Some(5.0);
    step.timing.engine.waiting_max = Some(2.0);
    step.timing.engine.waiting_min = Some(0.0);
    step.silent(&ENGINE_BATCH_MISMATCH);
    // A queue that never drained while the engine ran fewer: the engine's limit.
    step.timing.engine.waiting_min = Some(1.0);
    assert_eq!(step.one(&ENGINE_BATCH_MISMATCH).severity, Severity::Error);
}

/// A closed loop that ran 2 to 6 of its 8 sequences, up to `waiting` queued, the queue
/// drained at some scrape in the window.
fn drained_loop(waiting: f64) -> Step {
    let mut step = running(Some(2.0), Some(6.0), None);
    step.summary.pattern = crate::recording::Pattern::ClosedLoop;
    step.timing.engine.waiting_max = Some(waiting);
    step.timing.engine.waiting_min = Some(0.0);
    step
}

#[test]
fn llamacpp_deferring_with_fewer_slots_busy_than_bs_is_its_slot_cap_even_in_a_turnaround() {
    // A closed loop whose window saw the queue drain (a late client's turnaround), but whose
    // llama.cpp deferred tasks at 6 busy slots earlier in the step.
    let mut step = drained_loop(1.0);
    step.silent(&ENGINE_BATCH_MISMATCH);
    step.timing.engine.slots_full_running = Some(6.0);
    let f = step.one(&ENGINE_BATCH_MISMATCH);
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("while 6 were busy"), "{}", f.message);
    assert!(f.message.contains("-np 8 or more"), "{}", f.message);
    // Slots at the batch (or more) are no cap, and neither are deferrals nobody saw.
    step.timing.engine.slots_full_running = Some(f64::from(BS));
    step.silent(&ENGINE_BATCH_MISMATCH);
    step.timing.engine.slots_full_running = None;
    step.silent(&ENGINE_BATCH_MISMATCH);
}

#[test]
fn a_closed_loops_drained_queue_is_info_that_does_not_claim_the_whole_batch() {
    let f = drained_loop(3.0).one(&ENGINE_QUEUEING);
    assert_eq!(f.severity, Severity::Info);
    assert!(f.message.contains("drained"), "{}", f.message);
    assert!(!f.message.contains("whole batch"), "{}", f.message);
}

/// A wave whose engine ran and queued nothing at every scrape in the window, the client late.
fn behind() -> Step {
    let mut step = running(Some(0.0), Some(0.0), None);
    step.timing.engine.waiting_max = Some(0.0);
    step.timing.engine.waiting_min = Some(0.0);
    step.timing.engine.samples = 9;
    step.summary.client_lateness_p99_s = Some(0.633);
    step
}

#[test]
fn an_idle_engine_under_a_late_client_is_the_clients_backlog_not_the_engines_batch() {
    let step = behind();
    let f = step.one(&CLIENT_BEHIND_ENGINE);
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("all 9 scrapes"), "{}", f.message);
    assert!(f.message.contains("633 ms late"), "{}", f.message);
    // The gauge's 0 against bs is not the engine's cap: no advice to raise --max-num-seqs.
    step.silent(&ENGINE_BATCH_MISMATCH);
}

#[test]
fn client_behind_engine_stays_silent_on_a_punctual_client_a_busy_engine_or_one_scrape() {
    // A punctual client with an idle engine: the batch finding speaks, not this one.
    let mut punctual = behind();
    punctual.summary.client_lateness_p99_s = Some(0.001);
    punctual.silent(&CLIENT_BEHIND_ENGINE);
    assert_eq!(
        punctual.one(&ENGINE_BATCH_MISMATCH).severity,
        Severity::Error
    );
    let mut busy = behind();
    busy.timing.engine.running_max = Some(f64::from(BS));
    busy.silent(&CLIENT_BEHIND_ENGINE);
    let mut queued = behind();
    queued.timing.engine.waiting_max = Some(3.0);
    queued.silent(&CLIENT_BEHIND_ENGINE);
    let mut one_scrape = behind();
    one_scrape.timing.engine.samples = 1;
    one_scrape.silent(&CLIENT_BEHIND_ENGINE);
    let mut no_window = behind();
    no_window.timing.windows.clear();
    no_window.silent(&CLIENT_BEHIND_ENGINE);
}

//! Each engine's counting rule on hand-made scrapes whose step time (10 ms) and MTP are known.

use std::collections::BTreeMap;

use ceiling_collectors::engines::{Flavor, RankSignals, Signals, SumCount};

use super::*;
use crate::step_time::WaveRequests;

const T: f64 = 0.010;

fn step() -> StepRecord {
    StepRecord {
        rate_rps: None,
        burstiness: None,
        idx: 0,
        batch_size: 8,
        input_len: 16,
        output_len: 256,
        pattern: Pattern::Wave,
        start_t_s: 0.0,
        end_t_s: Some(10.0),
    }
}

fn window() -> Vec<Window> {
    vec![Window {
        start_t_s: 1.0,
        end_t_s: 3.0,
        wave: Some(0),
    }]
}

fn sample(t_s: f64, signals: Signals) -> EngineSample {
    EngineSample {
        t_s,
        signals,
        boundary: false,
    }
}

fn counters(samples: &[EngineSample]) -> EngineCounters {
    EngineCounters::over(samples, &window(), &step(), &StepRequests::default())
}

/// SGLang at t seconds into a window where 8 sequences decode 2.5 tokens per 10 ms pass: the
/// inter-token histogram adds each pass's interval once per sequence and its tokens to `_count`.
fn sglang(t: f64) -> Signals {
    let passes = t / T;
    Signals {
        steps_total: Some(passes),
        live_generation_tokens_total: Some(passes * 8.0 * 2.5),
        itl_s: Some(SumCount {
            sum: passes * 8.0 * T,
            count: passes * 8.0 * 2.5,
        }),
        itl_per_token: true,
        ..Signals::default()
    }
}

#[test]
fn sglang_inter_token_mean_is_the_step_over_the_accept_length() {
    let s = [sample(1.5, sglang(1.5)), sample(2.5, sglang(2.5))];
    let c = counters(&s);
    let (mtp, source) = c.mtp(None, 8.0, 1.0);
    assert_eq!(source, MtpSource::EngineTokensPerStep);
    assert!((mtp - 2.5).abs() < 1e-9, "{mtp}");
    let st = c.step_time(&step(), &StepRequests::default(), &s, 1.0, mtp);
    assert!((st.itl_s.unwrap() - T).abs() < 1e-12, "{:?}", st.itl_s);
    assert!((st.steps_s.unwrap() - T).abs() < 1e-12);
}

#[test]
fn a_wave_whose_requests_failed_reads_no_mtp_from_tokens_per_step() {
    // 3 of the wave's 8 failed: 5 sequences decode one token per pass, and tokens per pass
    // over bs would read MTP 0.625 (the step time 5/8 of the truth).
    let five = |t: f64| {
        let passes = t / T;
        Signals {
            steps_total: Some(passes),
            live_generation_tokens_total: Some(passes * 5.0),
            itl_s: Some(SumCount {
                sum: passes * 5.0 * T,
                count: passes * 5.0,
            }),
            itl_per_token: true,
            ..Signals::default()
        }
    };
    let s = [sample(1.5, five(1.5)), sample(2.5, five(2.5))];
    let wave = |ok_n| StepRequests {
        ok_n,
        waves: vec![WaveRequests::default()],
        ..StepRequests::default()
    };
    let failed = counters(&s).without_uneven_tokens_per_step(&step(), 1, &wave(5));
    let (mtp, source) = failed.mtp(Some(1.0), 8.0, 1.0);
    assert_eq!((mtp, source), (1.0, MtpSource::ClientTokensPerChunk));
    let st = failed.step_time(&step(), &StepRequests::default(), &s, 1.0, mtp);
    assert!((st.itl_s.unwrap() - T).abs() < 1e-12, "{:?}", st.itl_s);
    // Every request of the wave ok: the engine's own tokens per step (here 5/8: the rule
    // trusts a full wave's batch).
    let (mtp, source) = counters(&s)
        .without_uneven_tokens_per_step(&step(), 1, &wave(8))
        .mtp(Some(1.0), 8.0, 1.0);
    assert_eq!(source, MtpSource::EngineTokensPerStep);
    assert!((mtp - 0.625).abs() < 1e-9, "{mtp}");
}

#[test]
fn sglang_falls_back_to_its_accept_length_gauge_without_two_scrapes_in_a_window() {
    let gauge = |t: f64, a: f64| Signals {
        spec_accept_length: Some(a),
        ..sglang(t)
    };
    // One scrape in the window, two around it: no window delta.
    let s = [
        sample(0.5, gauge(0.5, 2.4)),
        sample(2.0, gauge(2.0, 2.6)),
        sample(9.0, gauge(9.0, 2.5)),
    ];
    let (mtp, source) = counters(&s).mtp(None, 8.0, 1.0);
    assert_eq!(source, MtpSource::SpecAcceptLengthGauge);
    assert!((mtp - 2.5).abs() < 1e-9);
}

/// llama.cpp: spec counters that move only when a slot is released.
fn llamacpp(t: f64, drafts: f64, accepted: f64) -> Signals {
    Signals {
        steps_total: Some(t / T),
        spec_drafts_total: Some(drafts),
        spec_draft_tokens_total: Some(drafts * 3.0),
        spec_accepted_tokens_total: Some(accepted),
        spec_at_request_end: true,
        ..Signals::default()
    }
}

#[test]
fn llamacpp_spec_counters_from_the_whole_step_when_no_slot_is_released_in_the_window() {
    // Before the step 10 drafts (accept 2.0); inside the window one request ends at its edge
    // (20 drafts, accept 3.0: one request is no sample); after the wave 800 drafts with 1200
    // accepted in all (accept 2.5).
    let s = [
        sample(0.0, llamacpp(0.0, 10.0, 10.0)),
        sample(1.5, llamacpp(1.5, 10.0, 10.0)),
        sample(2.5, llamacpp(2.5, 30.0, 50.0)),
        sample(10.0, llamacpp(10.0, 810.0, 1210.0)),
    ];
    let (mtp, source) = counters(&s).mtp(None, 8.0, 1.0);
    assert_eq!(source, MtpSource::SpecDecodeCounters);
    assert!((mtp - 2.5).abs() < 1e-9, "{mtp}");
    // Without a draft model the counters never move: one token per step.
    let s = [
        sample(0.0, llamacpp(0.0, 0.0, 0.0)),
        sample(1.5, llamacpp(1.5, 0.0, 0.0)),
        sample(2.5, llamacpp(2.5, 0.0, 0.0)),
        sample(10.0, llamacpp(10.0, 0.0, 0.0)),
    ];
    assert_eq!(
        counters(&s).mtp(Some(1.4), 8.0, 1.0),
        (1.0, MtpSource::SpecDecodeCounters)
    );
}

#[test]
fn llamacpp_step_counter_past_a_million_needs_enough_steps_for_its_six_digits() {
    // 1.23457e+06 prints in steps of 10: 100 steps in the window is 10 quanta, too few.
    let at = |n: f64| Signals {
        steps_total: Some(n),
        ..Signals::default()
    };
    let s = [sample(1.5, at(1_234_570.0)), sample(2.5, at(1_234_670.0))];
    let st = counters(&s).step_time(&step(), &StepRequests::default(), &s, 1.0, 1.0);
    assert!(st.steps_too_coarse);
    assert_eq!(st.steps_s, None);
    // Below 10⁶ every step prints: 100 steps are enough.
    let s = [sample(1.5, at(1000.0)), sample(2.5, at(1100.0))];
    let st = counters(&s).step_time(&step(), &StepRequests::default(), &s, 1.0, 1.0);
    assert!(!st.steps_too_coarse);
    assert!((st.steps_s.unwrap() - T).abs() < 1e-12);
}

/// vLLM DP 2 with one API server per rank, rank 1 idle: `iteration_tokens_total` counts each
/// step twice (two front-ends) on rank 0; the inter-token count is one per sequence per step.
fn vllm_dp2(t: f64) -> Signals {
    let steps = t / T;
    let rank0 = RankSignals {
        running: Some(8.0),
        steps_total: Some(2.0 * steps),
        itl_s: Some(SumCount {
            sum: steps * 8.0 * T,
            count: steps * 8.0,
        }),
        live_generation_tokens_total: Some(steps * 8.0 * 2.0),
        ..RankSignals::default()
    };
    let rank1 = RankSignals {
        running: Some(0.0),
        steps_total: Some(0.0),
        itl_s: Some(SumCount::default()),
        live_generation_tokens_total: Some(0.0),
        ..RankSignals::default()
    };
    Signals {
        dp_ranks: 2,
        steps_total: Some(2.0 * steps),
        live_generation_tokens_total: Some(steps * 8.0 * 2.0),
        itl_s: rank0.itl_s,
        ranks: BTreeMap::from([("0".to_string(), rank0), ("1".to_string(), rank1)]),
        ..Signals::default()
    }
}

#[test]
fn vllm_dp_counts_steps_per_rank_from_the_inter_token_histogram_not_per_front_end() {
    let s = [sample(1.5, vllm_dp2(1.5)), sample(2.5, vllm_dp2(2.5))];
    let c = counters(&s);
    let (mtp, source) = c.mtp(None, 4.0, 2.0);
    assert_eq!(source, MtpSource::EngineTokensPerStep);
    assert!((mtp - 2.0).abs() < 1e-9, "{mtp}");
    let st = c.step_time(&step(), &StepRequests::default(), &s, 2.0, mtp);
    // DP·Δt/ΣΔsteps would read 2 × 10 ms / 2 = 10 ms only by luck of the double count; the
    // busiest rank's own steps give 10 ms whatever the front-ends.
    assert!((st.steps_s.unwrap() - T).abs() < 1e-12, "{:?}", st.steps_s);
    assert!((st.itl_s.unwrap() - T).abs() < 1e-12);
    let ranks = c.rank_windows(&s.iter().collect::<Vec<_>>());
    assert_eq!(ranks.len(), 2);
    assert_eq!(ranks[1].running_max, Some(0.0));
    assert!((ranks[0].steps_per_s.unwrap() - 100.0).abs() < 1e-9);
}

#[test]
fn llamacpp_closed_loop_step_time_from_its_slot_counters_leaves_out_idle_and_prompt_steps() {
    // bs 1 closed loop: each request 16 tokens, 15 gaps of 10 ms after its prompt step, then
    // the engine idles 20 ms until the next request. Δt / Δn_decode reads (16 × 10 + 20) / 16
    // = 11.25 ms; the slots' own generation time 150 ms per 16 tokens, one gap fewer.
    let cycle = 0.180;
    let at = |t: f64, finished: f64| Signals {
        steps_total: Some(t / cycle * 16.0),
        generation_seconds_total: Some(finished * 15.0 * T),
        generation_tokens_total: Some(finished * 16.0),
        ..Signals::default()
    };
    let step = StepRecord {
        pattern: Pattern::ClosedLoop,
        batch_size: 1,
        ..step()
    };
    let w = [Window {
        start_t_s: 1.0,
        end_t_s: 3.0,
        wave: None,
    }];
    // Requests done at 0.18 s, 0.36 s, ...: 6 before the first scrape (1.1 s), 16 before the
    // last (2.9 s).
    let done_ts: Vec<f64> = (1..=20).map(|k| f64::from(k) * cycle).collect();
    let requests = StepRequests {
        done_ts,
        ..StepRequests::default()
    };
    let s = [sample(1.1, at(1.1, 6.0)), sample(2.9, at(2.9, 16.0))];
    let c = EngineCounters::over(&s, &w, &step, &requests);
    let st = c.step_time(&step, &requests, &s, 1.0, 1.0);
    assert!(
        (st.steps_s.unwrap() - 0.01125).abs() < 1e-9,
        "{:?}",
        st.steps_s
    );
    assert!((st.itl_s.unwrap() - T).abs() < 1e-12, "{:?}", st.itl_s);
    // With speculative decoding the slot time is per token: × MTP for the step.
    let st = c.step_time(&step, &requests, &s, 1.0, 2.0);
    assert!((st.itl_s.unwrap() - 2.0 * T).abs() < 1e-12);
    // Two requests finished between the scrapes are too few to read; and llama.cpp's decode
    // calls, which hold the prompts' calls and the idle turnaround, give no step time either
    // (a loop of one at 1,024/64 read 14 % over the client): the view says why instead.
    let llamacpp = |t: f64, finished: f64| Signals {
        flavor: Some(Flavor::Llamacpp),
        ..at(t, finished)
    };
    // (1.8 s between the scrapes: 160 calls, enough of them to read; two requests ended.)
    let two = StepRequests {
        done_ts: vec![0.5, 1.5, 2.5],
        ..StepRequests::default()
    };
    let s = [
        sample(1.1, llamacpp(1.1, 6.0)),
        sample(2.9, llamacpp(2.9, 8.0)),
    ];
    let c = EngineCounters::over(&s, &w, &step, &two);
    let st = c.step_time(&step, &two, &s, 1.0, 1.0);
    assert_eq!((st.itl_s, st.steps_s), (None, None));
    assert!(st.prompt_calls_in_loop);
    // A wave's calls are its decode steps: kept.
    let wave = StepRecord {
        pattern: Pattern::Wave,
        ..step.clone()
    };
    let st = c.step_time(&wave, &two, &s, 1.0, 1.0);
    assert!(st.steps_s.is_some() && !st.prompt_calls_in_loop);
}

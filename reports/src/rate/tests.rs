//! The rate step's figures from a hand-built open-loop recording (a schedule every 0.1 s, the
//! client 5 ms late on each send, one failure), and the macro ceiling over rate steps.

use super::*;
use crate::recording::{ChunkArrival, ChunkKind, Outcome, RequestRecord, RunInfo, StepRecord};
use crate::synthetic::request_at;

/// A request due at `due`, sent 5 ms late, with 4 chunks 10 ms apart after a 50 ms TTFT.
fn scheduled(due: f64, ok: bool) -> RequestRecord {
    let sent = due + 0.005;
    let chunks: Vec<ChunkArrival> = (0..4)
        .map(|i| ChunkArrival {
            t_s: sent + 0.05 + 0.01 * f64::from(i),
            tokens: Some(1),
            kind: ChunkKind::Answer,
        })
        .collect();
    RequestRecord {
        scheduled_t_s: Some(due),
        first_token_t_s: Some(sent + 0.05),
        first_answer_t_s: Some(sent + 0.05),
        done_t_s: Some(sent + 0.08),
        prompt_tokens_requested: 32,
        completion_tokens_requested: 4,
        prompt_tokens_reported: Some(32),
        completion_tokens_reported: Some(4),
        outcome: if ok { Outcome::Ok } else { Outcome::HttpError },
        chunks: if ok { chunks } else { Vec::new() },
        ..request_at(sent)
    }
}

fn rate_record() -> Recording {
    let step = StepRecord {
        idx: 0,
        batch_size: 0,
        input_len: 32,
        output_len: 4,
        pattern: Pattern::Rate,
        start_t_s: 0.0,
        end_t_s: Some(12.0),
        rate_rps: Some(10.0),
        burstiness: Some(1.0),
    };
    let requests: Vec<RequestRecord> = (0..100)
        .map(|i| scheduled(f64::from(i) * 0.1, i != 50))
        .collect();
    Recording::from_records(
        RunInfo::default(),
        &[step],
        &requests,
        &[],
        Vec::new(),
        Vec::new(),
    )
    .unwrap()
}

#[test]
fn a_rate_step_reads_its_schedule_lateness_and_latencies() {
    let rec = rate_record();
    let figures = crate::frames::request_figures(&rec).unwrap();
    let summaries = crate::summarize_steps(&rec).unwrap();
    let r = rate_steps(&rec, &figures, &summaries, &MacroSla::default()).unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!((r.requests, r.requests_failed), (100, 1));
    assert_eq!(r.error_rate, Some(0.01));
    assert_eq!(r.rate_asked_rps, Some(10.0));
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
    assert!(
        close(r.rate_scheduled_rps, 10.0),
        "{:?}",
        r.rate_scheduled_rps
    );
    assert!(
        close(r.rate_achieved_rps, 10.0),
        "{:?}",
        r.rate_achieved_rps
    );
    let late = r.send_lateness_s.unwrap();
    assert!((late.p50 - 0.005).abs() < 1e-9 && (late.max - 0.005).abs() < 1e-9);
    assert!(close(r.ttft_s.map(|d| d.p99), 0.05));
    assert!(close(r.tpot_s.map(|d| d.mean), 0.01));
    assert!(close(r.output_len_mean, 4.0));
    assert_eq!(r.max_concurrency, None);
    assert_eq!(r.engine_running_mean, None, "no scrape: unknown, not 0");
    assert_eq!(r.goodput_rps, None, "no latency SLA: no goodput");
    // Under a TTFT limit the 99 requests meet (50 ms ≤ 60 ms) the goodput is the completed
    // rate; under one they all miss, 0.
    let span = summaries[0].span_s.unwrap();
    let at = |ttft: f64| {
        let sla = MacroSla {
            ttft_p99_s: Some(ttft),
            tpot_p99_s: Some(0.05),
        };
        rate_steps(&rec, &figures, &summaries, &sla).unwrap()[0].goodput_rps
    };
    assert!((at(0.06).unwrap() - 99.0 / span).abs() < 1e-9);
    assert_eq!(at(0.04), Some(0.0));
}

#[test]
fn fixed_batch_runs_have_no_rate_steps() {
    let run = crate::synthetic::wave_recording(&[crate::synthetic::WaveSpec::default()]);
    let rec = run.recording();
    let figures = crate::frames::request_figures(&rec).unwrap();
    let summaries = crate::summarize_steps(&rec).unwrap();
    assert!(
        rate_steps(&rec, &figures, &summaries, &MacroSla::default())
            .unwrap()
            .is_empty()
    );
}

fn step(idx: u32, rate: f64, ttft_p99: f64, tpot_p99: f64, failed: u32) -> RateStep {
    let d = |p99: f64| crate::metrics::Distribution {
        n: 100,
        mean: p99 / 2.0,
        p50: p99 / 2.0,
        p90: p99 / 1.5,
        p95: p99 / 1.2,
        p99,
        max: p99,
        std: p99 / 4.0,
    };
    RateStep {
        step_idx: idx,
        rate_asked_rps: Some(rate),
        burstiness: Some(1.0),
        max_concurrency: None,
        requests: 100,
        requests_failed: failed,
        error_rate: Some(f64::from(failed) / 100.0),
        rate_scheduled_rps: Some(rate),
        rate_achieved_rps: Some(rate),
        completed_rps: Some(rate),
        output_tokens_per_s: Some(rate * 100.0),
        goodput_rps: None,
        output_len_mean: Some(100.0),
        input_len_mean: Some(500.0),
        send_lateness_s: None,
        ttft_s: Some(d(ttft_p99)),
        tpot_s: Some(d(tpot_p99)),
        itl_s: None,
        e2e_s: None,
        engine_running_mean: Some(rate * 2.0),
        engine_running_max: None,
        engine_waiting_mean: None,
        engine_waiting_max: None,
        client_lateness_p99_s: None,
    }
}

#[test]
fn the_macro_ceiling_is_the_highest_rate_meeting_the_sla() {
    let sla = MacroSla {
        ttft_p99_s: Some(2.0),
        tpot_p99_s: Some(0.05),
    };
    let steps = [
        step(1, 4.0, 0.3, 0.02, 0),
        step(2, 8.0, 0.6, 0.03, 0),
        step(3, 12.0, 1.5, 0.049, 4),
        step(4, 16.0, 2.5, 0.045, 0),
        step(5, 20.0, 0.9, 0.07, 0),
    ];
    let m = macro_ceiling(&steps, sla, None, None).unwrap();
    assert_eq!((m.step_idx, m.rate_achieved_rps), (3, Some(12.0)));
    assert_eq!(m.first_miss_step_idx, Some(4));
    assert_eq!(
        m.first_miss_reason.as_deref(),
        Some("p99 TTFT 2500 ms > 2000 ms")
    );
    // TTFT binds at the miss (2.5 s over 2 s, where TPOT is under): from 1.5 s at 12 req/s to
    // 2.5 s at 16, it crosses 2 s halfway.
    assert_eq!(m.binding.as_deref(), Some("p99 TTFT"));
    assert_eq!(m.rate_interpolated_rps, Some(14.0));
    assert_eq!(
        sla.miss(&steps[4]).as_deref(),
        Some("p99 TPOT 70.0 ms > 50.0 ms")
    );
    // 5 % failed fails whatever the latency.
    let failing = step(6, 1.0, 0.1, 0.01, 5);
    assert_eq!(
        sla.miss(&failing).as_deref(),
        Some("5.0 % of requests failed")
    );
    // Nothing meets it: no ceiling.
    assert_eq!(macro_ceiling(&steps[3..], sla, None, None), None);
}

#[test]
fn the_ceiling_is_interpolated_on_the_criterion_furthest_over_its_limit() {
    let sla = MacroSla {
        ttft_p99_s: Some(2.0),
        tpot_p99_s: Some(0.05),
    };
    // TPOT 40 → 70 ms (1.4 × its limit) beats TTFT 1 → 2.2 s (1.1 ×): a quarter of 8 → 12.
    let steps = [step(1, 8.0, 1.0, 0.04, 0), step(2, 12.0, 2.2, 0.08, 0)];
    let m = macro_ceiling(&steps, sla, None, None).unwrap();
    assert_eq!(m.binding.as_deref(), Some("p99 TPOT"));
    assert!((m.rate_interpolated_rps.unwrap() - 9.0).abs() < 1e-9);
    // Errors bind: 0 → 10 % crosses 5 % halfway.
    let steps = [step(1, 8.0, 1.0, 0.04, 0), step(2, 12.0, 1.0, 0.04, 10)];
    let m = macro_ceiling(&steps, sla, None, None).unwrap();
    assert_eq!(m.binding.as_deref(), Some("errors"));
    assert_eq!(m.rate_interpolated_rps, Some(10.0));
    // Every rate met it: nothing above to interpolate towards.
    let m = macro_ceiling(&steps[..1], sla, None, None).unwrap();
    assert_eq!((m.rate_interpolated_rps, m.binding), (None, None));
}

#[test]
fn beside_the_micro_ceiling_the_gap_splits_into_batch_and_speed() {
    let micro = crate::findings::fixture::ceiling(64, 64.0);
    let points: Vec<crate::fit::FitPoint> = [8.0, 16.0, 32.0, 64.0]
        .iter()
        .enumerate()
        .map(|(i, &bs)| crate::fit::FitPoint {
            step_idx: i as u32,
            bs,
            context_tokens: 550.0,
            t_fwd_s: 0.01 + 0.0001 * bs,
        })
        .collect();
    let fit = crate::fit::fit_step_time(&points).unwrap();
    let mut s = step(1, 8.0, 0.5, 0.03, 0);
    s.engine_running_mean = Some(32.0);
    if let Some(t) = &mut s.tpot_s {
        t.mean = 0.0165;
    }
    let m = macro_ceiling(&[s], MacroSla::default(), Some(&micro), Some(&fit)).unwrap();
    let g = m.gap.unwrap();
    assert_eq!(g.batch_share, Some(0.5));
    // A decode step at 32 sequences: 10 ms + 3.2 ms; the tokens took 16.5 ms.
    assert!((g.t_fwd_at_running_s.unwrap() - 0.0132).abs() < 1e-12);
    assert!((g.decode_share.unwrap() - 0.8).abs() < 1e-9);
    assert!((g.identity_tok_s.unwrap() - 32.0 / 0.0165).abs() < 1e-6);
    assert_eq!(g.explanation.len(), 3, "{:?}", g.explanation);
    assert!(
        g.explanation[0].contains("50 % of its batch"),
        "{}",
        g.explanation[0]
    );
    assert!(
        g.explanation[1].contains("20 % of the time went to prefill"),
        "{}",
        g.explanation[1]
    );
    // p99 30 ms against a mean of 16.5 ms.
    assert!(
        g.explanation[2].contains("the tail is 82 % above the mean"),
        "{}",
        g.explanation[2]
    );
}

#[test]
fn a_rate_step_exports_in_the_shape_of_vllm_bench_serve() {
    let rec = rate_record();
    let a = crate::analyze(&rec, &crate::AnalysisOptions::default()).unwrap();
    let docs =
        crate::report::vllm_json::vllm_results(&a, &rec, Some("m"), "20261202-101500").unwrap();
    assert_eq!(docs.len(), 1);
    let (idx, d) = &docs[0];
    assert_eq!(*idx, 0);
    let n = |k: &str| d[k].as_f64().unwrap_or_else(|| panic!("{k}: {}", d[k]));
    assert_eq!(
        (n("completed"), n("failed"), n("num_prompts")),
        (99.0, 1.0, 100.0)
    );
    assert_eq!(n("request_rate"), 10.0);
    assert_eq!(
        (n("total_input_tokens"), n("total_output_tokens")),
        (99.0 * 32.0, 99.0 * 4.0)
    );
    for (k, v) in [
        ("mean_ttft_ms", 50.0),
        ("p99_ttft_ms", 50.0),
        ("median_tpot_ms", 10.0),
        ("mean_itl_ms", 10.0),
        ("mean_e2el_ms", 80.0),
        ("std_tpot_ms", 0.0),
    ] {
        assert!((n(k) - v).abs() < 1e-6, "{k} {}", n(k));
    }
    assert!((n("output_throughput") * n("duration") - 396.0).abs() < 1e-6);
    assert_eq!(d["date"], "20261202-101500");
    // The keys a reader of vLLM 0.25's result expects.
    for k in [
        "backend",
        "model_id",
        "burstiness",
        "max_concurrency",
        "request_throughput",
        "total_token_throughput",
        "median_ttft_ms",
        "std_itl_ms",
        "p99_itl_ms",
    ] {
        assert!(d.get(k).is_some(), "{k}");
    }
}

//! The analysis end to end on synthetic recordings with a known truth: step times, fit,
//! ceiling under each constraint, and every finding on a recording crafted to raise it.

use super::*;
use crate::finding::Severity;
use crate::roofline::llama_8b_with_t_min;
use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};
use crate::terminal::render_terminal;

const A: f64 = 0.008;
const B: f64 = 0.0002;
const IN: u32 = 128;
const OUT: u32 = 101;

fn sweep(bss: &[u32]) -> SyntheticRun {
    let specs: Vec<WaveSpec> = bss
        .iter()
        .map(|&bs| WaveSpec {
            batch_size: bs,
            input_len: IN,
            output_len: OUT,
            waves: 2,
            step_time_s: A + B * f64::from(bs),
            ..WaveSpec::default()
        })
        .collect();
    wave_recording(&specs)
}

fn data(rec: &SyntheticRun) -> Recording {
    rec.recording_with(crate::recording::RunInfo {
        run_id: Some(1),
        engine_kind: Some("vllm".into()),
        model: Some("m".into()),
        dp: None,
    })
}

fn run(rec: &SyntheticRun, opts: &AnalysisOptions) -> Analysis {
    analyze(&data(rec), opts).unwrap()
}

fn codes(a: &Analysis) -> Vec<&str> {
    a.findings.iter().map(|f| f.code.as_str()).collect()
}

fn warn_or_worse(a: &Analysis) -> Vec<&Finding> {
    a.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warn)
        .collect()
}

const BSS: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

#[test]
fn a_clean_sweep_recovers_step_times_fit_and_ceiling() {
    let rec = sweep(&BSS);
    let a = run(&rec, &AnalysisOptions::default());
    for t in &a.timings {
        let truth = A + B * t.bs_per_rank;
        for (what, v) in [
            ("client", t.t_fwd_client_s),
            ("identity", t.t_fwd_identity_s),
            ("engine", t.t_fwd_engine_s),
            ("engine steps", t.t_fwd_engine_steps_s),
        ] {
            let v = v.unwrap_or_else(|| panic!("{what} missing at bs {}", t.batch_size));
            assert!((v - truth).abs() / truth < 0.02, "{what} {v} vs {truth}");
        }
    }
    let f = a.fit.as_ref().unwrap();
    assert!((f.a_s - A).abs() / A < 0.05, "{f:?}");
    assert!((f.b_s_per_seq - B).abs() / B < 0.05, "{f:?}");
    // SLA 20 tok/s: t_fwd ≤ 50 ms → bs ≤ (0.05 − 0.008) / 0.0002 = 210.
    let c = a.headline().unwrap();
    assert_eq!(c.limited_by, "sla");
    assert!((i64::from(c.bs_per_rank) - 210).abs() <= 1, "{c:?}");
    assert!((c.throughput_tok_s - 4200.0).abs() / 4200.0 < 0.05, "{c:?}");
    assert!(c.extrapolated && !c.measured);
    let [lo, hi] = c.throughput_ci95_tok_s.unwrap();
    assert!(lo <= c.throughput_tok_s && c.throughput_tok_s <= hi);
    assert!(c.qps_max.unwrap() > 0.0);
    assert!(warn_or_worse(&a).is_empty(), "{:#?}", a.findings);
    // Most synthetic waves' windows are under 2 s: no GPU means there, said per step.
    let (short, rest): (Vec<&str>, Vec<&str>) = codes(&a)
        .into_iter()
        .partition(|c| *c == "gpu_window_too_short");
    assert!(!short.is_empty());
    assert_eq!(rest, ["ceiling_extrapolated"]);
    let text = render_terminal(&a);
    assert!(text.contains("ceiling 128/101"), "{text}");
    assert!(text.contains("EXTRAPOLATED"), "{text}");
    serde_json::to_value(&a).unwrap();
}

#[test]
fn the_ceiling_respects_a_kv_cap_and_a_tpot_sla() {
    let rec = sweep(&BSS);
    let opts = AnalysisOptions {
        kv_capacity_tokens: Some(f64::from(40 * (IN + OUT))),
        ..AnalysisOptions::default()
    };
    let c = run(&rec, &opts).headline().cloned().unwrap();
    assert_eq!((c.bs_per_rank, c.limited_by.as_str()), (40, "kv_capacity"));
    assert!(!c.extrapolated);
    assert!(
        (c.throughput_tok_s - 40.0 / (A + 40.0 * B)).abs() < 1.0,
        "{c:?}"
    );

    let opts = AnalysisOptions {
        sla_tpot_s: Some(0.012),
        ..AnalysisOptions::default()
    };
    let c = run(&rec, &opts).headline().cloned().unwrap();
    assert_eq!((c.bs_per_rank, c.limited_by.as_str()), (20, "sla"));

    let opts = AnalysisOptions {
        max_num_seqs: Some(32),
        ..AnalysisOptions::default()
    };
    let c = run(&rec, &opts).headline().cloned().unwrap();
    assert_eq!((c.bs_per_rank, c.limited_by.as_str()), (32, "max_num_seqs"));
    assert!(c.measured, "bs 32 was measured: its own step time is used");
}

fn raises(rec: &SyntheticRun, opts: &AnalysisOptions, code: &str) {
    let a = run(rec, opts);
    assert!(
        a.findings
            .iter()
            .any(|f| f.code == code && f.step_idx.is_some()),
        "{code} not raised: {:#?}",
        a.findings
    );
    let f = a.findings.iter().find(|f| f.code == code).unwrap();
    assert!(!f.message.is_empty() && f.evidence.is_object(), "{f:?}");
}

fn one() -> SyntheticRun {
    sweep(&[8])
}

fn engine_edit(rec: &mut SyntheticRun, f: impl Fn(&mut ceiling_collectors::Signals, f64)) {
    for s in &mut rec.engine {
        f(&mut s.signals, s.t_s);
    }
}

#[test]
fn request_failures_and_length_mismatch_are_found() {
    let mut rec = one();
    let i = rec.requests.iter().position(|r| !r.warmup).unwrap();
    rec.requests[i].outcome = crate::Outcome::Timeout;
    raises(&rec, &AnalysisOptions::default(), "request_failures");
    let mut rec = one();
    rec.requests[i].completion_tokens_reported = Some(OUT - 7);
    raises(&rec, &AnalysisOptions::default(), "length_mismatch");
}

#[test]
fn engine_batch_queueing_preemption_and_kv_are_found() {
    let mut rec = one();
    engine_edit(&mut rec, |s, _| s.running = s.running.map(|r| r / 2.0));
    raises(&rec, &AnalysisOptions::default(), "engine_batch_mismatch");
    let mut rec = one();
    engine_edit(&mut rec, |s, _| s.waiting = Some(3.0));
    raises(&rec, &AnalysisOptions::default(), "engine_queueing");
    let mut rec = one();
    engine_edit(&mut rec, |s, t| {
        s.preemptions_total = Some((t * 10.0).floor())
    });
    raises(&rec, &AnalysisOptions::default(), "preemptions");
    let mut rec = one();
    engine_edit(&mut rec, |s, _| s.kv_usage_frac = Some(0.99));
    raises(&rec, &AnalysisOptions::default(), "kv_near_full");
}

/// llama.cpp's counters: tokens added only at finish (no live counter), spec-decode counters
/// exposed at 0, busy slots as a running average since start — here after 1,000 earlier calls at
/// 2 busy slots, so the raw gauge reads well below the step's 8.
fn llamacpp_like() -> SyntheticRun {
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        let n = s.steps_total.unwrap();
        s.live_generation_tokens_total = None;
        s.spec_drafts_total = Some(0.0);
        s.spec_draft_tokens_total = Some(0.0);
        s.spec_accepted_tokens_total = Some(0.0);
        s.steps_total = Some(1000.0 + n);
        s.busy_slots_per_decode = Some((2.0 * 1000.0 + 8.0 * n) / (1000.0 + n));
    });
    rec
}

#[test]
fn llamacpp_counters_give_mtp_1_and_the_windowed_busy_slots() {
    let a = run(&llamacpp_like(), &AnalysisOptions::default());
    let t = &a.timings[0];
    assert_eq!(t.mtp, 1.0);
    assert_eq!(
        t.mtp_source,
        crate::step_time::MtpSource::SpecDecodeCounters
    );
    let busy = t.engine.busy_slots_per_step.unwrap();
    assert!((busy - 8.0).abs() < 1e-9, "{busy}");
    let engine = t.t_fwd_engine_steps_s.unwrap();
    let truth = A + B * 8.0;
    assert!((engine - truth).abs() / truth < 0.02, "{engine} vs {truth}");
    assert!(
        !codes(&a).contains(&"engine_batch_mismatch"),
        "{:?}",
        codes(&a)
    );

    // Fewer busy slots than bs in the windows is a batch mismatch, even with no gauge.
    let mut rec = llamacpp_like();
    engine_edit(&mut rec, |s, _| {
        s.running = None;
        let n = s.steps_total.unwrap() - 1000.0;
        s.busy_slots_per_decode = Some((2.0 * 1000.0 + 6.0 * n) / (1000.0 + n));
    });
    raises(&rec, &AnalysisOptions::default(), "engine_batch_mismatch");
}

#[test]
fn requests_deferred_outside_the_windows_are_queueing() {
    // A wave whose requests wait for slots may have no window: the queue shows between them.
    let mut rec = one();
    let windows = run(&rec, &AnalysisOptions::default()).timings[0]
        .windows
        .clone();
    engine_edit(&mut rec, |s, t| {
        let inside = windows.iter().any(|w| w.contains(t));
        s.waiting = Some(if inside { 0.0 } else { 2.0 });
    });
    let a = run(&rec, &AnalysisOptions::default());
    assert_eq!(a.timings[0].engine.waiting_max, Some(0.0));
    assert_eq!(a.timings[0].engine.waiting_max_step, Some(2.0));
    let f = a.findings.iter().find(|f| f.code == "engine_queueing");
    assert_eq!(
        f.map(|f| f.evidence["waiting_max"].clone()),
        Some(2.0.into())
    );
}

#[test]
fn warm_prefix_cache_and_token_mismatch_are_found() {
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        s.prefix_cache_hits_total = s.prefix_cache_queries_total
    });
    raises(&rec, &AnalysisOptions::default(), "prefix_cache_warm");
    let warm = AnalysisOptions {
        prefix_cache_warm_expected: true,
        ..AnalysisOptions::default()
    };
    assert!(!codes(&run(&rec, &warm)).contains(&"prefix_cache_warm"));
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        s.generation_tokens_total = s.generation_tokens_total.map(|g| g * 1.5)
    });
    raises(&rec, &AnalysisOptions::default(), "token_count_mismatch");
}

#[test]
fn disagreeing_views_are_found() {
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        if let Some(h) = &mut s.itl_s {
            h.sum *= 1.3;
        }
    });
    raises(&rec, &AnalysisOptions::default(), "step_time_disagreement");

    // Chunks claim two tokens each while usage says one per step: the window's throughput no
    // longer matches bs / TPOT.
    let mut rec = one();
    for r in &mut rec.requests {
        for c in &mut r.chunks {
            c.tokens = Some(2);
        }
    }
    raises(&rec, &AnalysisOptions::default(), "identity_broken");

    // Half the batch held outside the engine (a proxy): Little's law falls short.
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        s.running = s.running.map(|r| (r - 4.0).max(0.0));
    });
    raises(&rec, &AnalysisOptions::default(), "littles_law_broken");

    // More in the engine than the client sent is other traffic: the batch says it, not the law.
    let mut rec = one();
    engine_edit(&mut rec, |s, _| {
        s.running = s.running.map(|r| r + 8.0);
    });
    raises(&rec, &AnalysisOptions::default(), "engine_batch_mismatch");
    let a = run(&rec, &AnalysisOptions::default());
    assert!(
        a.findings.iter().all(|f| f.code != "littles_law_broken"),
        "{:#?}",
        a.findings
    );
}

#[test]
fn roofline_client_and_gpu_problems_are_found() {
    let rec = one();
    let opts = AnalysisOptions {
        // bs 8 at a decode context of 128 + 101 / 2 → 179 tokens.
        roofline: Some(llama_8b_with_t_min(2.0 * (A + B * 8.0), 8, 179)),
        ..AnalysisOptions::default()
    };
    raises(&rec, &opts, "above_roofline");
    let opts = AnalysisOptions {
        roofline: Some(llama_8b_with_t_min(0.5 * (A + B * 8.0), 8, 179)),
        ..AnalysisOptions::default()
    };
    let a = run(&rec, &opts);
    assert!(warn_or_worse(&a).is_empty(), "{:#?}", a.findings);
    assert!((a.timings[0].roofline_efficiency.unwrap() - 0.5).abs() < 0.01);

    let mut rec = one();
    for t in &mut rec.ticks {
        t.late_s = 0.02;
    }
    raises(&rec, &AnalysisOptions::default(), "client_lateness");
    let mut rec = one();
    for g in &mut rec.gpu {
        g.throttle_reasons = Some(0x4);
        g.sm_clock_mhz = Some(1400);
    }
    raises(&rec, &AnalysisOptions::default(), "gpu_throttling");
    let mut rec = one();
    for g in &mut rec.gpu {
        g.mem_used_bytes = g.mem_total_bytes;
    }
    raises(&rec, &AnalysisOptions::default(), "gpu_memory_near_full");
}

#[test]
fn a_step_too_short_to_measure_says_so() {
    let rec = wave_recording(&[WaveSpec {
        output_len: 1,
        ..WaveSpec::default()
    }]);
    raises(&rec, &AnalysisOptions::default(), "no_measurement_window");
}

#[test]
fn dp_divides_the_batch_and_multiplies_the_throughput() {
    let mut rec = sweep(&[16, 32, 64]);
    // The synthetic engine is one rank; a real DP engine sums its ranks' step counters.
    engine_edit(&mut rec, |s, _| s.steps_total = None);
    let opts = AnalysisOptions {
        dp: Some(2),
        max_num_seqs: Some(32),
        ..AnalysisOptions::default()
    };
    let a = run(&rec, &opts);
    assert_eq!(a.timings[0].bs_per_rank, 8.0);
    let c = a.headline().unwrap();
    assert_eq!(c.bs_per_rank, 32);
    // The step at 64 requests (32 per rank) ran in A + B × 64.
    assert!(
        (c.throughput_tok_s - 64.0 / (A + 64.0 * B)).abs() < 1.0,
        "{c:?}"
    );
}

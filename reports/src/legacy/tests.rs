//! The equivalence of the polars pipeline and the loops it replaced, on every shape of synthetic
//! recording: every figure of every `StepSummary` and `StepTiming` equal to 1e-9 relative
//! (`None` only equals `None`). The differences allowed by that tolerance are the order in
//! which a mean or a sum adds its terms (polars sums in chunks; the loops left to right).

use super::*;
use crate::engine::EngineSample;
use crate::recording::{ChunkKind, Outcome, Pattern, RunInfo};
use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};

/// Runs both implementations on `rec` with `dp` ranks, asserts the same figures and returns
/// the pipeline's timings.
fn same_figures(what: &str, rec: &SyntheticRun, dp: u32) -> Vec<crate::step_time::StepTiming> {
    let r = rec.recording_with(RunInfo {
        dp: Some(dp),
        ..RunInfo::default()
    });
    let new_summary = crate::summary::summarize_steps(&r).unwrap();
    let new_timing = crate::step_time::time_recording(&r, dp).unwrap();
    let mut gpu = rec.gpu.clone();
    gpu.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let mut engine: Vec<EngineSample> = rec.engine.clone();
    engine.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let old_summary = summarize_steps(&rec.steps, &rec.requests, &rec.ticks);
    let old_timing = time_steps(&rec.steps, &rec.requests, &engine, &gpu, dp);
    assert_eq!(new_summary.len(), rec.steps.len(), "{what}");
    let d = differences(&new_summary, &old_summary, 1e-9);
    assert!(d.is_empty(), "{what}: summaries differ: {d:#?}");
    let d = differences(&new_timing, &old_timing, 1e-9);
    assert!(d.is_empty(), "{what}: timings differ: {d:#?}");
    new_timing
}

fn sweep(bss: &[u32]) -> SyntheticRun {
    let specs: Vec<WaveSpec> = bss
        .iter()
        .map(|&bs| WaveSpec {
            batch_size: bs,
            output_len: 41,
            waves: 2,
            step_time_s: 0.008 + 0.0002 * f64::from(bs),
            ..WaveSpec::default()
        })
        .collect();
    wave_recording(&specs)
}

#[test]
fn a_clean_sweep_gives_the_same_figures() {
    let t = same_figures("sweep", &sweep(&[1, 4, 16, 64]), 1);
    assert!(
        t.iter()
            .all(|t| t.windows.len() == 2 && t.t_fwd_client_s.is_some())
    );
}

#[test]
fn dp_and_speculative_decoding_give_the_same_figures() {
    same_figures("dp 2", &sweep(&[4, 16]), 2);
    let mtp = wave_recording(&[WaveSpec {
        output_len: 61,
        tokens_per_chunk: 3,
        step_time_s: 0.03,
        ..WaveSpec::default()
    }]);
    same_figures("mtp", &mtp, 1);
    let unknown = wave_recording(&[WaveSpec {
        tokens_per_chunk: 2,
        chunk_tokens_known: false,
        ..WaveSpec::default()
    }]);
    same_figures("chunk tokens unknown", &unknown, 1);
}

#[test]
fn failures_partial_counts_and_reasoning_give_the_same_figures() {
    let mut rec = sweep(&[8, 8]);
    let measured: Vec<usize> = (0..rec.requests.len())
        .filter(|&i| !rec.requests[i].warmup)
        .collect();
    // A timeout after some chunks, one before any, an HTTP error, a cut stream.
    let r = &mut rec.requests[measured[0]];
    r.outcome = Outcome::Timeout;
    r.done_t_s = None;
    r.chunks.truncate(5);
    let r = &mut rec.requests[measured[1]];
    r.outcome = Outcome::HttpError;
    r.first_token_t_s = None;
    r.first_answer_t_s = None;
    r.done_t_s = None;
    r.chunks.clear();
    r.completion_tokens_reported = None;
    r.prompt_tokens_reported = None;
    rec.requests[measured[2]].outcome = Outcome::StreamCut;
    // Usage missing: counts come from chunks, some of which do not say.
    let r = &mut rec.requests[measured[3]];
    r.completion_tokens_reported = None;
    r.chunks[2].tokens = None;
    rec.requests[measured[4]].completion_tokens_reported = None;
    // Length mismatches both ways.
    rec.requests[measured[5]].prompt_tokens_reported = Some(100);
    rec.requests[measured[6]].completion_tokens_reported = Some(3);
    // A reasoning model: the answer starts later.
    let r = &mut rec.requests[measured[7]];
    for c in r.chunks.iter_mut().take(10) {
        c.kind = ChunkKind::Reasoning;
    }
    r.first_answer_t_s = Some(r.chunks[10].t_s);
    // A request of the second step without a wave.
    if let Some(&i) = measured.iter().rev().nth(1) {
        rec.requests[i].wave = None;
    }
    let t = same_figures("failures", &rec, 1);
    assert!(
        t.iter().all(|t| t.chunk_gaps > 0),
        "windows survive the failures"
    );
}

#[test]
fn empty_and_warm_up_only_steps_give_the_same_figures() {
    let mut rec = sweep(&[4, 8, 2]);
    // Step 1 loses every request; step 2 keeps only its warm-up.
    rec.requests
        .retain(|r| r.step_idx != 1 && (r.step_idx != 2 || r.warmup));
    rec.ticks.retain(|t| t.step_idx != 1);
    let t = same_figures("empty steps", &rec, 1);
    assert!(t[1].windows.is_empty() && t[2].windows.is_empty() && !t[0].windows.is_empty());
    let empty = SyntheticRun {
        steps: rec.steps.clone(),
        ..SyntheticRun::default()
    };
    same_figures("no requests at all", &empty, 1);
}

#[test]
fn closed_loop_steps_give_the_same_figures() {
    // The waves relabelled as one closed-loop step: in flight is bs inside each wave's decode,
    // less at its edges, so the sweep finds one window per wave.
    let mut rec = sweep(&[4, 8]);
    for s in &mut rec.steps {
        s.pattern = Pattern::ClosedLoop;
    }
    for r in &mut rec.requests {
        r.wave = None;
    }
    let t = same_figures("closed loop", &rec, 1);
    // One window per measured wave, so the comparison covers the closed-loop sweep.
    assert!(t.iter().all(|t| t.windows.len() == 2), "{t:#?}");
}

#[test]
fn a_step_too_short_for_a_window_gives_the_same_figures() {
    let rec = wave_recording(&[WaveSpec {
        output_len: 1,
        ..WaveSpec::default()
    }]);
    let t = same_figures("one token", &rec, 1);
    assert!(t[0].windows.is_empty() && t[0].t_fwd_client_s.is_none());
}

#[test]
fn differences_name_the_figure_and_respect_none() {
    #[derive(Serialize)]
    struct F {
        a: f64,
        b: Option<f64>,
    }
    let d = differences(
        &F { a: 1.0, b: None },
        &F {
            a: 1.0 + 1e-12,
            b: Some(0.0),
        },
        1e-9,
    );
    assert_eq!(d, vec![".b: null vs 0.0".to_string()]);
    assert_eq!(
        differences(&F { a: 1.0, b: None }, &F { a: 1.1, b: None }, 1e-9).len(),
        1
    );
}

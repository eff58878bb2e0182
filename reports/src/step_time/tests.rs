//! The step timing on synthetic recordings whose step time is known.

use super::*;
use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};
use ceiling_collectors::engines::{Flavor, Signals};

fn time_all(rec: &SyntheticRun) -> Vec<StepTiming> {
    let r = rec.recording();
    let figures = crate::frames::request_figures(&r).unwrap();
    let chunks = crate::frames::chunk_gaps(&r, &figures).unwrap();
    time_steps(&r, &figures, &chunks, 1).unwrap()
}

#[test]
fn a_wave_with_one_chunk_every_10ms_has_a_10ms_step_three_ways() {
    let rec = wave_recording(&[WaveSpec {
        batch_size: 8,
        output_len: 201,
        step_time_s: 0.010,
        ..WaveSpec::default()
    }]);
    let t = &time_all(&rec)[0];
    let close = |v: Option<f64>, what: &str| {
        let v = v.unwrap_or_else(|| panic!("{what} missing: {t:#?}"));
        assert!((v - 0.010).abs() / 0.010 < 0.02, "{what} = {v}");
    };
    close(t.t_fwd_client_s, "client");
    close(t.t_fwd_identity_s, "identity");
    close(t.t_fwd_engine_itl_s, "engine itl");
    close(t.t_fwd_engine_steps_s, "engine steps");
    assert!((t.mtp - 1.0).abs() < 1e-9);
    assert!(t.identity_rel_err.unwrap() < 0.02, "{t:#?}");
    assert!(t.littles_law.unwrap().rel_err < 0.10, "{:?}", t.littles_law);
    assert_eq!(t.engine.running_min, Some(8.0));
    assert_eq!(t.engine.generation_tokens, Some(4.0 * 8.0 * 201.0));
    assert_eq!(t.engine.client_output_tokens, 4 * 8 * 201);
    // 8 × 128 prompt tokens in 50 ms.
    assert!((t.prefill_rate_tok_s.unwrap() / (8.0 * 128.0 / 0.05) - 1.0).abs() < 1e-3);
    assert!((t.gpu.node_power_w.unwrap() - 500.0).abs() < 1e-6);
    let j = t.gpu.energy_per_output_token_j.unwrap();
    assert!((j - 500.0 / 800.0).abs() / j < 0.02, "{j}");
}

#[test]
fn speculative_decoding_is_accounted_for_by_mtp() {
    // Three tokens per step every 30 ms: TPOT 10 ms, step 30 ms.
    let rec = wave_recording(&[WaveSpec {
        output_len: 181,
        step_time_s: 0.030,
        tokens_per_chunk: 3,
        ..WaveSpec::default()
    }]);
    let t = &time_all(&rec)[0];
    assert_eq!(t.mtp_source, MtpSource::SpecDecodeCounters);
    assert!((t.mtp - 3.0).abs() < 1e-9);
    for v in [t.t_fwd_client_s, t.t_fwd_identity_s, t.t_fwd_engine_itl_s] {
        assert!((v.unwrap() - 0.030).abs() < 0.0006, "{t:#?}");
    }
}

#[test]
fn the_engine_itl_leaves_out_first_gaps_that_hold_a_later_prefill() {
    // SGLang prefilled one request of the wave 300 ms before the other seven: the engine's
    // histogram records that request's first gap (300 ms + one step) at the first decode step,
    // and a scrape falls between the window's start and that step.
    let mut rec = wave_recording(&[WaveSpec {
        output_len: 64,
        waves: 1,
        warmup_waves: 0,
        prefill_s: 0.046,
        ..WaveSpec::default()
    }]);
    let early = 0.300;
    let r = &mut rec.requests[0];
    r.chunks[0].t_s -= early;
    r.first_token_t_s = Some(r.chunks[0].t_s);
    r.first_answer_t_s = r.first_token_t_s;
    let second = r.chunks[1].t_s;
    let window_start = rec.requests[1].first_token_t_s.unwrap();
    assert!(
        rec.engine
            .iter()
            .any(|s| s.t_s > window_start && s.t_s < second),
        "a scrape between the window's start and the first decode step"
    );
    for s in rec.engine.iter_mut().filter(|s| s.t_s >= second) {
        if let Some(h) = s.signals.itl_s.as_mut() {
            h.sum += early;
        }
    }
    let t = &time_all(&rec)[0];
    for (v, what) in [
        (t.t_fwd_client_s, "client"),
        (t.t_fwd_engine_itl_s, "engine itl"),
    ] {
        let v = v.unwrap_or_else(|| panic!("{what} missing: {t:#?}"));
        assert!((v - 0.010).abs() / 0.010 < 0.01, "{what} = {v}");
    }
    assert!(t.client_engine_rel_diff.unwrap() < 0.01, "{t:#?}");
}

#[test]
fn a_pause_between_decode_steps_is_in_the_client_mean_as_in_the_engine_histogram() {
    // SGLang in a closed loop runs each new request's prefill as its own batch, which stops
    // the requests decoding then: here three of the eight wait 200 ms once inside the window.
    // The engine's histogram averages those gaps in; the median over requests leaves them out,
    // the client's mean holds them.
    let mut rec = wave_recording(&[WaveSpec {
        output_len: 101,
        waves: 1,
        warmup_waves: 0,
        ..WaveSpec::default()
    }]);
    let (pause_at, pause) = (0.5, 0.2);
    let later = |t: &mut f64| {
        if *t > pause_at {
            *t += pause;
        }
    };
    for r in rec.requests.iter_mut().take(3) {
        r.chunks.iter_mut().for_each(|c| later(&mut c.t_s));
        r.done_t_s.as_mut().map(later);
    }
    for s in rec.engine.iter_mut().filter(|s| s.t_s > pause_at) {
        if let Some(h) = s.signals.itl_s.as_mut() {
            h.sum += 3.0 * pause;
        }
    }
    let t = &time_all(&rec)[0];
    let (median, mean, engine) = (
        t.t_fwd_client_s.unwrap(),
        t.t_fwd_client_mean_s.unwrap(),
        t.t_fwd_engine_itl_s.unwrap(),
    );
    assert!((median - 0.010).abs() < 1e-6, "{t:#?}");
    // Per request 100 gaps of 10 ms, and three of them 200 ms longer once: 10.75 ms.
    assert!((mean - 0.01075).abs() < 2e-4, "{mean}");
    assert!((engine - mean).abs() / mean < 0.02, "{engine} {mean}");
    assert!(t.client_engine_rel_diff.unwrap() < 0.02, "{t:#?}");
    // Against the median, the same step reads more than the 5 % tolerance apart.
    assert!((engine - median) / engine > 0.05, "{engine} {median}");
}

#[test]
fn the_acceptance_noise_shrinks_with_the_effective_gaps_and_is_none_without_drafts() {
    // MTP 2.6 over ~80 effective gaps: 2 √1.6 / (2.6 √80) ≈ 10.9 %.
    let n = acceptance_noise(2.6, Some(80.0)).unwrap();
    assert!((n - 2.0 * 1.6f64.sqrt() / (2.6 * 80f64.sqrt())).abs() < 1e-12);
    assert!(n > 0.10 && n < 0.12, "{n}");
    // Four times the gaps, half the noise.
    let quarter = acceptance_noise(2.6, Some(320.0)).unwrap();
    assert!((quarter - n / 2.0).abs() < 1e-12);
    // One token a step: no acceptance to sample; no gaps: nothing to say.
    assert_eq!(acceptance_noise(1.0, Some(80.0)), None);
    assert_eq!(acceptance_noise(2.6, None), None);
}

#[test]
fn llamacpps_ranks_are_the_probes_dp_that_have_a_sequence_and_labelled_ones_are_counted() {
    let at = |flavor, dp_ranks| EngineSample {
        t_s: 0.0,
        signals: Signals {
            flavor: Some(flavor),
            dp_ranks,
            ..Signals::default()
        },
        boundary: false,
    };
    // Two ranks summed into one llama.cpp exposition: both step at bs 8; at bs 1 one idles.
    let llamacpp = at(Flavor::Llamacpp, 1);
    assert_eq!(engine_view::exposition_ranks(Some(&llamacpp), 2, 8), 2.0);
    assert_eq!(engine_view::exposition_ranks(Some(&llamacpp), 2, 1), 1.0);
    assert_eq!(engine_view::exposition_ranks(Some(&llamacpp), 1, 8), 1.0);
    // Labelled ranks (vLLM `engine`, SGLang `dp_rank`) are counted from the labels; no scrape
    // in the windows: the probe's `--dp`.
    assert_eq!(
        engine_view::exposition_ranks(Some(&at(Flavor::Vllm, 2)), 4, 8),
        2.0
    );
    assert_eq!(engine_view::exposition_ranks(None, 4, 8), 4.0);
}

#[test]
fn a_steps_counters_are_never_bracketed_by_a_scrape_from_its_neighbours_traffic() {
    let spec = |bs| WaveSpec {
        batch_size: bs,
        output_len: 41,
        ..WaveSpec::default()
    };
    let mut rec = wave_recording(&[spec(4), spec(8)]);
    let tokens = |rec: &SyntheticRun| time_all(rec)[1].engine.generation_tokens;
    // Scrapes between the steps' traffic: step 1's counters are its own, exactly.
    assert_eq!(tokens(&rec), Some(4.0 * 8.0 * 41.0));
    // The scrapes between them lost (a boundary scrape that timed out): the last scrape before
    // step 1 was taken in step 0's last wave, whose tokens a delta from it would count too.
    let done_0 = rec.requests.iter().filter(|q| q.step_idx == 0);
    let done_0 = done_0.filter_map(|q| q.done_t_s).fold(0.0, f64::max);
    let sent_1 = rec.requests.iter().filter(|q| q.step_idx == 1);
    let sent_1 = sent_1.map(|q| q.sent_t_s).fold(f64::INFINITY, f64::min);
    let before = rec.engine.len();
    rec.engine.retain(|s| s.t_s < done_0 || s.t_s > sent_1);
    assert!(rec.engine.len() < before);
    assert!(
        rec.engine
            .iter()
            .any(|s| s.t_s < done_0 && s.t_s > done_0 - 0.1),
        "a scrape inside step 0's last wave"
    );
    assert_eq!(tokens(&rec), None, "unknown, never step 0's tokens counted");
}

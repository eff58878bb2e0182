//! Step timing as loops over request records: the oracle of [`crate::step_time`].

use ceiling_collectors::GpuSample;

use super::engine_view::{engine_window, littles_law, requests_span, waves_itl};
use super::window as legacy_window;
use crate::engine::{self, EngineSample};
use crate::metrics;
use crate::recording::{Pattern, RequestRecord, StepRecord};
use crate::step_time::{MtpSource, StepTiming, gpu_window, rel, windows_delta};
use crate::window::{self, Window};

/// The client's chunks inside the windows: the gaps between consecutive chunks of one request
/// within one window, tokens per chunk where the engine counted them, and the tokens that
/// arrived in the windows (chunks counted as one token where unknown).
struct Cadence {
    gaps: Vec<f64>,
    /// Per request and window with three chunks or more inside: `(last − first) / (chunks − 1)`.
    /// A late read moves one arrival but not the span, so this holds where the gaps do not.
    span_gaps: Vec<f64>,
    tokens_per_chunk: Option<f64>,
    window_tokens: f64,
    window_tokens_known: bool,
}

fn client_cadence(requests: &[&RequestRecord], windows: &[Window]) -> Cadence {
    let mut gaps = Vec::new();
    let (mut tok_known, mut chunks_known) = (0u64, 0u64);
    let mut window_tokens = 0.0;
    let mut window_tokens_known = true;
    let mut span_gaps = Vec::new();
    for r in requests.iter().filter(|r| !r.warmup) {
        // (window, first arrival, last arrival, chunks) of the run of chunks inside a window.
        let mut run: Option<(usize, f64, f64, u32)> = None;
        for c in &r.chunks {
            let w = window::index_of(windows, c.t_s);
            run = match (run, w) {
                (Some((rw, first, _, n)), Some(w)) if rw == w => Some((w, first, c.t_s, n + 1)),
                (prev, w) => {
                    if let Some((_, first, last, n)) = prev
                        && n >= 3
                    {
                        span_gaps.push((last - first) / f64::from(n - 1));
                    }
                    w.map(|w| (w, c.t_s, c.t_s, 1))
                }
            };
        }
        if let Some((_, first, last, n)) = run
            && n >= 3
        {
            span_gaps.push((last - first) / f64::from(n - 1));
        }
        for pair in r.chunks.windows(2) {
            let w = window::index_of(windows, pair[0].t_s);
            if w.is_some() && w == window::index_of(windows, pair[1].t_s) {
                gaps.push(pair[1].t_s - pair[0].t_s);
                if let Some(n) = pair[1].tokens {
                    tok_known += u64::from(n);
                    chunks_known += 1;
                }
            }
        }
        for c in &r.chunks {
            let Some(i) = window::index_of(windows, c.t_s) else {
                continue;
            };
            if c.t_s > windows[i].start_t_s {
                match c.tokens {
                    Some(n) => window_tokens += f64::from(n),
                    None => {
                        window_tokens_known = false;
                        window_tokens += 1.0;
                    }
                }
            }
        }
    }
    Cadence {
        gaps,
        span_gaps,
        tokens_per_chunk: (chunks_known > 0).then(|| tok_known as f64 / chunks_known as f64),
        window_tokens,
        window_tokens_known,
    }
}

/// Prompt tokens per second of each measured wave, from its first send to its last first token;
/// the median over the waves. Waves only.
fn prefill_rate(step: &StepRecord, requests: &[&RequestRecord], windows: &[Window]) -> Option<f64> {
    if step.pattern != Pattern::Wave {
        return None;
    }
    let mut rates = Vec::new();
    for w in windows {
        let wave: Vec<&&RequestRecord> = requests
            .iter()
            .filter(|r| !r.warmup && r.wave == w.wave)
            .collect();
        let sent = wave.iter().map(|r| r.sent_t_s).reduce(f64::min);
        let first = wave
            .iter()
            .filter_map(|r| r.first_token_t_s)
            .reduce(f64::max);
        let tokens: u32 = wave.iter().map(|r| r.prompt_tokens_requested).sum();
        if let (Some(s), Some(f)) = (sent, first)
            && f > s
        {
            rates.push(f64::from(tokens) / (f - s));
        }
    }
    metrics::median(&rates)
}

/// Times one step. `requests` are that step's requests; `engine_samples` and `gpu` the whole
/// run's, sorted by time; `dp` the data-parallel ranks.
pub fn time_step(
    step: &StepRecord,
    requests: &[&RequestRecord],
    engine_samples: &[EngineSample],
    gpu: &[GpuSample],
    dp: u32,
) -> StepTiming {
    let dp = dp.max(1);
    let bs_per_rank = f64::from(step.batch_size) / f64::from(dp);
    let windows = legacy_window::step_windows(step, requests);
    let window_s = window::total_s(&windows);
    let measured: Vec<&RequestRecord> = requests
        .iter()
        .copied()
        .filter(|r| metrics::is_measured_ok(r))
        .collect();

    let Cadence {
        gaps,
        span_gaps,
        tokens_per_chunk,
        window_tokens,
        window_tokens_known,
    } = client_cadence(requests, &windows);
    let chunk_gap_median_s = metrics::median(&gaps);

    // Engine over the windows; where no moment had all bs decoding (the engine queued or
    // preempted them), over the span of the step's measured requests, so the queue that
    // prevented the window is still seen.
    let span = requests_span(requests);
    let over_requests_span = windows.is_empty() && span.is_some();
    // Interval scrapes only: a boundary scrape lands between waves, with the engine idle, and
    // would pull the running/KV figures of the requests' span down (it is never inside a window).
    let in_windows: Vec<&EngineSample> = engine_samples
        .iter()
        .filter(|s| !s.boundary)
        .filter(|s| match span {
            Some((a, b)) if over_requests_span => s.t_s >= a && s.t_s <= b,
            _ => window::index_of(&windows, s.t_s).is_some(),
        })
        .collect();
    let dp_ranks = in_windows
        .last()
        .map(|s| s.signals.dp_ranks.max(1) as f64)
        .unwrap_or(f64::from(dp));
    let d_steps = windows_delta(engine_samples, &windows, |s| s.steps_total);
    // Tokens counted step by step only: llama.cpp and SGLang add a request's tokens when it
    // finishes, which inside a wave window (no request finishes) reads 0.
    let d_gen = windows_delta(engine_samples, &windows, |s| s.live_generation_tokens_total);
    let d_drafts = windows_delta(engine_samples, &windows, |s| s.spec_drafts_total);
    let d_accepted = windows_delta(engine_samples, &windows, |s| s.spec_accepted_tokens_total);
    let itl: Option<(f64, f64)> = windows
        .iter()
        .filter_map(|w| {
            engine::delta_mean(
                engine::inside(engine_samples, w.start_t_s, w.end_t_s),
                |s| s.itl_s,
            )
        })
        .reduce(|a, b| (a.0 + b.0, a.1 + b.1));

    let (mtp, mtp_source) = match (d_drafts, d_accepted, d_steps, d_gen, tokens_per_chunk) {
        (Some(d), Some(a), ..) if d.dv > 0.0 => (1.0 + a.dv / d.dv, MtpSource::SpecDecodeCounters),
        // Spec counters exposed but no draft in the windows (llama.cpp without a draft model):
        // one token per step. Multi-token chunks then are merged pieces (llama.cpp holds back
        // partial UTF-8), not MTP.
        (Some(d), Some(_), ..) if d.dv == 0.0 => (1.0, MtpSource::SpecDecodeCounters),
        (_, _, Some(st), Some(g), _) if st.dv > 0.0 && bs_per_rank > 0.0 => (
            g.dv / (st.dv / dp_ranks) / (bs_per_rank * dp_ranks),
            MtpSource::EngineTokensPerStep,
        ),
        (.., Some(tpc)) => (tpc, MtpSource::ClientTokensPerChunk),
        _ => (1.0, MtpSource::Assumed),
    };
    let steps_per_chunk = tokens_per_chunk.map_or(1.0, |tpc| (tpc / mtp).max(1.0));
    // The median over requests of each one's mean gap inside a window: a late read of the
    // client's moves single arrivals (the gaps' median can fall to 0 when chunks are read in
    // bursts) but not a request's span.
    let chunk_gap_span_s = metrics::median(&span_gaps);
    let t_fwd_client_s = chunk_gap_span_s
        .or(chunk_gap_median_s)
        .map(|g| g / steps_per_chunk);
    let tpot_median_s = metrics::median(
        &measured
            .iter()
            .filter_map(|r| metrics::tpot_s(r))
            .collect::<Vec<_>>(),
    );
    let t_fwd_identity_s = tpot_median_s.map(|t| mtp * t);
    // Too few scrapes inside the windows (short waves, a slow scrape interval): the
    // inter-token histogram over each whole wave, whose gaps are all decode steps.
    let wave_itl = (itl.is_none() && step.pattern == Pattern::Wave)
        .then(|| waves_itl(requests, engine_samples))
        .flatten();
    let t_fwd_engine_over_waves = wave_itl.is_some();
    let t_fwd_engine_itl_s = itl.or(wave_itl).map(|(s, c)| s / c);
    let t_fwd_engine_steps_s = d_steps
        .filter(|d| d.dv > 0.0)
        .map(|d| dp_ranks * d.dt_s / d.dv);
    let t_fwd_engine_s = t_fwd_engine_itl_s.or(t_fwd_engine_steps_s);
    let t_fwd_s = t_fwd_client_s.or(t_fwd_identity_s).or(t_fwd_engine_s);
    let client_engine_rel_diff = t_fwd_client_s.zip(t_fwd_engine_s).map(|(c, e)| rel(c, e));

    let prefill_rate_tok_s = prefill_rate(step, requests, &windows);

    let throughput_window_tok_s = (window_s > 0.0 && !gaps.is_empty()).then(|| {
        let tokens = if window_tokens_known {
            window_tokens
        } else {
            window_tokens * mtp
        };
        tokens / window_s
    });
    let throughput_identity_tok_s = t_fwd_identity_s.map(|t| f64::from(step.batch_size) * mtp / t);
    let identity_rel_err = throughput_window_tok_s
        .zip(throughput_identity_tok_s)
        .map(|(w, i)| rel(w, i));

    let engine = engine_window(
        step,
        requests,
        engine_samples,
        &windows,
        &in_windows,
        over_requests_span,
    );

    let littles_law = littles_law(&measured, engine_samples);
    let gpu = gpu_window(gpu, &windows, throughput_window_tok_s);

    StepTiming {
        step_idx: step.idx,
        batch_size: step.batch_size,
        bs_per_rank,
        input_len: step.input_len,
        output_len: step.output_len,
        window_s,
        windows,
        mtp,
        mtp_source,
        tokens_per_chunk,
        chunk_gap_median_s,
        chunk_gap_span_s,
        chunk_gaps: gaps.len(),
        tpot_median_s,
        t_fwd_client_s,
        t_fwd_identity_s,
        t_fwd_engine_itl_s,
        t_fwd_engine_steps_s,
        t_fwd_engine_over_waves,
        t_fwd_engine_s,
        t_fwd_s,
        client_engine_rel_diff,
        prefill_rate_tok_s,
        throughput_window_tok_s,
        throughput_identity_tok_s,
        identity_rel_err,
        littles_law,
        roofline_t_min_s: None,
        roofline_efficiency: None,
        engine,
        gpu,
    }
}

/// Times every step.
pub fn time_steps(
    steps: &[StepRecord],
    requests: &[RequestRecord],
    engine_samples: &[EngineSample],
    gpu: &[GpuSample],
    dp: u32,
) -> Vec<StepTiming> {
    let mut by_step: std::collections::BTreeMap<u32, Vec<&RequestRecord>> = Default::default();
    for r in requests {
        by_step.entry(r.step_idx).or_default().push(r);
    }
    steps
        .iter()
        .map(|s| {
            let reqs = by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
            time_step(s, reqs, engine_samples, gpu, dp)
        })
        .collect()
}

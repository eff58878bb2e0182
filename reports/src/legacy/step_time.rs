//! The client's side of step timing as loops over request records: the oracle of
//! [`crate::step_time`]'s queries (windows, cadence, per-step and per-wave request figures).
//! Both feed the same assembly (`step_time::time_step`), so the equivalence tests
//! compare exactly what moved to polars.

use std::collections::BTreeMap;

use ceiling_collectors::GpuSample;

use super::window::step_windows;
use crate::engine::EngineSample;
use crate::metrics;
use crate::recording::{Outcome, RequestRecord, StepRecord};
use crate::step_time::{
    Cadence, Client, DecodePass, DecodeReq, DecodeWindow, GapMoments, InFlight, StepRequests,
    StepTiming, WaveRequests, mean, scraped_spans, time_step,
};
use crate::window::{self, Window};

/// The client's chunks inside the windows: the gaps between consecutive chunks of one request
/// within one window, tokens per chunk where the engine counted them, and the tokens that
/// arrived in the windows (chunks counted as one token where unknown).
struct Loops {
    gaps: Vec<f64>,
    /// The gaps that end inside their window's scraped span.
    scraped_gaps: Vec<f64>,
    /// Per request and window with three chunks or more inside: `(last − first) / (chunks − 1)`.
    span_gaps: Vec<f64>,
    tokens_per_chunk: Option<f64>,
    window_tokens: f64,
    window_tokens_known: bool,
}

fn client_cadence(
    requests: &[&RequestRecord],
    windows: &[Window],
    spans: &[Option<(f64, f64)>],
) -> Loops {
    let mut gaps = Vec::new();
    let mut scraped_gaps = Vec::new();
    let (mut tok_known, mut chunks_known) = (0u64, 0u64);
    let mut window_tokens = 0.0;
    let mut window_tokens_known = true;
    let mut span_gaps = Vec::new();
    // Warm-up requests too: a closed loop's window counts them as load (a wave's never holds
    // them).
    for r in requests {
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
                let t = pair[1].t_s;
                if w.and_then(|i| spans.get(i).copied().flatten())
                    .is_some_and(|(a, b)| t > a && t <= b)
                {
                    scraped_gaps.push(t - pair[0].t_s);
                }
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
    Loops {
        gaps,
        scraped_gaps,
        span_gaps,
        tokens_per_chunk: (chunks_known > 0).then(|| tok_known as f64 / chunks_known as f64),
        window_tokens,
        window_tokens_known,
    }
}

fn cadence(
    requests: &[&RequestRecord],
    windows: &[Window],
    spans: &[Option<(f64, f64)>],
) -> Cadence {
    let l = client_cadence(requests, windows, spans);
    Cadence {
        gaps: l.gaps.len(),
        gap_median_s: metrics::median(&l.gaps),
        gap_mean_s: mean(&l.gaps),
        gap_mean_scraped_s: mean(&l.scraped_gaps),
        gap_at_edge_s: GapMoments::of(&l.gaps).at_edge(),
        scraped_gaps_n_eff: GapMoments::of(&l.scraped_gaps).n_eff(),
        span_gap_median_s: metrics::median(&l.span_gaps),
        tokens_per_chunk: l.tokens_per_chunk,
        window_tokens: l.window_tokens,
        window_tokens_known: l.window_tokens_known,
    }
}

/// One step's request figures.
fn step_requests(requests: &[&RequestRecord]) -> StepRequests {
    let measured: Vec<&RequestRecord> = requests.iter().copied().filter(|r| !r.warmup).collect();
    let ok: Vec<&RequestRecord> = requests
        .iter()
        .copied()
        .filter(|r| metrics::is_measured_ok(r))
        .collect();
    let m_start = measured.iter().map(|r| r.sent_t_s).reduce(f64::min);
    let m_end = measured.iter().filter_map(|r| r.done_t_s).reduce(f64::max);
    let tpot: Vec<f64> = ok.iter().filter_map(|r| metrics::tpot_s(r)).collect();
    let e2e: Vec<f64> = ok.iter().filter_map(|r| metrics::e2e_s(r)).collect();
    let mut waves: BTreeMap<u32, WaveRequests> = BTreeMap::new();
    for r in &measured {
        let Some(w) = r.wave else { continue };
        let e = waves.entry(w).or_insert(WaveRequests {
            wave: w,
            ..WaveRequests::default()
        });
        e.sent_min = Some(e.sent_min.map_or(r.sent_t_s, |s| s.min(r.sent_t_s)));
        if let Some(f) = r.first_token_t_s {
            e.first_token_max = Some(e.first_token_max.map_or(f, |m| m.max(f)));
        }
        if let Some(c) = r.chunks.get(1) {
            e.settled_t_s = Some(e.settled_t_s.map_or(c.t_s, |m| m.max(c.t_s)));
        }
        e.prompt_tokens_requested += f64::from(r.prompt_tokens_requested);
        if let Some(done) = r.done_t_s {
            e.done_span = Some(match e.done_span {
                Some((s, d)) => (s.min(r.sent_t_s), d.max(done)),
                None => (r.sent_t_s, done),
            });
        }
    }
    StepRequests {
        tpot_median_s: metrics::median(&tpot),
        measured_span: match (m_start, m_end) {
            (Some(a), Some(b)) if b > a => Some((a, b)),
            _ => None,
        },
        ok_sent_min: ok.iter().map(|r| r.sent_t_s).reduce(f64::min),
        ok_done_max: ok.iter().filter_map(|r| r.done_t_s).reduce(f64::max),
        ok_n: ok.len() as u32,
        ok_e2e_mean_s: mean(&e2e),
        sent_min: requests.iter().map(|r| r.sent_t_s).reduce(f64::min),
        done_max: requests.iter().filter_map(|r| r.done_t_s).reduce(f64::max),
        client_output_tokens: requests
            .iter()
            .filter_map(|r| metrics::output_tokens(r))
            .map(u64::from)
            .sum(),
        client_prompt_tokens: requests
            .iter()
            .filter(|r| r.first_token_t_s.is_some())
            .map(|r| {
                u64::from(
                    r.prompt_tokens_reported
                        .unwrap_or(r.prompt_tokens_requested),
                )
            })
            .sum(),
        waves: waves.into_values().collect(),
        done_ts: {
            let mut d: Vec<f64> = requests.iter().filter_map(|r| r.done_t_s).collect();
            d.sort_by(f64::total_cmp);
            d
        },
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
    let mut by_step: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    for r in requests {
        by_step.entry(r.step_idx).or_default().push(r);
    }
    let flight = in_flight(requests);
    let reqs = |s: &StepRecord| by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
    let traffic: Vec<Option<(f64, f64)>> = steps
        .iter()
        .map(|s| step_requests(reqs(s)).traffic(s))
        .collect();
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let step_samples = crate::engine::between_neighbours(engine_samples, &traffic, i);
            let reqs = reqs(s);
            let windows = step_windows(s, reqs);
            let requests = step_requests(reqs);
            let spans = scraped_spans(engine_samples, &windows, &requests);
            let client = Client {
                cadence: cadence(reqs, &windows, &spans),
                requests,
                decode: decode(s.idx, reqs, &windows),
                windows,
            };
            time_step(s, client, &flight, step_samples, gpu, dp)
        })
        .collect()
}

/// Every request with a done instant, and when the engine must have counted it.
fn in_flight(requests: &[RequestRecord]) -> InFlight {
    let mut chunks: Vec<f64> = requests
        .iter()
        .flat_map(|r| r.chunks.iter().map(|c| c.t_s))
        .collect();
    chunks.sort_by(f64::total_cmp);
    let spans = requests
        .iter()
        .filter_map(|r| {
            r.done_t_s
                .map(|d| (r.sent_t_s, r.chunks.last().map(|c| c.t_s), d))
        })
        .filter(|(a, _, b)| b >= a);
    InFlight::new(spans, &chunks)
}

/// The decode-window figures of one step, its requests fed one by one to the same pass the
/// frames feed.
fn decode(step: u32, requests: &[&RequestRecord], windows: &[Window]) -> DecodeWindow {
    let mut pass = DecodePass::default();
    for r in requests.iter().filter(|r| r.outcome == Outcome::Ok) {
        let Some(end) = r.done_t_s.or(r.chunks.last().map(|c| c.t_s)) else {
            continue;
        };
        let req = DecodeReq {
            step,
            wave: r.wave,
            sent: r.sent_t_s,
            end,
            first: r.first_token_t_s,
            output_tokens: r.completion_tokens_reported,
        };
        let times: Vec<f64> = r.chunks.iter().map(|c| c.t_s).collect();
        let toks: Vec<Option<u32>> = r.chunks.iter().map(|c| c.tokens).collect();
        pass.add(&req, windows, &times, &toks);
    }
    let by_step = BTreeMap::from([(step, windows.to_vec())]);
    pass.finish(&by_step).remove(&step).unwrap_or_default()
}

//! What the client's chunks say about the decode window of each step, beyond its cadence:
//!
//! - **The TPOT of the window**: per measured request and window, the time the request spent in
//!   the window (from its span `[sent, end]` cut to the window, to its last chunk in it) over
//!   the tokens that arrived in that time, pooled over those (request, window) pairs (`Σ time /
//!   Σ tokens`: a median would wander with the per-request accept lengths under speculative
//!   decoding, and the identity it feeds is a sum over requests). Unlike a request's whole-life TPOT it
//!   holds no step outside the window: in a wave, not the other requests' prefill chunks the
//!   early ones decoded through; in a closed loop, exactly the time the window counts (a request
//!   sent inside it waits for its first token inside it too).
//! - **The steps a wave's prefill took**: the request whose first token came first gets one
//!   chunk per engine step from then on, so its chunk nearest the wave's last first token is the
//!   last prefill step; its index plus one is the number of steps from the first to the last
//!   first token (a prompt longer than the prefill budget before the first first token is not
//!   seen: at least this many).
//!
//! The cadence's pass over the chunks (they come by request, then arrival) hands each measured
//! request's chunks to [`DecodePass`], which binary-searches each window's edges in them. Pure.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::recording::Outcome;
use crate::window::Window;

/// One step's decode-window figures from the chunks.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DecodeWindow {
    /// Time in the windows per token that arrived in them, pooled over (request, window), the
    /// tokens scaled to the request's reported output; a chunk of unknown size in a request
    /// without `usage` counts as one token (see `tokens_known`).
    pub tpot_s: Option<f64>,
    /// Every request counted had `usage` or chunks that said how many tokens they held.
    pub tokens_known: bool,
    /// The tokens that arrived inside the windows after their start, counted as the TPOT's are
    /// (successful requests, warm-up ones included).
    pub window_tokens: f64,
    /// Where chunks do not say their size: the tokens per chunk after the first, from `usage`
    /// (`Σ (output − 1) / Σ (chunks − 1)`; the first chunk is the prompt pass's one token).
    pub usage_tokens_per_chunk: Option<f64>,
    /// Per measured wave with a window: the engine steps from its first to its last first token.
    pub prefill_steps: BTreeMap<u32, u32>,
    /// Per measured wave with a window: the client's mean chunk gap over the whole wave over
    /// its mean gap inside the window. Near 1 where the wave's gaps are all decode steps at the
    /// batch (its prefill took one step, all finished together); above where the early
    /// requests decoded through later prefill chunks. The engine's whole-wave counters hold the
    /// same gaps.
    pub whole_over_window: BTreeMap<u32, f64>,
}

/// Gap sums of one wave: (Σ span, Σ gaps) over the whole wave and inside its window.
type WaveGaps = ((f64, f64), (f64, f64));

/// One successful request as the pass reads it (measured or warm-up: see [`window_requests`]).
pub(crate) struct Req {
    pub step: u32,
    pub wave: Option<u32>,
    pub sent: f64,
    /// Done, else its last chunk.
    pub end: f64,
    pub first: Option<f64>,
    /// Its output tokens as the engine's `usage` reported them.
    pub output_tokens: Option<u32>,
}

/// The successful requests by row number (= request id), warm-up ones included: a closed
/// loop's window counts every request in flight as load (see [`crate::window`]), the warm-up
/// ones still decoding after the first measured send with them, so its throughput and TPOT
/// count their tokens and time too (without them a window's first stretch, where most of the
/// bs are warm-up requests, counted a fraction of the batch against `bs × MTP / t_fwd`). A wave's
/// warm-up waves end before its first measured wave opens a window: they fall in none.
pub(super) fn window_requests(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, Req>> {
    let request = figures.column("request")?.u32()?;
    let step = figures.column("step_idx")?.u32()?;
    let wave = figures.column("wave")?.u32()?;
    let sent = figures.column("sent_t_s")?.f64()?;
    let done = figures.column("done_t_s")?.f64()?;
    let last = figures.column("last_chunk_t_s")?.f64()?;
    let first = figures.column("first_token_t_s")?.f64()?;
    let output = figures.column("completion_tokens_reported")?.u32()?;
    let outcome = figures.column("outcome")?.str()?;
    let mut out = BTreeMap::new();
    for i in 0..figures.height() {
        let (Some(r), Some(s), Some(sent), Some(true)) = (
            request.get(i),
            step.get(i),
            sent.get(i),
            outcome.get(i).map(|o| o == Outcome::Ok.as_str()),
        ) else {
            continue;
        };
        let Some(end) = done.get(i).or(last.get(i)) else {
            continue;
        };
        out.insert(
            r,
            Req {
                step: s,
                wave: wave.get(i),
                sent,
                end,
                first: first.get(i),
                output_tokens: output.get(i),
            },
        );
    }
    Ok(out)
}

/// Collects the requests one at a time (with their chunks' arrivals and tokens), then gives
/// each step's figures.
#[derive(Default)]
pub(crate) struct DecodePass {
    /// Per step: Σ time in window, Σ tokens in it, and whether every request's tokens were
    /// known.
    tpots: BTreeMap<u32, (f64, f64, bool)>,
    /// Per step: the tokens that arrived inside its windows after their start.
    window_tokens: BTreeMap<u32, f64>,
    /// Per step, over requests whose chunks did not say their size: Σ (output − 1), Σ (chunks −
    /// 1).
    usage_per_chunk: BTreeMap<u32, (f64, f64)>,
    /// Per (step, wave): the earliest first token and that request's chunk arrivals.
    earliest: BTreeMap<(u32, u32), (f64, Vec<f64>)>,
    gaps: BTreeMap<(u32, u32), WaveGaps>,
}

impl DecodePass {
    /// One request's share of its step's windows, and its chunks if it is its wave's earliest.
    pub(crate) fn add(
        &mut self,
        req: &Req,
        windows: &[Window],
        times: &[f64],
        toks: &[Option<u32>],
    ) {
        let entry = self.tpots.entry(req.step).or_insert((0.0, 0.0, true));
        let all_known = toks.iter().all(Option::is_some);
        entry.2 &= all_known || req.output_tokens.is_some();
        let values = chunk_tokens(toks, req.output_tokens);
        if let Some(n) = req.output_tokens
            && toks.len() >= 2
            && toks.iter().any(Option::is_none)
        {
            let e = self.usage_per_chunk.entry(req.step).or_default();
            e.0 += f64::from(n.saturating_sub(1));
            e.1 += (toks.len() - 1) as f64;
        }
        let window_tokens = self.window_tokens.entry(req.step).or_default();
        // Only the windows the request's span meets: one wholly before its send or its first
        // chunk, or wholly after its end or its last chunk, holds none of its chunks and none
        // of its time (it would add exact zeros). A closed loop's step has thousands of
        // windows and millions of requests: visiting each window for each request made this
        // pass 65 % of a 30-minute soak's analysis.
        let span_from = times.first().map_or(req.sent, |f| f.min(req.sent));
        let span_to = times.last().map_or(req.end, |l| l.max(req.end));
        let first = windows.partition_point(|w| w.end_t_s < span_from);
        let past = windows.partition_point(|w| w.start_t_s <= span_to);
        for w in &windows[first..past.max(first)] {
            // The tokens that arrived after the window's start, as the cadence counts them.
            let a = times.partition_point(|t| *t <= w.start_t_s);
            let b = times.partition_point(|t| *t <= w.end_t_s);
            *window_tokens += values[a..b.max(a)].iter().sum::<f64>();
            let (lo, hi) = (req.sent.max(w.start_t_s), req.end.min(w.end_t_s));
            if hi <= lo {
                continue;
            }
            // A request still in prefill when its share of the window opens (sent inside it, or
            // queued when it opened: a closed loop's) counts from then, its TTFT included: the
            // time a slot spends in prefill is part of the loop's cycle. One that got no token
            // in the window was a slot in prefill all through it. One already decoding when
            // the window opens counts from the window's start too, with the tokens after its
            // arrival nearest that start (the chunk of the step that opened the window: in a
            // wave it arrives with the last first token, just before or after it). Timing it
            // from its first arrival in the window instead let a burst of chunks read late
            // there (a stalled client or server thread) count their tokens in no time: a
            // llama.cpp wave of 2 read its TPOT 15 % short once. The time runs to the last
            // chunk, not to `hi`: a chunk of the step that ends the window may arrive just
            // after it.
            let prefilling = times.first().is_none_or(|first| *first > lo);
            let b = times.partition_point(|t| *t <= hi);
            let from = lo;
            let counted_from = if prefilling {
                times.partition_point(|t| *t <= lo)
            } else {
                match nearest(times, lo) {
                    Some(i) => i + 1,
                    None => continue,
                }
            };
            if b > counted_from && times[b - 1] > from {
                entry.0 += times[b - 1] - from;
                entry.1 += values[counted_from..b].iter().sum::<f64>();
            } else if prefilling && b <= counted_from {
                entry.0 += hi - lo;
            }
        }
        if let (Some(wave), Some(w)) = (req.wave, windows.iter().find(|w| w.wave == req.wave)) {
            let g = self.gaps.entry((req.step, wave)).or_default();
            add_span(&mut g.0, times);
            let a = times.partition_point(|t| *t < w.start_t_s);
            let b = times.partition_point(|t| *t <= w.end_t_s);
            add_span(&mut g.1, &times[a..b]);
        }
        if let (Some(wave), Some(first)) = (req.wave, req.first) {
            let e = self
                .earliest
                .entry((req.step, wave))
                .or_insert((f64::INFINITY, Vec::new()));
            if first < e.0 {
                *e = (first, times.to_vec());
            }
        }
    }

    /// Each step's figures, the prefill steps of the waves that have a window.
    pub(crate) fn finish(
        self,
        windows: &BTreeMap<u32, Vec<Window>>,
    ) -> BTreeMap<u32, DecodeWindow> {
        let mut out: BTreeMap<u32, DecodeWindow> = BTreeMap::new();
        for (step, (time, tokens, known)) in self.tpots {
            let d = out.entry(step).or_default();
            d.tpot_s = (tokens > 0.0).then(|| time / tokens);
            d.tokens_known = known;
        }
        for (step, tokens) in self.window_tokens {
            out.entry(step).or_default().window_tokens = tokens;
        }
        for (step, (tokens, chunks)) in self.usage_per_chunk {
            out.entry(step).or_default().usage_tokens_per_chunk =
                (chunks > 0.0 && tokens > 0.0).then(|| tokens / chunks);
        }
        for ((step, wave), ((ws, wn), (is, inn))) in self.gaps {
            if wn > 0.0 && inn > 0.0 && is > 0.0 {
                let d = out.entry(step).or_default();
                d.whole_over_window.insert(wave, (ws / wn) / (is / inn));
            }
        }
        for ((step, wave), (_, chunk_times)) in self.earliest {
            let start = windows
                .get(&step)
                .and_then(|ws| ws.iter().find(|w| w.wave == Some(wave)))
                .map(|w| w.start_t_s);
            if let Some(i) = start.and_then(|s| nearest(&chunk_times, s)) {
                let d = out.entry(step).or_default();
                d.prefill_steps.insert(wave, i as u32 + 1);
            }
        }
        out
    }
}

/// Each chunk's tokens as the identity counts them, `usage`'s: the first chunk's own count (1
/// where unknown: the prompt's forward pass gives one token, speculative decoding or not), the
/// others' counts (1 where unknown) scaled so that all add up to the request's reported output.
/// Under speculative decoding with chunks of unknown size, a flat scale would give the first
/// chunk MTP tokens and overcount every window that holds first chunks (a closed loop's).
fn chunk_tokens(toks: &[Option<u32>], output_tokens: Option<u32>) -> Vec<f64> {
    let mut values: Vec<f64> = toks.iter().map(|k| f64::from(k.unwrap_or(1))).collect();
    let Some((first, rest)) = values.split_first_mut() else {
        return values;
    };
    let counted: f64 = rest.iter().sum();
    if let Some(n) = output_tokens
        && counted > 0.0
    {
        let scale = ((f64::from(n) - *first) / counted).max(0.0);
        rest.iter_mut().for_each(|v| *v *= scale);
    }
    values
}

/// Adds a run of chunk arrivals' span and gaps to `(Σ span, Σ gaps)`.
fn add_span(sums: &mut (f64, f64), times: &[f64]) {
    if let (Some(first), Some(last)) = (times.first(), times.last())
        && times.len() >= 2
    {
        sums.0 += last - first;
        sums.1 += (times.len() - 1) as f64;
    }
}

/// The index of the time nearest `t` in sorted `times`.
fn nearest(times: &[f64], t: f64) -> Option<usize> {
    let i = times.partition_point(|x| *x < t);
    [i.checked_sub(1), (i < times.len()).then_some(i)]
        .into_iter()
        .flatten()
        .min_by(|a, b| (times[*a] - t).abs().total_cmp(&(times[*b] - t).abs()))
}

#[cfg(test)]
mod tests;

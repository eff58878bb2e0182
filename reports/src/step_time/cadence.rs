//! The client's chunks inside the measurement windows, per step: each chunk placed in its
//! step's window, then the gaps between consecutive chunks of a request inside one window, each
//! request's mean gap over its run of chunks in a window, tokens per chunk where the engine
//! counted them, and the tokens that arrived in the windows (a chunk counted as one token where
//! unknown). The same pass hands each measured request's chunks to the decode-window figures
//! ([`super::decode`]): a second walk over the columns for them cost 0.4–0.6 s at 10 M rows.
//!
//! All of it is one pass over the chunk columns, because every figure hangs on each row's window
//! and that is found in the pass: a binary search of the chunk's instant in its step's sorted
//! windows ([`window::index_of`]; polars' as-of join would do the same but brings polars-time
//! and the streaming engine into the build). The pass adds each row to its step's sums and gap
//! list and each (request, window) run to its step's spans (a request's chunks are contiguous);
//! the medians are then read from each step's own vector ([`metrics::quantiles_unsorted`],
//! polars' linear quantile). The polars version of the same figures (the placement written as
//! two columns, a per-step group-by with shifted copies for the pair test and filtered medians,
//! a second pass for the spans) took 1.0–1.6 s and +340 MiB at 10 M chunk rows.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use crate::frames::values;
use crate::metrics;
use crate::window::{self, Window};

use super::decode::{DecodePass, DecodeWindow, Req};
use super::moments::GapMoments;

/// One step's client cadence.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cadence {
    /// Gaps between consecutive chunks of one request within one window.
    pub gaps: usize,
    pub gap_median_s: Option<f64>,
    /// Median over (request, window) runs of three chunks or more of `(last − first) /
    /// (chunks − 1)`. A late read moves one arrival but not the span, so this holds where the
    /// gaps do not.
    pub span_gap_median_s: Option<f64>,
    /// The mean of the gaps (within a request's run of chunks in one window it telescopes to
    /// the run's span, so a late read moves it no more than the span): what the engine's
    /// inter-token histogram averages, pauses between decode steps included.
    pub gap_mean_s: Option<f64>,
    /// The mean of the gaps that end inside their window's scraped span
    /// ([`super::counters::scraped_spans`]): the gaps the engine's inter-token figure holds.
    pub gap_mean_scraped_s: Option<f64>,
    /// The scraped gaps' effective number, `(Σ g)² / Σ g²`: as many equal gaps would weigh the
    /// mean as evenly. A few long gaps (prefill batches among decode steps) weigh it most.
    pub scraped_gaps_n_eff: Option<f64>,
    /// The mean length of the gap an instant falls in, `Σ g² / Σ g` over the gaps: what a
    /// window's edge is placed to. One step where the steps are even; where a few long gaps
    /// interleave (prefill batches among decode steps) far more than the mean gap.
    pub gap_at_edge_s: Option<f64>,
    pub tokens_per_chunk: Option<f64>,
    /// Tokens that arrived inside the windows after their start.
    pub window_tokens: f64,
    /// Every chunk counted in `window_tokens` said how many tokens it held.
    pub window_tokens_known: bool,
}

impl Cadence {
    /// The client's step time: the median over requests of each one's mean gap inside a window
    /// (a late read of the client's moves single arrivals — the gaps' median can fall to 0 when
    /// chunks are read in bursts — but not a request's span), else the gaps' median, divided by
    /// the engine steps one chunk spans ([`steps_per_chunk`]).
    pub(crate) fn t_fwd_s(&self, mtp: f64) -> Option<f64> {
        self.per_step(self.span_gap_median_s.or(self.gap_median_s), mtp)
    }

    /// The client's mean time per engine step: [`Cadence::gap_mean_s`] over the steps one chunk
    /// spans. Where steps other than decode interleave (SGLang's separate prefill batches in a
    /// closed loop) it holds them, as the engine's histogram does, and the median does not.
    pub(crate) fn t_fwd_mean_s(&self, mtp: f64) -> Option<f64> {
        self.per_step(self.gap_mean_scraped_s.or(self.gap_mean_s), mtp)
    }

    /// A chunk gap over the engine steps one chunk spans ([`steps_per_chunk`], 1 where the
    /// chunks' tokens are unknown).
    fn per_step(&self, gap_s: Option<f64>, mtp: f64) -> Option<f64> {
        let steps = self
            .tokens_per_chunk
            .map_or(1.0, |tpc| steps_per_chunk(tpc, mtp));
        gap_s.map(|g| g / steps)
    }

    /// Output tokens that arrived inside the windows per second of window; chunks of unknown
    /// size count as one engine step's tokens, MTP.
    pub(crate) fn throughput_tok_s(&self, window_s: f64, mtp: f64) -> Option<f64> {
        (window_s > 0.0 && self.gaps > 0).then(|| {
            let tokens = if self.window_tokens_known {
                self.window_tokens
            } else {
                self.window_tokens * mtp
            };
            tokens / window_s
        })
    }
}

/// Engine steps one chunk spans: `tokens_per_chunk / MTP`, at least 1, and the whole number
/// nearest it where within 10 % of it. A chunk holds whole steps (an engine streams what a step
/// made); under speculative decoding the MTP read from the counters over the whole step and the
/// tokens per chunk inside the window differ by the acceptance's sampling noise (2.36 against
/// 2.47 in a window of 26 steps of 8 sequences), which the ratio would put into the step time
/// (6.92 against 7.25 ms). Far from a whole number (an engine that streams every N tokens, not
/// every N steps), the ratio stays.
fn steps_per_chunk(tokens_per_chunk: f64, mtp: f64) -> f64 {
    let ratio = (tokens_per_chunk / mtp).max(1.0);
    let whole = ratio.round();
    if (ratio - whole).abs() <= 0.1 * whole {
        whole
    } else {
        ratio
    }
}

/// A step's windows, the id of its first over the run, and its slot in the pass' sums.
#[derive(Clone, Copy)]
struct StepWindows<'a> {
    first_id: u32,
    windows: &'a [Window],
    slot: usize,
}

/// Where a chunk fell: its window's id, whether after the window's start, its step's slot.
#[derive(Clone, Copy, PartialEq)]
struct Placed {
    window: u32,
    open: bool,
    slot: usize,
}

/// Finds chunks' windows; window ids are unique over the run.
struct Placer<'a> {
    steps: HashMap<u32, StepWindows<'a>>,
    /// The last step looked up: the chunks come by request, so in runs of one step's rows.
    cached: Option<(u32, Option<StepWindows<'a>>)>,
    /// The window (index in the cached step's) of the last chunk placed: the next chunk, the
    /// same request's a little later, is most often in it too.
    hint: Option<usize>,
}

impl<'a> Placer<'a> {
    fn new(windows: &'a BTreeMap<u32, Vec<Window>>) -> Placer<'a> {
        let mut steps = HashMap::new();
        let mut first_id = 0u32;
        for (slot, (&step, w)) in windows.iter().enumerate() {
            steps.insert(
                step,
                StepWindows {
                    first_id,
                    windows: w.as_slice(),
                    slot,
                },
            );
            first_id += w.len() as u32;
        }
        Placer {
            steps,
            cached: None,
            hint: None,
        }
    }

    /// Where a chunk of step `step` at `t_s` fell; `None` outside every window.
    fn place(&mut self, step: u32, t_s: f64) -> Option<Placed> {
        let step_windows = match self.cached {
            Some((s, w)) if s == step => w,
            _ => {
                let w = self.steps.get(&step).copied();
                self.cached = Some((step, w));
                self.hint = None;
                w
            }
        };
        let StepWindows {
            first_id,
            windows,
            slot,
        } = step_windows?;
        // The hint is the window `index_of` finds when it holds `t_s` and the next window
        // starts after `t_s` (windows are sorted and do not overlap).
        let i = match self.hint {
            Some(h)
                if windows[h].contains(t_s)
                    && windows.get(h + 1).is_none_or(|next| next.start_t_s > t_s) =>
            {
                h
            }
            _ => window::index_of(windows, t_s)?,
        };
        self.hint = Some(i);
        Some(Placed {
            window: first_id + i as u32,
            open: t_s > windows[i].start_t_s,
            slot,
        })
    }
}

/// What the pass gathers for one step.
#[derive(Default)]
struct StepSums {
    /// Gaps between consecutive chunks of one request within one window.
    gaps: usize,
    /// Those of them that are finite, in row order.
    finite_gaps: Vec<f64>,
    pair_tokens: f64,
    pair_tokens_n: u64,
    /// Tokens of the chunks in a window after its start, unknown ones counted as 1.
    window_tokens: f64,
    window_tokens_unknown: u64,
    /// Per (request, window) run of three chunks or more, `(last − first) / (chunks − 1)`.
    span_gaps: Vec<f64>,
    /// The finite gaps that end inside their window's scraped span.
    scraped: GapMoments,
}

impl StepSums {
    /// One chunk placed in a window of the step: a pair's gap and tokens where the request's
    /// previous chunk was in the same window, its tokens where after the window's start.
    fn add(&mut self, in_pair: bool, open: bool, gap: Option<f64>, tokens: Option<u32>) {
        if in_pair {
            if let Some(g) = gap {
                self.gaps += 1;
                if g.is_finite() {
                    self.finite_gaps.push(g);
                }
            }
            if let Some(k) = tokens {
                self.pair_tokens += f64::from(k);
                self.pair_tokens_n += 1;
            }
        }
        if open {
            match tokens {
                Some(k) => self.window_tokens += f64::from(k),
                None => {
                    self.window_tokens += 1.0;
                    self.window_tokens_unknown += 1;
                }
            }
        }
    }

    /// A pair's gap that ends inside its window's scraped span.
    fn add_scraped(&mut self, gap: Option<f64>) {
        if let Some(g) = gap {
            self.scraped.add(g);
        }
    }

    fn cadence(self) -> Cadence {
        let median = |mut v: Vec<f64>| {
            v.retain(|g| g.is_finite());
            metrics::quantiles_unsorted(&mut v, [0.5]).map(|[m]| m)
        };
        let gap_mean_s = super::mean(&self.finite_gaps);
        Cadence {
            gap_at_edge_s: GapMoments::of(&self.finite_gaps).at_edge(),
            gaps: self.gaps,
            gap_mean_s,
            gap_mean_scraped_s: self.scraped.mean(),
            scraped_gaps_n_eff: self.scraped.n_eff(),
            gap_median_s: median(self.finite_gaps),
            span_gap_median_s: median(self.span_gaps),
            tokens_per_chunk: (self.pair_tokens_n > 0)
                .then(|| self.pair_tokens / self.pair_tokens_n as f64),
            window_tokens: self.window_tokens,
            window_tokens_known: self.window_tokens_unknown == 0,
        }
    }
}

/// One request's runs of chunks by window: (window, step slot, first, last, chunks).
#[derive(Default)]
struct Runs(Vec<(u32, usize, f64, f64, u32)>);

impl Runs {
    fn add(&mut self, at: Placed, t_s: f64) {
        match self.0.iter_mut().rev().find(|run| run.0 == at.window) {
            Some(run) => {
                run.3 = t_s;
                run.4 += 1;
            }
            None => self.0.push((at.window, at.slot, t_s, t_s, 1)),
        }
    }

    /// Adds the runs of three chunks or more to their steps' spans and forgets them all.
    fn flush(&mut self, sums: &mut [StepSums]) {
        for &(_, slot, first, last, n) in self.0.iter().filter(|run| run.4 >= 3) {
            sums[slot]
                .span_gaps
                .push((last - first) / (f64::from(n) - 1.0));
        }
        self.0.clear();
    }
}

/// The current request's chunk arrivals and tokens, kept for the decode pass when it is
/// measured and its step has windows.
#[derive(Default)]
struct Current<'a> {
    req: Option<(&'a Req, &'a [Window])>,
    times: Vec<f64>,
    toks: Vec<Option<u32>>,
}

impl<'a> Current<'a> {
    /// Gives the request so far to the decode pass, then follows `req`.
    fn next(&mut self, pass: &mut DecodePass, req: Option<(&'a Req, &'a [Window])>) {
        if let Some((r, ws)) = self.req {
            pass.add(r, ws, &self.times, &self.toks);
        }
        self.times.clear();
        self.toks.clear();
        self.req = req;
    }
}

/// The cadence and the decode-window figures ([`DecodePass`]) of every step with windows, in
/// one pass over the chunks with their gaps ([`crate::frames::chunk_gaps`]); `reqs` the
/// successful requests ([`super::decode::window_requests`]). Warm-up requests count where they
/// fall in a window (a closed loop's, which counts them as load); a wave's never do.
pub(super) fn chunk_pass(
    chunks: &DataFrame,
    windows: &BTreeMap<u32, Vec<Window>>,
    spans: &BTreeMap<u32, Vec<Option<(f64, f64)>>>,
    reqs: &BTreeMap<u32, Req>,
) -> PolarsResult<(BTreeMap<u32, Cadence>, BTreeMap<u32, DecodeWindow>)> {
    // Each window's scraped span by window id (the placer numbers them in this order).
    let spans: Vec<Option<(f64, f64)>> = windows
        .iter()
        .flat_map(|(s, w)| {
            let of_step = spans.get(s);
            (0..w.len()).map(move |i| of_step.and_then(|v| v.get(i).copied().flatten()))
        })
        .collect();
    let request = chunks.column("request")?.u32()?;
    let step = chunks.column("step_idx")?.u32()?;
    let ts = chunks.column("t_s")?.f64()?;
    let gap = chunks.column("gap_s")?.f64()?;
    let tokens = chunks.column("tokens")?.u32()?;
    let mut sums: Vec<StepSums> = windows.keys().map(|_| StepSums::default()).collect();
    let mut placer = Placer::new(windows);
    let mut runs = Runs::default();
    let mut decode = DecodePass::default();
    let mut current = Current::default();
    // The previous row's request and window.
    let mut prev: Option<(u32, Option<u32>)> = None;
    let rows = values(request)
        .zip(values(step))
        .zip(values(ts))
        .zip(values(gap).zip(values(tokens)));
    for (((r, s), t), (gap, tokens)) in rows {
        let Some(r) = r else { continue };
        if prev.is_none_or(|(p, _)| p != r) {
            runs.flush(&mut sums);
            let req = reqs
                .get(&r)
                .and_then(|q| windows.get(&q.step).map(|w| (q, w.as_slice())));
            current.next(&mut decode, req);
        }
        if let (Some(_), Some(t)) = (current.req, t) {
            current.times.push(t);
            current.toks.push(tokens);
        }
        let placed = match (s, t) {
            (Some(s), Some(t)) => placer.place(s, t).map(|at| (at, t)),
            _ => None,
        };
        let window = placed.map(|(at, _)| at.window);
        let in_pair = window.is_some() && prev == Some((r, window));
        prev = Some((r, window));
        let Some((at, t)) = placed else {
            continue;
        };
        runs.add(at, t);
        let scraped = spans
            .get(at.window as usize)
            .copied()
            .flatten()
            .is_some_and(|(a, b)| t > a && t <= b);
        sums[at.slot].add(in_pair, at.open, gap, tokens);
        if in_pair && scraped {
            sums[at.slot].add_scraped(gap);
        }
    }
    runs.flush(&mut sums);
    current.next(&mut decode, None);
    let cadence = windows
        .keys()
        .zip(sums)
        .map(|(&s, a)| (s, a.cadence()))
        .collect();
    Ok((cadence, decode.finish(windows)))
}

#[cfg(test)]
mod tests;

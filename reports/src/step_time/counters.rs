//! The engine's step time and MTP from its counters, per engine as docs/ENGINE-METRICS.md §8
//! says each one counts:
//!
//! - **MTP**: the spec-decode counters over the windows (`1 + Δaccepted / Δdrafts`); where they
//!   did not move inside the windows but have moved before (llama.cpp adds a request's drafts
//!   when its slot is released, so no wave window sees one), over the whole step; else the
//!   engine's tokens per sequence per step: vLLM `Δgeneration_tokens / Δinter_token_count` (one
//!   inter-token observation per decoding sequence per step, whatever the front-ends), SGLang
//!   `Δrealtime_tokens{decode} / (Δdecode_passes × bs)`; else the client's tokens per chunk
//!   (counted where the chunks say, else `Σ (usage − 1) / Σ (chunks − 1)`: one chunk per step);
//!   else SGLang's `spec_accept_length` gauge over the step (its last 40-step log window); else 1.
//! - **Step time**: the inter-token histogram's `Δsum / Δcount` (in a wave window from the
//!   wave's last second chunk: [`itl_start`]), times MTP where the histogram counts tokens
//!   (SGLang); and `Δt / Δsteps` of the busiest DP rank (steps per rank from its own
//!   series: vLLM's inter-token count over its running batch, since `iteration_tokens_total`
//!   counts once per front-end; SGLang's decode passes), else `DP × Δt / Δsteps`. llama.cpp prints
//!   6 significant digits, so past 10⁶ decode calls a window with too few steps reads no step time.
//!   Where requests finish inside the windows (a closed loop), llama.cpp's slot counters give
//!   the decode gaps alone ([`slot_itl`]), without the idle time and prompt steps `Δt / Δsteps`
//!   holds.

use ceiling_collectors::engines::Signals;
use serde::Serialize;

use super::MtpSource;
use super::engine_view::{waves_itl, windows_delta};
use crate::engine::{self, Delta, EngineSample};
use crate::recording::{Pattern, StepRecord};
use crate::step_time::StepRequests;
use crate::window::Window;

/// A counter's increase inside a window must span at least this many of its printed quanta
/// (llama.cpp: 6 significant digits) for a rate from it to be within 1 %.
const MIN_QUANTA: f64 = 100.0;

/// One DP rank's view over a step's windows (from the rank-labelled series).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankWindow {
    /// The rank label's value (vLLM `engine`, SGLang `dp_rank`).
    pub rank: String,
    pub running_mean: Option<f64>,
    pub running_min: Option<f64>,
    pub running_max: Option<f64>,
    /// Engine steps per second of window on this rank.
    pub steps_per_s: Option<f64>,
}

/// The engine's counters over a step's windows: deltas summed over the windows, and the
/// inter-token histogram's (sum, count) deltas.
pub(super) struct EngineCounters {
    d_steps: Option<Delta>,
    /// Tokens counted step by step only: llama.cpp and SGLang add a request's tokens when it
    /// finishes, which inside a wave window (no request finishes) reads 0.
    d_gen: Option<Delta>,
    d_drafts: Option<Delta>,
    d_accepted: Option<Delta>,
    /// Over the windows: its count beside the generated tokens over the same windows is the
    /// engine's tokens per step.
    itl: Option<(f64, f64)>,
    /// Over the windows from each wave's settled instant ([`itl_start`]): the step time.
    itl_decode: Option<(f64, f64)>,
    /// The inter-token histogram counts tokens, not sequence-steps (SGLang).
    itl_per_token: bool,
    /// The spec-decode counters move when a request ends (llama.cpp): whole steps only.
    spec_at_request_end: bool,
    /// The spec-decode counters over the whole step (first scrape at or before its start to
    /// the first at or after its end), and their lifetime value at its end.
    step_drafts: Option<Delta>,
    step_accepted: Option<Delta>,
    lifetime_drafts: Option<f64>,
    /// SGLang `spec_accept_length` (a gauge over its last log window) over the step's scrapes.
    accept_length_gauge: Option<f64>,
    /// Each DP rank's steps over the windows.
    rank_steps: Vec<RankSteps>,
    /// The largest step counter at the windows' end (its print precision).
    steps_value: Option<f64>,
    /// llama.cpp's per-slot generation time over its decode gaps inside the windows (Σ
    /// seconds, Σ gaps): see [`slot_itl`].
    slot_itl: Option<(f64, f64)>,
    /// The exposition is llama.cpp's: its step counter is `llama_decode()` calls, prompts' too.
    llamacpp: bool,
}

impl EngineCounters {
    pub(super) fn over(
        engine_samples: &[EngineSample],
        windows: &[Window],
        step: &StepRecord,
        requests: &StepRequests,
    ) -> Self {
        let (start, end) = requests.span(step);
        let around = engine::around(engine_samples, start, end);
        let enclosing = engine::enclosing(engine_samples, start, end);
        let itl_per_token = engine_samples.iter().any(|s| s.signals.itl_per_token);
        let spec_at_request_end = engine_samples.iter().any(|s| s.signals.spec_at_request_end);
        let inside: Vec<&EngineSample> = windows
            .iter()
            .flat_map(|w| engine::inside(engine_samples, w.start_t_s, w.end_t_s))
            .collect();
        let gauge: Vec<f64> = around
            .iter()
            .filter_map(|s| s.signals.spec_accept_length)
            .filter(|a| *a >= 1.0)
            .collect();
        EngineCounters {
            d_steps: windows_delta(engine_samples, windows, |s| s.steps_total),
            d_gen: windows_delta(engine_samples, windows, |s| s.live_generation_tokens_total),
            d_drafts: windows_delta(engine_samples, windows, |s| s.spec_drafts_total),
            d_accepted: windows_delta(engine_samples, windows, |s| s.spec_accepted_tokens_total),
            itl: itl_over(engine_samples, windows, |w| w.start_t_s),
            itl_decode: itl_over(engine_samples, windows, |w| itl_start(w, requests)),
            itl_per_token,
            spec_at_request_end,
            step_drafts: enclosing.and_then(|a| engine::delta(a, |s| s.spec_drafts_total)),
            step_accepted: enclosing
                .and_then(|a| engine::delta(a, |s| s.spec_accepted_tokens_total)),
            lifetime_drafts: around
                .iter()
                .rev()
                .find_map(|s| s.signals.spec_drafts_total),
            accept_length_gauge: super::mean(&gauge),
            rank_steps: rank_steps(engine_samples, windows, &inside, itl_per_token),
            steps_value: inside
                .iter()
                .filter_map(|s| s.signals.steps_total)
                .reduce(f64::max),
            slot_itl: windows
                .iter()
                .filter_map(|w| {
                    slot_itl(
                        engine::inside(engine_samples, w.start_t_s, w.end_t_s),
                        &requests.done_ts,
                    )
                })
                .reduce(|a, b| (a.0 + b.0, a.1 + b.1)),
            llamacpp: engine_samples
                .iter()
                .any(|s| s.signals.flavor == Some(ceiling_collectors::engines::Flavor::Llamacpp)),
        }
    }

    /// Drops the generated-token delta where it cannot give an MTP: a closed-loop window holds
    /// steps in which some of the bs in flight are in prefill and emit nothing, so generated
    /// tokens per step per bs read below one; a batch that does not divide over the DP ranks
    /// runs unevenly (bs 1 on DP 2: one rank steps, the other idles), so steps × bs / DP is not
    /// the sequences stepped; and a wave whose requests failed decodes fewer than bs (an SGLang
    /// wave of 8 with 3 HTTP 500s read MTP 0.625, and its step time 5/8 of the client's).
    pub(super) fn without_uneven_tokens_per_step(
        mut self,
        step: &StepRecord,
        dp: u32,
        requests: &StepRequests,
    ) -> Self {
        let asked = u64::from(step.batch_size) * requests.waves.len() as u64;
        if step.pattern == Pattern::ClosedLoop
            || !step.batch_size.is_multiple_of(dp)
            || u64::from(requests.ok_n) < asked
        {
            self.d_gen = None;
        }
        self
    }

    /// MTP and where it came from (see the module's order).
    pub(super) fn mtp(
        &self,
        tokens_per_chunk: Option<f64>,
        bs_per_rank: f64,
        dp_ranks: f64,
    ) -> (f64, MtpSource) {
        let accept = |d: Delta, a: Delta| 1.0 + a.dv / d.dv;
        if let (Some(d), Some(a)) = (self.d_drafts, self.d_accepted)
            && d.dv > 0.0
            && !self.spec_at_request_end
        {
            return (accept(d, a), MtpSource::SpecDecodeCounters);
        }
        let spec_exposed = self.d_drafts.is_some() || self.step_drafts.is_some();
        // Counters that move only when a request ends (llama.cpp): the whole step's, never a
        // window's (a request ending at a window's edge would be the window's only sample).
        if let (Some(d), Some(a)) = (self.step_drafts, self.step_accepted)
            && d.dv > 0.0
            && (self.spec_at_request_end || self.d_drafts.is_none_or(|w| w.dv == 0.0))
        {
            return (accept(d, a), MtpSource::SpecDecodeCounters);
        }
        // Spec counters exposed but never moved (llama.cpp without a draft model): one token per
        // step. Multi-token chunks then are merged pieces (llama.cpp holds back partial UTF-8).
        if spec_exposed && self.lifetime_drafts.is_some_and(|d| d == 0.0) {
            return (1.0, MtpSource::SpecDecodeCounters);
        }
        if let Some(m) = self.engine_tokens_per_step(bs_per_rank, dp_ranks) {
            return (m, MtpSource::EngineTokensPerStep);
        }
        // The client's tokens per chunk (counted, else from `usage`) are this step's own; the
        // gauge is SGLang's last log window (40 steps), which may hold other steps' batches.
        if let Some(tpc) = tokens_per_chunk {
            return (tpc, MtpSource::ClientTokensPerChunk);
        }
        match self.accept_length_gauge {
            Some(a) => (a, MtpSource::SpecAcceptLengthGauge),
            None => (1.0, MtpSource::Assumed),
        }
    }

    /// Output tokens per decoding sequence per step inside the windows.
    fn engine_tokens_per_step(&self, bs_per_rank: f64, dp_ranks: f64) -> Option<f64> {
        let g = self.d_gen.filter(|g| g.dv > 0.0)?;
        if !self.itl_per_token
            && let Some((_, count)) = self.itl
        {
            // vLLM: one inter-token observation per decoding sequence per step.
            return (count > 0.0).then(|| g.dv / count);
        }
        let st = self.d_steps.filter(|st| st.dv > 0.0)?;
        (bs_per_rank > 0.0).then(|| g.dv / (st.dv / dp_ranks) / (bs_per_rank * dp_ranks))
    }
}

/// The inter-token histogram's (`Δsum`, `Δcount`) over the windows, each read from `start`.
fn itl_over(
    engine_samples: &[EngineSample],
    windows: &[Window],
    start: impl Fn(&Window) -> f64,
) -> Option<(f64, f64)> {
    windows
        .iter()
        .filter_map(|w| {
            engine::delta_mean(engine::inside(engine_samples, start(w), w.end_t_s), |s| {
                s.itl_s
            })
        })
        .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
}

/// Where the inter-token histogram can be read from in a window: a histogram observation is
/// the gap that ends at it, so a wave window's first decode step still records, for a request
/// prefilled in an earlier step, a gap holding the later requests' prefill. From the wave's
/// last second chunk on ([`super::requests::WaveRequests::settled_t_s`]) every gap is a decode
/// step; the step counters need no such margin.
fn itl_start(w: &Window, requests: &StepRequests) -> f64 {
    w.wave
        .and_then(|n| requests.waves.iter().find(|r| r.wave == n))
        .and_then(|r| r.settled_t_s)
        .map_or(w.start_t_s, |s| s.clamp(w.start_t_s, w.end_t_s))
}

/// Per window, the span the engine's inter-token figure reads ([`itl_over`] from
/// [`itl_start`]): from its first to its last scrape inside the window; `None` with fewer than
/// two. The client's mean step time is read over the gaps that end in it
/// ([`super::Cadence::gap_mean_scraped_s`]), so both average the same steps: where steps of
/// very different lengths interleave (SGLang's 0.2 s prefill batches among 3 ms decode steps),
/// the scrape interval's ends cut a few of them away from the window's and the two means part.
pub(crate) fn scraped_spans(
    engine_samples: &[EngineSample],
    windows: &[Window],
    requests: &StepRequests,
) -> Vec<Option<(f64, f64)>> {
    windows
        .iter()
        .map(|w| {
            let inside = engine::inside(engine_samples, itl_start(w, requests), w.end_t_s);
            match (inside.first(), inside.last()) {
                (Some(a), Some(b)) if b.t_s > a.t_s => Some((a.t_s, b.t_s)),
                _ => None,
            }
        })
        .collect()
}

/// The engine's step time from its inter-token histogram and from its step counter.
pub(super) struct EngineStepTime {
    pub(super) itl_s: Option<f64>,
    /// `itl_s` is a time per token times the MTP (SGLang's histogram, llama.cpp's slots), not
    /// a time per step.
    pub(super) itl_per_token: bool,
    pub(super) steps_s: Option<f64>,
    /// The histogram was read over whole waves, not the windows.
    pub(super) over_waves: bool,
    /// The step counter moved too few of its printed quanta in the windows (llama.cpp past 10⁶
    /// decode calls): no step time from it; widen the windows (more output tokens).
    pub(super) steps_too_coarse: bool,
    /// A closed loop on llama.cpp without its slot counters: the decode calls hold prompt
    /// calls and idle time, so `steps_s` is withheld ([`EngineViewGap::PromptCallsInLoop`]).
    ///
    /// [`EngineViewGap::PromptCallsInLoop`]: super::EngineViewGap::PromptCallsInLoop
    pub(super) prompt_calls_in_loop: bool,
}

impl EngineCounters {
    pub(super) fn step_time(
        &self,
        step: &StepRecord,
        requests: &StepRequests,
        engine_samples: &[EngineSample],
        dp_ranks: f64,
        mtp: f64,
    ) -> EngineStepTime {
        // Too few scrapes inside the windows (short waves, a slow scrape interval): the
        // inter-token histogram over each whole wave, whose gaps are all decode steps.
        let wave_itl = (self.itl_decode.is_none() && step.pattern == Pattern::Wave)
            .then(|| {
                let spans = requests.waves.iter().filter_map(|w| w.done_span);
                waves_itl(spans, engine_samples)
            })
            .flatten();
        let per_token = if self.itl_per_token { mtp } else { 1.0 };
        let coarse = self
            .d_steps
            .zip(self.steps_value)
            .is_some_and(|(d, v)| d.dv < MIN_QUANTA * printed_quantum(v));
        // The rank with the largest batch: its steps are the slowest, and an idle rank (which
        // steps less or not at all) must not stretch the step time as `DP × Δt / ΣΔsteps` does.
        let busiest = self
            .rank_steps
            .iter()
            .filter(|r| r.steps.dv > 0.0)
            .max_by(|a, b| {
                a.running
                    .unwrap_or(0.0)
                    .total_cmp(&b.running.unwrap_or(0.0))
            });
        let steps_s = match busiest {
            Some(r) => Some(r.steps.dt_s / r.steps.dv),
            None => self
                .d_steps
                .filter(|d| d.dv > 0.0)
                .map(|d| dp_ranks * d.dt_s / d.dv),
        };
        let histogram = self.itl_decode.or(wave_itl);
        // A closed loop on llama.cpp whose slot counters did not move (too few requests ended
        // inside the windows): its decode calls there hold the prompts' own calls and its idle
        // turnaround (a loop of one at 1,024/64 read 14 % over the client), so no step time.
        let loop_unclean = step.pattern == Pattern::ClosedLoop
            && self.llamacpp
            && histogram.is_none()
            && self.slot_itl.is_none()
            && steps_s.is_some();
        EngineStepTime {
            itl_s: histogram
                .map(|(s, c)| s / c * per_token)
                .or(self.slot_itl.map(|(s, c)| s / c * mtp)),
            itl_per_token: match histogram {
                Some(_) => self.itl_per_token,
                None => self.slot_itl.is_some(),
            },
            steps_s: steps_s.filter(|_| !coarse && !loop_unclean),
            over_waves: wave_itl.is_some(),
            steps_too_coarse: coarse,
            prompt_calls_in_loop: loop_unclean,
        }
    }

    /// Each rank's running batch over the windows, and its steps per second there.
    pub(super) fn rank_windows(&self, in_windows: &[&EngineSample]) -> Vec<RankWindow> {
        let mut ranks: Vec<&String> = in_windows
            .iter()
            .flat_map(|s| s.signals.ranks.keys())
            .collect();
        ranks.sort();
        ranks.dedup();
        if ranks.len() < 2 {
            return Vec::new();
        }
        ranks
            .into_iter()
            .map(|rank| {
                let running: Vec<f64> = in_windows
                    .iter()
                    .filter_map(|s| s.signals.ranks.get(rank)?.running)
                    .collect();
                RankWindow {
                    rank: rank.clone(),
                    running_mean: super::mean(&running),
                    running_min: running.iter().copied().reduce(f64::min),
                    running_max: running.iter().copied().reduce(f64::max),
                    steps_per_s: self
                        .rank_steps
                        .iter()
                        .find(|r| &r.rank == rank)
                        .map(|r| r.steps.dv / r.steps.dt_s),
                }
            })
            .collect()
    }
}

/// llama.cpp's per-slot step time between the first and last of `samples` (docs/ENGINE-METRICS.md
/// §8): `Δtokens_predicted_seconds_total / Δ(tokens_predicted_total − finished requests)`. Each
/// slot adds its generation time (first token to last) and its tokens when it is released, so
/// the time spans one gap fewer than the tokens per request; the requests finished between the
/// two scrapes are the client's (`done_ts`, sorted). Unlike `Δt / Δn_decode` it holds neither
/// the engine's idle time between a closed loop's requests nor the prompt's own steps, only the
/// decode gaps the client's cadence times too. Per token: × MTP for a step. `None` with fewer
/// than [`MIN_FINISHED`] requests finished in between (the counters move only at their ends),
/// or where the seconds' 6 printed digits are too coarse for the increase.
fn slot_itl(samples: &[EngineSample], done_ts: &[f64]) -> Option<(f64, f64)> {
    let both = |s: &EngineSample| {
        let g = &s.signals;
        Some((
            s.t_s,
            g.generation_seconds_total?,
            g.generation_tokens_total?,
        ))
    };
    let (ta, s0, n0) = samples.iter().find_map(both)?;
    let (tb, s1, n1) = samples.iter().rev().find_map(both)?;
    let finished = done_ts.partition_point(|t| *t <= tb) - done_ts.partition_point(|t| *t <= ta);
    let gaps = n1 - n0 - finished as f64;
    let seconds = s1 - s0;
    let precise = seconds >= MIN_QUANTA * significant_quantum(s1);
    (finished >= MIN_FINISHED && gaps > 0.0 && precise).then_some((seconds, gaps))
}

/// Requests that must finish between two scrapes for llama.cpp's slot counters to give a step
/// time (each adds a whole request's gaps at its end).
const MIN_FINISHED: usize = 3;

/// The smallest change a value printed with 6 significant digits can show.
fn significant_quantum(v: f64) -> f64 {
    if v > 0.0 && v.is_finite() {
        10f64.powf(v.log10().floor() - 5.0)
    } else {
        0.0
    }
}

/// The smallest step a value printed with 6 significant digits can show (1 below 10⁶).
fn printed_quantum(v: f64) -> f64 {
    if v < 1e6 || !v.is_finite() {
        1.0
    } else {
        10f64.powf(v.log10().floor() - 5.0)
    }
}

/// One DP rank's steps over the windows and its mean running batch there.
struct RankSteps {
    rank: String,
    steps: Delta,
    running: Option<f64>,
}

/// Each rank's engine steps over the windows, from its own series: SGLang's decode passes;
/// vLLM's inter-token observations over its mean running batch (its `iteration_tokens_total`
/// rises once per front-end with an output, so with one API server per rank it overcounts).
fn rank_steps(
    eng: &[EngineSample],
    windows: &[Window],
    inside: &[&EngineSample],
    itl_per_token: bool,
) -> Vec<RankSteps> {
    let mut ranks: Vec<String> = inside
        .iter()
        .flat_map(|s| s.signals.ranks.keys().cloned())
        .collect();
    ranks.sort();
    ranks.dedup();
    ranks
        .into_iter()
        .filter_map(|rank| {
            let r = rank.as_str();
            let running: Vec<f64> = inside
                .iter()
                .filter_map(|s| s.signals.ranks.get(r)?.running)
                .collect();
            let running = super::mean(&running);
            let itl_count = |s: &Signals| s.ranks.get(r)?.itl_s.map(|h| h.count);
            let steps = match windows_delta(eng, windows, itl_count).filter(|_| !itl_per_token) {
                Some(d) => {
                    let bs = running.filter(|b| *b > 0.0)?;
                    Delta {
                        dt_s: d.dt_s,
                        dv: d.dv / bs,
                    }
                }
                None => windows_delta(eng, windows, |s| s.ranks.get(r)?.steps_total)?,
            };
            Some(RankSteps {
                rank,
                steps,
                running,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;

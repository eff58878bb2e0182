//! The engine's side of a step: counter deltas over the windows or over whole waves, the
//! running / waiting / KV view over the windows (or the requests' span) and busy slots per step.
//! It also decides which intervals are clean
//! decode for the engine's step time: the windows, and whole waves only where the client's gaps over
//! the wave average what they do in its window (else the early requests' inter-token gaps hold
//! the later prefill chunks); and
//! says why a step has no engine step time ([`EngineViewGap`]). Small Rust over the time-sorted samples: a
//! counter's delta over an interval is its first and last sample inside it, found by binary
//! search (see [`crate::recording::Recording`] on why the samples are not a frame).

use ceiling_collectors::engines::{Flavor, Signals};
use serde::Serialize;

use super::counters::EngineStepTime;
use super::decode::DecodeWindow;
use super::requests::StepRequests;
use super::{EngineWindow, mean};
use crate::engine::{self, Delta, EngineSample};
use crate::recording::{Pattern, StepRecord};
use crate::window::Window;

/// Sums a counter's increase over every window.
pub(super) fn windows_delta(
    eng: &[EngineSample],
    windows: &[Window],
    get: impl Fn(&Signals) -> Option<f64> + Copy,
) -> Option<Delta> {
    windows
        .iter()
        .filter_map(|w| engine::delta(engine::inside(eng, w.start_t_s, w.end_t_s), get))
        .reduce(Delta::plus)
}

/// The engine's inter-token histogram (`Δsum`, `Δcount`) over each measured wave, from the last
/// scrape before its first request was sent to the first after its last one was done; summed
/// over the waves.
pub(super) fn waves_itl(
    waves: impl Iterator<Item = (f64, f64)>,
    eng: &[EngineSample],
) -> Option<(f64, f64)> {
    waves
        .filter_map(|(start, end)| {
            // The bracket must really enclose the wave, or it misses some of its tokens.
            engine::enclosing(eng, start, end).and_then(|a| engine::delta_mean(a, |s| s.itl_s))
        })
        .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
}

/// Why a scraped step has no engine step time: no interval of clean decode steps held the
/// engine's counters at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum EngineViewGap {
    /// The step has no decode window.
    NoWindow,
    /// No window held two scrapes, and the whole waves are not clean decode: a wave's prefill
    /// took up to `prefill_steps` engine steps, and the early requests' inter-token gaps hold
    /// the later prefill chunks (the client's own gaps over the wave average more than in its
    /// window). Shorten `--scrape-interval` or lengthen `--output-len`.
    PrefillInWaves { prefill_steps: u32 },
    /// No window held two scrapes carrying the counters.
    FewScrapes,
    /// A closed loop on llama.cpp in which fewer than three requests ended between the
    /// windows' scrapes: its slot counters move only at a request's end, and its decode calls
    /// (`n_decode_total`) there hold the prompts' own calls and the idle turnaround between a
    /// finish and the next send. Run the step longer (more requests end inside it).
    PromptCallsInLoop,
}

/// How far a wave's whole-life chunk gaps may average above its window's before its counters
/// are no clean decode: a fifth of the step-time tolerance.
const WHOLE_WAVE_CLEAN: f64 = 0.01;

/// The step's requests with only the clean waves bracketed: a wave's `done_span` is kept only
/// where the client's gaps over the whole wave average what they do in its window (within
/// [`WHOLE_WAVE_CLEAN`]), so whole-wave counters hold decode steps at the batch alone.
pub(super) fn clean_waves(requests: &StepRequests, decode: &DecodeWindow) -> StepRequests {
    let mut out = requests.clone();
    for w in &mut out.waves {
        let clean = decode
            .whole_over_window
            .get(&w.wave)
            .is_some_and(|r| (r - 1.0).abs() <= WHOLE_WAVE_CLEAN);
        if !clean {
            w.done_span = None;
        }
    }
    out
}

/// Why a step that was scraped has no engine step time (`time`); `None` where it has one, or
/// where no scrape falls in the step at all (nothing to explain: the engine was not scraped).
pub(super) fn engine_view_gap(
    step: &StepRecord,
    windows: &[Window],
    decode: &DecodeWindow,
    eng: &[EngineSample],
    time: &EngineStepTime,
) -> Option<EngineViewGap> {
    let end = step.end_t_s.unwrap_or(f64::INFINITY);
    if time.itl_s.or(time.steps_s).is_some() || engine::inside(eng, step.start_t_s, end).is_empty()
    {
        return None;
    }
    let prefill = decode.prefill_steps.values().copied().max();
    let unclean = decode
        .whole_over_window
        .values()
        .any(|r| (r - 1.0).abs() > WHOLE_WAVE_CLEAN);
    Some(match (windows.is_empty(), step.pattern) {
        (true, _) => EngineViewGap::NoWindow,
        _ if time.prompt_calls_in_loop => EngineViewGap::PromptCallsInLoop,
        (false, Pattern::Wave) if unclean => EngineViewGap::PrefillInWaves {
            prefill_steps: prefill.unwrap_or(1),
        },
        _ => EngineViewGap::FewScrapes,
    })
}

/// The engine's view of a step: running, waiting and KV over the windows (or the requests'
/// span), counters over the whole step, and the client's token totals to compare with them.
pub(super) fn engine_window(
    step: &StepRecord,
    requests: &StepRequests,
    engine_samples: &[EngineSample],
    windows: &[Window],
    in_windows: &[&EngineSample],
    over_requests_span: bool,
) -> EngineWindow {
    let col = |f: &dyn Fn(&Signals) -> Option<f64>| -> Vec<f64> {
        in_windows.iter().filter_map(|s| f(&s.signals)).collect()
    };
    let running = col(&|s| s.running);
    // Engine over the whole step; its counters only where scrapes bracket its traffic.
    let (start, end) = requests.span(step);
    let around = engine::around(engine_samples, start, end);
    let enclosing = engine::enclosing(engine_samples, start, end);
    let step_delta = |get: fn(&Signals) -> Option<f64>| {
        enclosing.and_then(|a| engine::delta(a, get)).map(|d| d.dv)
    };
    EngineWindow {
        samples: in_windows.len(),
        over_requests_span,
        running_mean: mean(&running),
        running_min: running.iter().copied().reduce(f64::min),
        running_max: running.iter().copied().reduce(f64::max),
        waiting_max: col(&|s| s.waiting).into_iter().reduce(f64::max),
        waiting_min: col(&|s| s.waiting).into_iter().reduce(f64::min),
        waiting_max_step: around
            .iter()
            .filter_map(|s| s.signals.waiting)
            .reduce(f64::max),
        slots_full_running: slots_full_running(around),
        busy_slots_per_step: busy_slots_per_step(engine_samples, windows),
        kv_usage_max_frac: col(&|s| s.kv_usage_frac).into_iter().reduce(f64::max),
        kv_capacity_tokens: engine_samples
            .iter()
            .rev()
            .find_map(|s| s.signals.kv_capacity_tokens),
        preemptions: step_delta(|s| s.preemptions_total)
            .or_else(|| preemptions_over_step(step, requests, engine_samples)),
        prefix_cache_queries: step_delta(|s| s.prefix_cache_queries_total),
        prefix_cache_hits: step_delta(|s| s.prefix_cache_hits_total),
        generation_tokens: step_delta(|s| s.generation_tokens_total),
        prompt_tokens: step_delta(|s| s.prompt_tokens_total),
        client_output_tokens: requests.client_output_tokens,
        client_prompt_tokens: requests.client_prompt_tokens,
    }
}

/// The DP ranks whose steps an exposition's counters hold: its rank labels' count; llama.cpp
/// labels no rank, and its one exposition sums every rank behind it (the simulator's `--dp`),
/// so the probe's `--dp`, those with a sequence to step (bs 1 on DP 2 steps one rank); the
/// probe's `--dp` where no scrape fell in the windows.
pub(super) fn exposition_ranks(last: Option<&EngineSample>, dp: u32, batch_size: u32) -> f64 {
    match last {
        Some(s) if s.signals.flavor == Some(Flavor::Llamacpp) => {
            f64::from(dp.min(batch_size.max(1)))
        }
        Some(s) => s.signals.dp_ranks.max(1) as f64,
        None => f64::from(dp),
    }
}

/// llama.cpp's busy slots at the scrapes where a task waited for a slot (`requests_deferred`
/// above 0: server-context.cpp defers a task only when no slot is free), the most of them.
fn slots_full_running(around: &[EngineSample]) -> Option<f64> {
    around
        .iter()
        .filter(|s| s.signals.flavor == Some(Flavor::Llamacpp))
        .filter(|s| s.signals.waiting.is_some_and(|w| w > 0.0))
        .filter_map(|s| s.signals.running)
        .reduce(f64::max)
}

/// The windows' busy slots per step, each window weighted by the steps it holds.
fn busy_slots_per_step(eng: &[EngineSample], windows: &[Window]) -> Option<f64> {
    let (sum, steps) = windows
        .iter()
        .filter_map(|w| engine::busy_slots(engine::inside(eng, w.start_t_s, w.end_t_s)))
        .fold((0.0, 0.0), |(s, n), (mean, steps)| {
            (s + mean * steps, n + steps)
        });
    (steps > 0.0).then(|| sum / steps)
}

/// Preemptions seen anywhere over the step (its start to its end or its last request's), where
/// the windows saw none.
fn preemptions_over_step(
    step: &StepRecord,
    requests: &StepRequests,
    engine_samples: &[EngineSample],
) -> Option<f64> {
    let (start, end) = requests.span(step);
    engine::preemptions_seen(engine::around(engine_samples, start, end))
}

//! The request-dependent half of the engine view as loops over request records: the oracle of
//! [`crate::step_time`]'s engine view.

use ceiling_collectors::engines::Signals;

use crate::engine::{self, EngineSample};
use crate::metrics;
use crate::recording::{Outcome, RequestRecord, StepRecord};
use crate::step_time::{EngineWindow, LittlesLaw, bracket, busy_slots_per_step, mean, rel};
use crate::window::Window;

/// The engine's inter-token histogram (`Δsum`, `Δcount`) over each measured wave, from the last
/// scrape before its first request was sent to the first after its last one was done; summed
/// over the waves.
pub(super) fn waves_itl(requests: &[&RequestRecord], eng: &[EngineSample]) -> Option<(f64, f64)> {
    let mut waves: std::collections::BTreeMap<u32, (f64, f64)> = std::collections::BTreeMap::new();
    for r in requests.iter().filter(|r| !r.warmup) {
        let (Some(w), Some(done)) = (r.wave, r.done_t_s) else {
            continue;
        };
        let e = waves.entry(w).or_insert((r.sent_t_s, done));
        *e = (e.0.min(r.sent_t_s), e.1.max(done));
    }
    waves
        .values()
        .filter_map(|&(start, end)| {
            let around = bracket(eng, start, end);
            // The bracket must really enclose the wave, or it misses some of its tokens.
            let encloses = around.first().is_some_and(|s| s.t_s <= start)
                && around.last().is_some_and(|s| s.t_s >= end);
            encloses
                .then(|| engine::delta_mean(around, |s| s.itl_s))
                .flatten()
        })
        .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
}

/// From the first non-warm-up request sent to the last one done.
pub(super) fn requests_span(requests: &[&RequestRecord]) -> Option<(f64, f64)> {
    let measured = requests.iter().filter(|r| !r.warmup);
    let start = measured.clone().map(|r| r.sent_t_s).reduce(f64::min)?;
    let end = measured.filter_map(|r| r.done_t_s).reduce(f64::max)?;
    (end > start).then_some((start, end))
}

/// The engine's view of a step: running, waiting and KV over the windows (or the requests'
/// span), counters over the whole step, and the client's token totals to compare with them.
pub(super) fn engine_window(
    step: &StepRecord,
    requests: &[&RequestRecord],
    engine_samples: &[EngineSample],
    windows: &[Window],
    in_windows: &[&EngineSample],
    over_requests_span: bool,
) -> EngineWindow {
    let col = |f: &dyn Fn(&Signals) -> Option<f64>| -> Vec<f64> {
        in_windows.iter().filter_map(|s| f(&s.signals)).collect()
    };
    let running = col(&|s| s.running);
    // Engine over the whole step.
    let step_end = step.end_t_s.unwrap_or_else(|| {
        requests
            .iter()
            .filter_map(|r| r.done_t_s)
            .fold(step.start_t_s, f64::max)
    });
    let around = bracket(engine_samples, step.start_t_s, step_end);
    let step_delta = |get: fn(&Signals) -> Option<f64>| engine::delta(around, get).map(|d| d.dv);
    EngineWindow {
        samples: in_windows.len(),
        over_requests_span,
        running_mean: mean(&running),
        running_min: running.iter().copied().reduce(f64::min),
        running_max: running.iter().copied().reduce(f64::max),
        waiting_max: col(&|s| s.waiting).into_iter().reduce(f64::max),
        waiting_max_step: around
            .iter()
            .filter_map(|s| s.signals.waiting)
            .reduce(f64::max),
        busy_slots_per_step: busy_slots_per_step(engine_samples, windows),
        kv_usage_max_frac: col(&|s| s.kv_usage_frac).into_iter().reduce(f64::max),
        kv_capacity_tokens: engine_samples
            .iter()
            .rev()
            .find_map(|s| s.signals.kv_capacity_tokens),
        preemptions: step_delta(|s| s.preemptions_total),
        prefix_cache_queries: step_delta(|s| s.prefix_cache_queries_total),
        prefix_cache_hits: step_delta(|s| s.prefix_cache_hits_total),
        generation_tokens: step_delta(|s| s.generation_tokens_total),
        prompt_tokens: step_delta(|s| s.prompt_tokens_total),
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
    }
}

/// Little's law over the span of the measured requests; needs ten engine samples in it.
pub(super) fn littles_law(measured: &[&RequestRecord], eng: &[EngineSample]) -> Option<LittlesLaw> {
    let start = measured.iter().map(|r| r.sent_t_s).reduce(f64::min)?;
    let end = measured
        .iter()
        .filter_map(|r| r.done_t_s)
        .reduce(f64::max)?;
    let inside = engine::inside(eng, start, end);
    // Boundary scrapes are taken when a wave is over and the engine idle: they would bias the
    // mean of the interval scrapes, which sample the span evenly.
    let in_flight: Vec<f64> = inside
        .iter()
        .filter(|s| !s.boundary)
        .filter_map(|s| {
            s.signals
                .running
                .map(|r| r + s.signals.waiting.unwrap_or(0.0))
        })
        .collect();
    if in_flight.len() < 10 || end <= start {
        return None;
    }
    let e2e: Vec<f64> = measured.iter().filter_map(|r| metrics::e2e_s(r)).collect();
    let e2e_mean_s = mean(&e2e)?;
    let qps = measured.iter().filter(|r| r.outcome == Outcome::Ok).count() as f64 / (end - start);
    let engine_in_flight_mean = mean(&in_flight)?;
    Some(LittlesLaw {
        engine_in_flight_mean,
        qps,
        e2e_mean_s,
        rel_err: rel(qps * e2e_mean_s, engine_in_flight_mean),
    })
}

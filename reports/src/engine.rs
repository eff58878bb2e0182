//! The engine's view as the analysis uses it: each scrape reduced to canonical [`Signals`]
//! through the collectors' adapter contract, and counter deltas over a time interval. It never
//! knows an engine metric name; that is `ceiling_collectors::engines`' business.

use ceiling_collectors::ScrapeRecord;
use ceiling_collectors::engines::{self, Flavor, Signals, SumCount};
use serde::Serialize;

/// The adapter flavor of a run's recorded engine kind (`vllm`, `sglang`, `llamacpp`).
pub fn flavor(kind: Option<&str>) -> Option<Flavor> {
    match kind? {
        "vllm" => Some(Flavor::Vllm),
        "sglang" => Some(Flavor::Sglang),
        "llamacpp" | "llama.cpp" | "llama-cpp" => Some(Flavor::Llamacpp),
        _ => None,
    }
}

/// One scrape's canonical signals at the instant it was taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineSample {
    pub t_s: f64,
    pub signals: Signals,
    /// A scrape the probe took between steps or waves (see [`ScrapeRecord::boundary`]).
    pub boundary: bool,
}

/// Reduces every successful scrape to signals; failed scrapes (no samples) are skipped.
pub fn engine_samples(scrapes: &[ScrapeRecord], flavor: Option<Flavor>) -> Vec<EngineSample> {
    let mut out: Vec<EngineSample> = scrapes
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| EngineSample {
            t_s: s.t_s,
            signals: engines::signals(&s.samples, flavor),
            boundary: s.boundary,
        })
        .collect();
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    out
}

/// The engine samples taken inside `[start, end]`.
pub fn inside(samples: &[EngineSample], start: f64, end: f64) -> &[EngineSample] {
    let lo = samples.partition_point(|s| s.t_s < start);
    let hi = samples.partition_point(|s| s.t_s <= end);
    &samples[lo..hi.max(lo)]
}

/// The samples from the last one at or before `start` to the first at or after `end`: what
/// brackets a span whose counters move only at its edges (llama.cpp's spec-decode counters at
/// each request's end).
pub fn around(samples: &[EngineSample], start: f64, end: f64) -> &[EngineSample] {
    let lo = samples
        .partition_point(|s| s.t_s <= start)
        .saturating_sub(1);
    let hi = (samples.partition_point(|s| s.t_s < end) + 1).min(samples.len());
    &samples[lo.min(hi)..hi]
}

/// [`around`] where it really encloses `[start, end]` (a sample at or before `start` and one at
/// or after `end`); `None` where it does not, as a delta over it would miss part of the span.
pub fn enclosing(samples: &[EngineSample], start: f64, end: f64) -> Option<&[EngineSample]> {
    let around = around(samples, start, end);
    let encloses = around.first().is_some_and(|s| s.t_s <= start)
        && around.last().is_some_and(|s| s.t_s >= end);
    encloses.then_some(around)
}

/// Step `i`'s samples, given every step's traffic (first send, last done; `None` for a step
/// that sent nothing): those taken after the last earlier step's traffic ended and before the
/// next later step's began. A step's counters bracketed by a scrape from its neighbour's
/// traffic (the scrape between them lost) would count that traffic as its own.
pub fn between_neighbours<'a>(
    samples: &'a [EngineSample],
    traffic: &[Option<(f64, f64)>],
    i: usize,
) -> &'a [EngineSample] {
    let after = traffic[..i].iter().rev().find_map(|t| *t).map(|t| t.1);
    let before = traffic
        .get(i + 1..)
        .and_then(|t| t.iter().find_map(|t| *t))
        .map(|t| t.0);
    let lo = after.map_or(0, |a| samples.partition_point(|s| s.t_s < a));
    let hi = before.map_or(samples.len(), |b| samples.partition_point(|s| s.t_s <= b));
    &samples[lo..hi.max(lo)]
}

/// Requests the engine preempted over `samples` where it exposes no cumulative counter, only
/// a gauge of retractions since its last log point (SGLang 0.5.4–0.5.7 `num_retracted_reqs`):
/// the largest reading, a lower bound (`None` without the gauge).
pub fn preemptions_seen(samples: &[EngineSample]) -> Option<f64> {
    samples
        .iter()
        .filter_map(|s| s.signals.preemptions_recent)
        .reduce(f64::max)
}

/// A counter's increase between the first and the last sample of `samples`, with the time
/// between them. `None` when fewer than two samples carry the counter, or it went backwards
/// (an engine restart).
pub fn delta(samples: &[EngineSample], get: impl Fn(&Signals) -> Option<f64>) -> Option<Delta> {
    let first = samples
        .iter()
        .find_map(|s| get(&s.signals).map(|v| (s.t_s, v)))?;
    let last = samples
        .iter()
        .rev()
        .find_map(|s| get(&s.signals).map(|v| (s.t_s, v)))?;
    if last.0 <= first.0 || last.1 < first.1 {
        return None;
    }
    Some(Delta {
        dt_s: last.0 - first.0,
        dv: last.1 - first.1,
    })
}

/// A histogram's `Δsum / Δcount` between the first and last sample carrying it.
pub fn delta_mean(
    samples: &[EngineSample],
    get: impl Fn(&Signals) -> Option<SumCount>,
) -> Option<(f64, f64)> {
    let sum = delta(samples, |s| get(s).map(|h| h.sum))?;
    let count = delta(samples, |s| get(s).map(|h| h.count))?;
    (count.dv > 0.0).then_some((sum.dv, count.dv))
}

/// Busy slots per engine step between the first and last sample of `samples` that carry
/// llama.cpp's running average (`busy_slots_per_decode`) and step count: the mean and the steps
/// it covers, so several intervals combine weighted by their steps. `None` without two such
/// samples or without a step between them.
pub fn busy_slots(samples: &[EngineSample]) -> Option<(f64, f64)> {
    let has = |s: &&EngineSample| {
        s.signals.busy_slots_per_decode.is_some() && s.signals.steps_total.is_some()
    };
    let first = samples.iter().find(has)?;
    let last = samples.iter().rev().find(has)?;
    let mean = engines::busy_slots_between(&first.signals, &last.signals)?;
    let steps = last.signals.steps_total? - first.signals.steps_total?;
    Some((mean, steps))
}

/// An increase of a counter over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    pub dt_s: f64,
    pub dv: f64,
}

impl Delta {
    /// Adds another interval's increase (several waves of one step).
    pub fn plus(self, other: Delta) -> Delta {
        Delta {
            dt_s: self.dt_s + other.dt_s,
            dv: self.dv + other.dv,
        }
    }
}

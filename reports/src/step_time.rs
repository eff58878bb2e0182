//! Step time three ways, per step, inside the measurement window ([`crate::window`]):
//!
//! 1. **Client cadence**: the median gap between consecutive chunks of one request, both inside
//!    a window (all `bs` sequences decoding), divided by the engine steps one chunk spans
//!    (`tokens_per_chunk / MTP`, 1 when the chunk's tokens are unknown):
//!    `t_fwd_client = median_gap × MTP / tokens_per_chunk`.
//! 2. **Identity**: `t_fwd_identity = MTP × TPOT`, TPOT the median over the step's measured
//!    requests ([`crate::metrics::tpot_s`]).
//! 3. **Engine counters** over the same windows: `Δ itl_sum / Δ itl_count` (vLLM's
//!    inter-token-latency histogram; one observation per sequence per step) and
//!    `DP × Δt / Δ steps_total` (steps summed over DP ranks).
//!
//! MTP (tokens per sequence per step) comes from the spec-decode counters
//! (`1 + Δaccepted / Δdrafts`), else the engine's `Δ generation_tokens / (Δ steps × bs)`, else
//! the client's tokens per chunk, else 1.
//!
//! Also per step: the engine's batch, queue, KV, preemptions, prefix-cache and token counters;
//! the GPUs over the windows; the throughput identity and Little's law. Pure functions.

use serde::Serialize;

use ceiling_collectors::GpuSample;
use ceiling_collectors::engines::Signals;

use crate::engine::{self, Delta, EngineSample};
use crate::metrics;
use crate::recording::{Outcome, Pattern, RequestRecord, StepRecord};
use crate::window::{self, Window};

/// Where a step's MTP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MtpSource {
    SpecDecodeCounters,
    EngineTokensPerStep,
    ClientTokensPerChunk,
    Assumed,
}

/// The engine's view over a step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineWindow {
    /// Scrapes inside the windows.
    pub samples: usize,
    /// No measurement window was found, so the running/waiting/KV figures are over the span of
    /// the step's measured requests instead.
    pub over_requests_span: bool,
    pub running_mean: Option<f64>,
    pub running_min: Option<f64>,
    pub running_max: Option<f64>,
    pub waiting_max: Option<f64>,
    /// The most requests waiting in the engine at any scrape of the whole step (first scrape at
    /// or before its start to first at or after its end). A wave whose requests queue for a
    /// slot may have no window at all, so the window's `waiting_max` cannot see it.
    pub waiting_max_step: Option<f64>,
    /// Mean sequences per engine step over the windows, from llama.cpp's running average of
    /// busy slots per decode call (`(r₂·n₂ − r₁·n₁)/(n₂ − n₁)` per window, weighted by steps).
    pub busy_slots_per_step: Option<f64>,
    pub kv_usage_max_frac: Option<f64>,
    pub kv_capacity_tokens: Option<f64>,
    /// Over the whole step (first scrape at or before its start to first at or after its end).
    pub preemptions: Option<f64>,
    pub prefix_cache_queries: Option<f64>,
    pub prefix_cache_hits: Option<f64>,
    pub generation_tokens: Option<f64>,
    pub prompt_tokens: Option<f64>,
    /// Output tokens of every request of the step (warm-up included, as the engine counts them).
    pub client_output_tokens: u64,
    pub client_prompt_tokens: u64,
}

/// The GPUs over a step's windows (all GPUs together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuWindow {
    pub samples: usize,
    pub gpus: usize,
    pub util_mean_pct: Option<f64>,
    pub util_max_pct: Option<f64>,
    pub mem_used_max_bytes: Option<u64>,
    /// Highest `mem_used / mem_total` of any GPU.
    pub mem_used_max_frac: Option<f64>,
    /// Mean power per GPU.
    pub power_mean_w: Option<f64>,
    pub power_max_w: Option<f64>,
    pub sm_clock_mean_mhz: Option<f64>,
    pub sm_clock_min_mhz: Option<u32>,
    /// OR of every sample's NVML clock-event reasons.
    pub throttle_reasons_mask: Option<u64>,
    /// The reasons in the mask that slow the GPU down (power cap, thermal, hardware slowdown).
    pub throttle_reasons: Vec<String>,
    /// Power drawn by all GPUs together, from the energy counters (else mean power × GPUs).
    pub node_power_w: Option<f64>,
    /// Node energy per output token: node power / output tokens per second in the windows.
    pub energy_per_output_token_j: Option<f64>,
}

/// Little's law over a step: mean requests in the engine vs `QPS × mean E2E` from the client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LittlesLaw {
    pub engine_in_flight_mean: f64,
    pub qps: f64,
    pub e2e_mean_s: f64,
    pub rel_err: f64,
}

/// One step's timing row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTiming {
    pub step_idx: u32,
    pub batch_size: u32,
    /// `batch_size / DP`: the batch one engine rank runs.
    pub bs_per_rank: f64,
    pub input_len: u32,
    pub output_len: u32,
    pub windows: Vec<Window>,
    pub window_s: f64,
    pub mtp: f64,
    pub mtp_source: MtpSource,
    pub tokens_per_chunk: Option<f64>,
    pub chunk_gap_median_s: Option<f64>,
    pub chunk_gaps: usize,
    pub tpot_median_s: Option<f64>,
    pub t_fwd_client_s: Option<f64>,
    pub t_fwd_identity_s: Option<f64>,
    pub t_fwd_engine_itl_s: Option<f64>,
    pub t_fwd_engine_steps_s: Option<f64>,
    /// ITL-based where the engine has it, else steps-based.
    pub t_fwd_engine_s: Option<f64>,
    /// The step time the fit uses: client cadence, else identity, else engine.
    pub t_fwd_s: Option<f64>,
    /// `|client − engine| / engine`.
    pub client_engine_rel_diff: Option<f64>,
    /// Wave prefill rate: median over waves of `bs × input_len / (last first token − sent)`.
    pub prefill_rate_tok_s: Option<f64>,
    /// Output tokens that arrived inside the windows, per second of window.
    pub throughput_window_tok_s: Option<f64>,
    /// `bs × MTP / t_fwd_identity` (= `bs / TPOT`): the identity's right-hand side.
    pub throughput_identity_tok_s: Option<f64>,
    pub identity_rel_err: Option<f64>,
    pub littles_law: Option<LittlesLaw>,
    /// The roofline's minimum step time at this batch and context, where a roofline was given.
    pub roofline_t_min_s: Option<f64>,
    /// `t_min / t_fwd`: the fraction of the hardware's limit this step reaches.
    pub roofline_efficiency: Option<f64>,
    pub engine: EngineWindow,
    pub gpu: GpuWindow,
}

/// NVML clock-event reasons that slow the GPU (names as NVML documents them).
const SLOWDOWN_REASONS: [(u64, &str); 5] = [
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
];

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// Sums a counter's increase over every window.
fn windows_delta(
    eng: &[EngineSample],
    windows: &[Window],
    get: impl Fn(&Signals) -> Option<f64> + Copy,
) -> Option<Delta> {
    windows
        .iter()
        .filter_map(|w| engine::delta(engine::inside(eng, w.start_t_s, w.end_t_s), get))
        .reduce(Delta::plus)
}

/// From the first non-warm-up request sent to the last one done.
fn requests_span(requests: &[&RequestRecord]) -> Option<(f64, f64)> {
    let measured = requests.iter().filter(|r| !r.warmup);
    let start = measured.clone().map(|r| r.sent_t_s).reduce(f64::min)?;
    let end = measured.filter_map(|r| r.done_t_s).reduce(f64::max)?;
    (end > start).then_some((start, end))
}

/// The samples from the last one at or before `start` to the first at or after `end`.
fn bracket(eng: &[EngineSample], start: f64, end: f64) -> &[EngineSample] {
    let lo = eng.partition_point(|s| s.t_s <= start).saturating_sub(1);
    let hi = (eng.partition_point(|s| s.t_s < end) + 1).min(eng.len());
    &eng[lo..hi.max(lo)]
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
    let windows = window::step_windows(step, requests);
    let window_s = window::total_s(&windows);
    let measured: Vec<&RequestRecord> = requests
        .iter()
        .copied()
        .filter(|r| metrics::is_measured_ok(r))
        .collect();

    // Client chunks inside the windows.
    let mut gaps = Vec::new();
    let (mut tok_known, mut chunks_known) = (0u64, 0u64);
    let mut window_tokens = 0.0;
    let mut window_tokens_known = true;
    for r in requests.iter().filter(|r| !r.warmup) {
        for pair in r.chunks.windows(2) {
            let w = window::index_of(&windows, pair[0].t_s);
            if w.is_some() && w == window::index_of(&windows, pair[1].t_s) {
                gaps.push(pair[1].t_s - pair[0].t_s);
                if let Some(n) = pair[1].tokens {
                    tok_known += u64::from(n);
                    chunks_known += 1;
                }
            }
        }
        for c in &r.chunks {
            let Some(i) = window::index_of(&windows, c.t_s) else {
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
    let tokens_per_chunk = (chunks_known > 0).then(|| tok_known as f64 / chunks_known as f64);
    let chunk_gap_median_s = metrics::median(&gaps);

    // Engine over the windows; where no moment had all bs decoding (the engine queued or
    // preempted them), over the span of the step's measured requests, so the queue that
    // prevented the window is still seen.
    let span = requests_span(requests);
    let over_requests_span = windows.is_empty() && span.is_some();
    let in_windows: Vec<&EngineSample> = engine_samples
        .iter()
        .filter(|s| match span {
            Some((a, b)) if over_requests_span => s.t_s >= a && s.t_s <= b,
            _ => window::index_of(&windows, s.t_s).is_some(),
        })
        .collect();
    let col = |f: &dyn Fn(&Signals) -> Option<f64>| -> Vec<f64> {
        in_windows.iter().filter_map(|s| f(&s.signals)).collect()
    };
    let running = col(&|s| s.running);
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
    let t_fwd_client_s = chunk_gap_median_s.map(|g| g / steps_per_chunk);
    let tpot_median_s = metrics::median(
        &measured
            .iter()
            .filter_map(|r| metrics::tpot_s(r))
            .collect::<Vec<_>>(),
    );
    let t_fwd_identity_s = tpot_median_s.map(|t| mtp * t);
    let t_fwd_engine_itl_s = itl.map(|(s, c)| s / c);
    let t_fwd_engine_steps_s = d_steps
        .filter(|d| d.dv > 0.0)
        .map(|d| dp_ranks * d.dt_s / d.dv);
    let t_fwd_engine_s = t_fwd_engine_itl_s.or(t_fwd_engine_steps_s);
    let t_fwd_s = t_fwd_client_s.or(t_fwd_identity_s).or(t_fwd_engine_s);
    let client_engine_rel_diff = t_fwd_client_s.zip(t_fwd_engine_s).map(|(c, e)| rel(c, e));

    // Prefill rate per wave.
    let prefill_rate_tok_s = if step.pattern == Pattern::Wave {
        let mut rates = Vec::new();
        for w in &windows {
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
    } else {
        None
    };

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

    // Engine over the whole step.
    let step_end = step.end_t_s.unwrap_or_else(|| {
        requests
            .iter()
            .filter_map(|r| r.done_t_s)
            .fold(step.start_t_s, f64::max)
    });
    let around = bracket(engine_samples, step.start_t_s, step_end);
    let step_delta = |get: fn(&Signals) -> Option<f64>| engine::delta(around, get).map(|d| d.dv);
    let engine = EngineWindow {
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
        busy_slots_per_step: busy_slots_per_step(engine_samples, &windows),
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
    };

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
        chunk_gaps: gaps.len(),
        tpot_median_s,
        t_fwd_client_s,
        t_fwd_identity_s,
        t_fwd_engine_itl_s,
        t_fwd_engine_steps_s,
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

/// Little's law over the span of the measured requests; needs ten engine samples in it.
fn littles_law(measured: &[&RequestRecord], eng: &[EngineSample]) -> Option<LittlesLaw> {
    let start = measured.iter().map(|r| r.sent_t_s).reduce(f64::min)?;
    let end = measured
        .iter()
        .filter_map(|r| r.done_t_s)
        .reduce(f64::max)?;
    let inside = engine::inside(eng, start, end);
    let in_flight: Vec<f64> = inside
        .iter()
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

fn gpu_window(gpu: &[GpuSample], windows: &[Window], tok_s: Option<f64>) -> GpuWindow {
    let inside: Vec<&GpuSample> = gpu
        .iter()
        .filter(|g| window::index_of(windows, g.t_s).is_some())
        .collect();
    let mut gpus: Vec<u32> = inside.iter().map(|g| g.gpu_index).collect();
    gpus.sort_unstable();
    gpus.dedup();
    let f = |get: &dyn Fn(&GpuSample) -> Option<f64>| -> Vec<f64> {
        inside.iter().filter_map(|g| get(g)).collect()
    };
    let util = f(&|g| g.util_gpu_pct);
    let power = f(&|g| g.power_w);
    let clock = f(&|g| g.sm_clock_mhz.map(f64::from));
    let mask = inside
        .iter()
        .filter_map(|g| g.throttle_reasons)
        .reduce(|a, b| a | b);
    // Node power from each GPU's energy counter over each window.
    let mut node_power = 0.0;
    let mut have_energy = false;
    // (gpu, window) → first and last (t, energy) inside it; samples come sorted by time.
    type TimeEnergy = (f64, f64);
    let mut spans: std::collections::BTreeMap<(u32, usize), (TimeEnergy, TimeEnergy)> =
        Default::default();
    for g in &inside {
        let (Some(e), Some(w)) = (g.energy_j, window::index_of(windows, g.t_s)) else {
            continue;
        };
        spans
            .entry((g.gpu_index, w))
            .and_modify(|s| s.1 = (g.t_s, e))
            .or_insert(((g.t_s, e), (g.t_s, e)));
    }
    let mut per_gpu: std::collections::BTreeMap<u32, (f64, f64)> = Default::default();
    for ((idx, _), (a, b)) in spans {
        if b.0 > a.0 && b.1 >= a.1 {
            let acc = per_gpu.entry(idx).or_default();
            acc.0 += b.1 - a.1;
            acc.1 += b.0 - a.0;
        }
    }
    for (de, dt) in per_gpu.values() {
        if *dt > 0.0 {
            have_energy = true;
            node_power += de / dt;
        }
    }
    let power_mean_w = mean(&power);
    let node_power_w = if have_energy {
        Some(node_power)
    } else {
        power_mean_w.map(|p| p * gpus.len() as f64)
    };
    GpuWindow {
        samples: inside.len(),
        gpus: gpus.len(),
        util_mean_pct: mean(&util),
        util_max_pct: util.iter().copied().reduce(f64::max),
        mem_used_max_bytes: inside.iter().filter_map(|g| g.mem_used_bytes).max(),
        mem_used_max_frac: inside
            .iter()
            .filter_map(|g| match (g.mem_used_bytes, g.mem_total_bytes) {
                (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
                _ => None,
            })
            .reduce(f64::max),
        power_mean_w,
        power_max_w: power.iter().copied().reduce(f64::max),
        sm_clock_mean_mhz: mean(&clock),
        sm_clock_min_mhz: inside.iter().filter_map(|g| g.sm_clock_mhz).min(),
        throttle_reasons_mask: mask,
        throttle_reasons: SLOWDOWN_REASONS
            .iter()
            .filter(|(bit, _)| mask.is_some_and(|m| m & bit != 0))
            .map(|(_, name)| (*name).to_string())
            .collect(),
        node_power_w,
        energy_per_output_token_j: node_power_w
            .zip(tok_s)
            .filter(|(_, t)| *t > 0.0)
            .map(|(p, t)| p / t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};

    fn time_all(rec: &SyntheticRun) -> Vec<StepTiming> {
        rec.steps
            .iter()
            .map(|s| {
                let reqs: Vec<&RequestRecord> = rec
                    .requests
                    .iter()
                    .filter(|r| r.step_idx == s.idx)
                    .collect();
                time_step(s, &reqs, &rec.engine, &rec.gpu, 1)
            })
            .collect()
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
}

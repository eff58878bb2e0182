//! Step time three ways, per step, inside the measurement window ([`crate::window`]):
//!
//! 1. **Client cadence**: per request and window (all `bs` sequences decoding), its mean chunk
//!    gap `(last − first) / (chunks − 1)`; the median over requests, divided by the engine steps
//!    one chunk spans (`tokens_per_chunk / MTP`, the whole number nearest it where within 10 %,
//!    1 when the chunk's tokens are unknown): `t_fwd_client = median_request_gap /
//!    steps_per_chunk`.
//! 2. **Identity**: `t_fwd_identity = MTP × TPOT`, TPOT that of the windows (per request and
//!    window, its time in the window and the tokens that arrived in it, pooled), else the
//!    median over the step's measured requests ([`crate::metrics::tpot_s`]) where no window.
//! 3. **Engine counters** over the same windows: `Δ itl_sum / Δ itl_count` (vLLM's
//!    inter-token-latency histogram, one observation per sequence per step; × MTP for SGLang's,
//!    which counts tokens) and `Δt / Δsteps` of the busiest DP rank (`counters`).
//!    Only over clean decode steps: scrapes inside the windows, or whole waves whose client
//!    gaps average what they do in the window (a prefill of one step, no early finisher);
//!    otherwise none, with the reason ([`EngineViewGap`]).
//!
//! MTP (tokens per sequence per step) comes from the spec-decode counters
//! (`1 + Δaccepted / Δdrafts`, over the whole step where they move only at a request's end),
//! else the engine's tokens per sequence per step (waves whose bs divides over the DP ranks: in
//! a closed-loop window some of the bs are in prefill, and an uneven split steps the ranks
//! unevenly), else SGLang's accept-length gauge, else the client's tokens per chunk, else 1
//! (`counters`).
//!
//! Also per step: the engine's batch, queue, KV, preemptions, prefix-cache and token counters;
//! the GPUs over the windows; the throughput identity and Little's law. Pure functions.
//!
//! The client's side is polars: the windows ([`crate::window`]), the cadence inside them
//! (`cadence`) and the requests' figures per step and wave (`requests`) are group-bys over the
//! recording's frames. The engine's and the GPUs' side (`engine_view`, `gpu`) is small Rust
//! over the time-sorted samples, which this module then combines into one [`StepTiming`] per
//! step.

use std::collections::BTreeMap;

use polars::prelude::{DataFrame, PolarsResult};
use serde::Serialize;

use ceiling_collectors::GpuSample;

use crate::engine::EngineSample;
use crate::recording::{Pattern, Recording, StepRecord};
use crate::window::{self, Window};

mod cadence;
mod counters;
mod decode;
mod engine_view;
mod gpu;
mod littles;
mod moments;
mod requests;
pub(crate) use cadence::Cadence;
use cadence::chunk_pass;
pub use counters::RankWindow;
pub(crate) use counters::scraped_spans;
use counters::{EngineCounters, EngineStepTime};
pub(crate) use decode::{DecodePass, DecodeWindow, Req as DecodeReq};
pub use engine_view::EngineViewGap;
use engine_view::{clean_waves, engine_view_gap, engine_window, exposition_ranks};
use gpu::gpu_window;
pub use gpu::{GpuPower, GpuWindow, MIN_WINDOW_S as MIN_GPU_WINDOW_S, PowerSource};
pub(crate) use littles::InFlight;
use littles::{littles_law, unseen_step_s};
pub(crate) use moments::GapMoments;
use moments::acceptance_noise;
use requests::requests_by_step;
pub(crate) use requests::{StepRequests, WaveRequests};

/// Where a step's MTP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MtpSource {
    SpecDecodeCounters,
    EngineTokensPerStep,
    /// SGLang's `spec_accept_length` gauge (its last log window's mean) over the step.
    SpecAcceptLengthGauge,
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
    /// The fewest requests waiting at a scrape in the windows: above 0 when a queue never
    /// drained (a batch beyond the engine's cap), 0 when requests only passed through it.
    #[serde(default)]
    pub waiting_min: Option<f64>,
    /// The most requests waiting in the engine at any scrape of the whole step (first scrape at
    /// or before its start to first at or after its end). A wave whose requests queue for a
    /// slot may have no window at all, so the window's `waiting_max` cannot see it.
    pub waiting_max_step: Option<f64>,
    /// llama.cpp only, whose waiting gauge counts the tasks that found no free slot: the most
    /// busy slots at a scrape of the whole step where a task waited, so every slot was busy.
    /// Below the batch, the slots (`-np`) cap it, whether or not a window saw the queue.
    #[serde(default)]
    pub slots_full_running: Option<f64>,
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

/// Little's law over a step, paired at the engine's interval scrapes in the measured requests'
/// span (`littles`): the engine's requests in flight against the client's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LittlesLaw {
    /// Running + waiting, the mean over the scrapes.
    pub engine_in_flight_mean: f64,
    /// The client's requests sent and not done at the same instants, the mean.
    pub client_in_flight_mean: f64,
    /// Of those, the ones the engine must have counted (past the first chunk any request got
    /// after their send), the mean.
    pub client_seen_mean: f64,
    /// The scrapes compared.
    pub samples: u32,
    /// `QPS × t_fwd`: requests the engine may not count yet because they reached its queue
    /// just after a step ended, one step each; taken off `client_seen_mean`.
    pub step_allowance: f64,
    /// The step's successful measured requests per second over their span, and their mean E2E:
    /// `QPS × E2E` is the client's mean in flight over the whole span.
    pub qps: f64,
    pub e2e_mean_s: f64,
    /// How far the engine's mean falls short of `client_seen_mean − step_allowance`, relative
    /// to `client_seen_mean`; 0 where it does not.
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
    /// The median gap between consecutive chunks of a request inside a window.
    pub chunk_gap_median_s: Option<f64>,
    /// The median over requests of each one's mean chunk gap inside a window (its span over its
    /// chunks less one): what `t_fwd_client_s` is read from.
    pub chunk_gap_span_s: Option<f64>,
    pub chunk_gaps: usize,
    /// The mean length of the chunk gap a window's edge falls in (`Σ g² / Σ g` over the
    /// windows' gaps): each edge of a window is placed to within about this, so figures read
    /// over the window resolve to about `2 × this / window_s`.
    pub chunk_gap_at_edge_s: Option<f64>,
    pub tpot_median_s: Option<f64>,
    /// The TPOT of the windows: per request and window, its time in the window and the tokens
    /// that arrived in it, pooled (`Σ time / Σ tokens`). What the identity reads (a request's whole-life TPOT
    /// holds steps outside the window, e.g. other requests' prefill chunks).
    pub tpot_window_s: Option<f64>,
    /// The most engine steps a measured wave's prefill took (first to last first token).
    pub prefill_steps_max: Option<u32>,
    pub t_fwd_client_s: Option<f64>,
    /// The client's mean chunk gap in the windows over the steps a chunk spans (`cadence`):
    /// what the engine's figure, itself a mean over every gap or step, is compared with.
    pub t_fwd_client_mean_s: Option<f64>,
    pub t_fwd_identity_s: Option<f64>,
    pub t_fwd_engine_itl_s: Option<f64>,
    pub t_fwd_engine_steps_s: Option<f64>,
    /// The engine's inter-token histogram was read over whole waves (each bracketed by the
    /// probe's scrapes between waves) because no window held two scrapes.
    pub t_fwd_engine_over_waves: bool,
    /// The engine's step counter moved too few of its printed quanta in the windows (llama.cpp
    /// prints 6 significant digits: past 10⁶ decode calls a window needs 10⁴+ steps), so no
    /// steps-based time is given; longer outputs widen the windows.
    pub t_fwd_engine_steps_coarse: bool,
    /// ITL-based where the engine has it, else steps-based.
    pub t_fwd_engine_s: Option<f64>,
    /// Why the engine has no step time though it was scraped: no clean decode window.
    pub engine_view_gap: Option<EngineViewGap>,
    /// The step time the fit uses: client cadence, else identity, else engine.
    pub t_fwd_s: Option<f64>,
    /// `|client − engine| / engine`, the client's mean (`t_fwd_client_mean_s`) where it has
    /// one: both average the same gaps.
    pub client_engine_rel_diff: Option<f64>,
    /// How far apart (2σ, relative) the client's mean step time and an engine figure read per
    /// token times the MTP can fall from the acceptance's sampling alone: the tokens of the
    /// gaps in the scraped span are a sample, most of all where a few long gaps weigh the
    /// mean (`2 √(MTP − 1) / (MTP √n_eff)`). `None` where the engine's figure is per step.
    pub acceptance_noise_rel: Option<f64>,
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
    /// Per DP rank, where the engine labels its series by rank (two ranks or more): each one's
    /// running batch and steps over the windows.
    pub ranks: Vec<RankWindow>,
    pub gpu: GpuWindow,
}

pub(crate) fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// `|client − engine| / engine`; the client's figure is its mean where it has one, as the
/// engine's averages the same gaps.
fn rel_diff(client: Option<f64>, engine: Option<f64>) -> Option<f64> {
    client.zip(engine).map(|(c, e)| rel(c, e))
}

/// Times every step of a recording; `dp` the data-parallel ranks.
pub fn time_recording(rec: &Recording, dp: u32) -> PolarsResult<Vec<StepTiming>> {
    let figures = crate::frames::request_figures(rec)?;
    let chunks = crate::frames::chunk_gaps(rec, &figures)?;
    time_steps(rec, &figures, &chunks, dp)
}

/// Times every step of a recording from its per-request figures and chunk gaps
/// ([`crate::frames`]); `dp` the data-parallel ranks.
pub(crate) fn time_steps(
    rec: &Recording,
    figures: &DataFrame,
    chunks: &DataFrame,
    dp: u32,
) -> PolarsResult<Vec<StepTiming>> {
    let mut windows = window::windows_by_step(&rec.steps, figures)?;
    let reqs = decode::window_requests(figures)?;
    let requests = requests_by_step(figures)?;
    let none = StepRequests::default();
    let spans: BTreeMap<u32, Vec<Option<(f64, f64)>>> = windows
        .iter()
        .map(|(s, w)| {
            let r = requests.get(s).unwrap_or(&none);
            (*s, scraped_spans(&rec.engine, w, r))
        })
        .collect();
    let (cadence, mut decode) = chunk_pass(chunks, &windows, &spans, &reqs)?;
    let flight = InFlight::of(figures, chunks)?;
    let traffic: Vec<Option<(f64, f64)>> = rec
        .steps
        .iter()
        .map(|s| requests.get(&s.idx)?.traffic(s))
        .collect();
    Ok(rec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let engine = crate::engine::between_neighbours(&rec.engine, &traffic, i);
            let client = Client {
                windows: windows.remove(&s.idx).unwrap_or_default(),
                cadence: cadence.get(&s.idx).cloned().unwrap_or_default(),
                requests: requests.get(&s.idx).cloned().unwrap_or_default(),
                decode: decode.remove(&s.idx).unwrap_or_default(),
            };
            time_step(s, client, &flight, engine, &rec.gpu, dp)
        })
        .collect())
}

/// The client's side of one step, as the frames' queries computed it.
pub(crate) struct Client {
    pub(crate) windows: Vec<Window>,
    pub(crate) cadence: Cadence,
    pub(crate) requests: StepRequests,
    pub(crate) decode: DecodeWindow,
}

/// Prompt tokens per second of each measured wave, from its first send to its last first token;
/// the median over the waves that have a window. Waves only.
fn prefill_rate(step: &StepRecord, requests: &StepRequests, windows: &[Window]) -> Option<f64> {
    if step.pattern != Pattern::Wave {
        return None;
    }
    let rates: Vec<f64> = windows
        .iter()
        .filter_map(|w| {
            let wave = requests.waves.iter().find(|r| Some(r.wave) == w.wave)?;
            let (s, f) = wave.sent_min.zip(wave.first_token_max)?;
            (f > s).then(|| wave.prompt_tokens_requested / (f - s))
        })
        .collect();
    crate::metrics::median(&rates)
}

/// The interval scrapes inside the windows, or inside `span` where one is given (no window).
fn interval_samples<'a>(
    engine_samples: &'a [EngineSample],
    windows: &[Window],
    span: Option<(f64, f64)>,
) -> Vec<&'a EngineSample> {
    engine_samples
        .iter()
        .filter(|s| !s.boundary)
        .filter(|s| match span {
            Some((a, b)) => s.t_s >= a && s.t_s <= b,
            None => window::index_of(windows, s.t_s).is_some(),
        })
        .collect()
}

/// The interval scrapes the engine's view of a step reads, and whether they are the span of
/// its measured requests: over the windows; where no moment had all bs decoding (the engine
/// queued or preempted them), over the requests' span, so the queue that prevented the window
/// is still seen. Interval scrapes only: a boundary scrape lands between waves, with the engine
/// idle, and would pull the running/KV figures of the requests' span down (it is never inside
/// a window).
fn step_scrapes<'a>(
    engine_samples: &'a [EngineSample],
    windows: &[Window],
    requests: &StepRequests,
) -> (Vec<&'a EngineSample>, bool) {
    let span = requests.measured_span;
    let over_requests_span = windows.is_empty() && span.is_some();
    let in_windows = interval_samples(engine_samples, windows, span.filter(|_| over_requests_span));
    (in_windows, over_requests_span)
}

/// The window's TPOT (a chunk of unknown size is one engine step: MTP tokens) and the
/// identity's step time `MTP × TPOT`, with the window's TPOT, else the requests' median.
fn identity(
    decode: &DecodeWindow,
    tpot_median_s: Option<f64>,
    mtp: f64,
) -> (Option<f64>, Option<f64>) {
    let tpot_window_s = decode
        .tpot_s
        .map(|t| if decode.tokens_known { t } else { t / mtp });
    (
        tpot_window_s,
        tpot_window_s.or(tpot_median_s).map(|t| mtp * t),
    )
}

/// The identity's throughput `bs × MTP / t_fwd_identity` and its relative error against the
/// window's.
fn identity_throughput(
    step: &StepRecord,
    t_fwd_identity_s: Option<f64>,
    throughput_window_tok_s: Option<f64>,
    mtp: f64,
) -> (Option<f64>, Option<f64>) {
    let identity = t_fwd_identity_s.map(|t| f64::from(step.batch_size) * mtp / t);
    let err = throughput_window_tok_s
        .zip(identity)
        .map(|(w, i)| rel(w, i));
    (identity, err)
}

/// Output tokens per second of window. Chunks of unknown size count as the decode pass counts
/// them against each request's `usage` (the first chunk one token), not each chunk as MTP
/// tokens.
fn window_throughput(
    cadence: &Cadence,
    decode: &DecodeWindow,
    window_s: f64,
    mtp: f64,
) -> Option<f64> {
    let counted = cadence.throughput_tok_s(window_s, mtp)?;
    Some(
        if cadence.window_tokens_known || decode.window_tokens <= 0.0 {
            counted
        } else {
            decode.window_tokens / window_s
        },
    )
}

/// Times one step. `flight` and `gpu` are the whole run's, sorted by time; `engine_samples` are the
/// step's: those taken between its neighbours' traffic ([`crate::engine::between_neighbours`]).
pub(crate) fn time_step(
    step: &StepRecord,
    client: Client,
    flight: &InFlight,
    engine_samples: &[EngineSample],
    gpu: &[GpuSample],
    dp: u32,
) -> StepTiming {
    let dp = dp.max(1);
    let bs_per_rank = f64::from(step.batch_size) / f64::from(dp);
    let Client {
        windows,
        cadence,
        requests,
        decode,
    } = client;
    let window_s = window::total_s(&windows);
    let (in_windows, over_requests_span) = step_scrapes(engine_samples, &windows, &requests);
    let dp_ranks = exposition_ranks(in_windows.last().copied(), dp, step.batch_size);
    let counters = EngineCounters::over(engine_samples, &windows, step, &requests)
        .without_uneven_tokens_per_step(step, dp, &requests);
    let tokens_per_chunk = cadence.tokens_per_chunk.or(decode.usage_tokens_per_chunk);
    let (mtp, mtp_source) = counters.mtp(tokens_per_chunk, bs_per_rank, dp_ranks);
    let t_fwd_client_s = cadence.t_fwd_s(mtp);
    let t_fwd_client_mean_s = cadence.t_fwd_mean_s(mtp);
    let tpot_median_s = requests.tpot_median_s;
    let (tpot_window_s, t_fwd_identity_s) = identity(&decode, tpot_median_s, mtp);
    let clean = clean_waves(&requests, &decode);
    let engine_time: EngineStepTime =
        counters.step_time(step, &clean, engine_samples, dp_ranks, mtp);
    let t_fwd_engine_s = engine_time.itl_s.or(engine_time.steps_s);
    let engine_view_gap = engine_view_gap(step, &windows, &decode, engine_samples, &engine_time);
    let t_fwd_s = t_fwd_client_s.or(t_fwd_identity_s).or(t_fwd_engine_s);
    let client_engine_rel_diff = rel_diff(t_fwd_client_mean_s.or(t_fwd_client_s), t_fwd_engine_s);
    let acceptance_noise_rel = (engine_time.itl_s.is_some() && engine_time.itl_per_token)
        .then(|| acceptance_noise(mtp, cadence.scraped_gaps_n_eff))
        .flatten();
    let prefill_rate_tok_s = prefill_rate(step, &requests, &windows);
    let throughput_window_tok_s = window_throughput(&cadence, &decode, window_s, mtp);
    let (throughput_identity_tok_s, identity_rel_err) =
        identity_throughput(step, t_fwd_identity_s, throughput_window_tok_s, mtp);
    let ranks = counters.rank_windows(&in_windows);
    let engine = engine_window(
        step,
        &requests,
        engine_samples,
        &windows,
        &in_windows,
        over_requests_span,
    );
    let unseen = unseen_step_s(dp, t_fwd_s, cadence.gap_at_edge_s);
    let littles_law = littles_law(&requests, flight, engine_samples, unseen);
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
        tokens_per_chunk: cadence.tokens_per_chunk,
        chunk_gap_median_s: cadence.gap_median_s,
        chunk_gap_span_s: cadence.span_gap_median_s,
        chunk_gaps: cadence.gaps,
        chunk_gap_at_edge_s: cadence.gap_at_edge_s,
        tpot_median_s,
        tpot_window_s,
        prefill_steps_max: decode.prefill_steps.values().copied().max(),
        t_fwd_client_s,
        t_fwd_client_mean_s,
        t_fwd_identity_s,
        t_fwd_engine_itl_s: engine_time.itl_s,
        t_fwd_engine_steps_s: engine_time.steps_s,
        t_fwd_engine_over_waves: engine_time.over_waves,
        t_fwd_engine_steps_coarse: engine_time.steps_too_coarse,
        t_fwd_engine_s,
        engine_view_gap,
        t_fwd_s,
        client_engine_rel_diff,
        acceptance_noise_rel,
        prefill_rate_tok_s,
        throughput_window_tok_s,
        throughput_identity_tok_s,
        identity_rel_err,
        littles_law,
        roofline_t_min_s: None,
        roofline_efficiency: None,
        engine,
        ranks,
        gpu,
    }
}

#[cfg(test)]
mod tests;

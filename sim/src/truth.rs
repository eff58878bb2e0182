//! The ground truth: what the simulated engine actually did (true step durations per running
//! batch size, token and request totals), served as `GET /sim/truth` and by
//! [`crate::SimHandle::truth`]. Only aggregates; it never decides anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::{Faults, FaultsInjected};
use crate::flavor::SimFlavor;
use crate::profile::Profile;
use crate::stats::{RankStats, StepAgg};

/// Steps that ran with one running batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTruth {
    /// Sequences in the step (per DP rank).
    pub batch_size: u32,
    pub count: u64,
    /// Mean actual duration, wall seconds.
    pub mean_s: f64,
    /// Mean nominal duration the cost model asked for (already divided by the time scale).
    pub nominal_mean_s: f64,
}

/// Per-rank live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankTruth {
    pub rank: u32,
    pub running: u32,
    pub waiting: u32,
    pub kv_used_blocks: u32,
    pub steps: u64,
    /// The rank's running batch over its steps, weighted by their time (`Σ bs × t / Σ t`;
    /// `None` before a step ran): ranks that ran unlike batches show here.
    #[serde(default)]
    pub batch_mean: Option<f64>,
}

/// Totals over all ranks, counted when the scheduler delivered them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests_finished: u64,
    pub requests_aborted: u64,
    /// llama.cpp: of the aborted, those its KV cache could not hold ("Context size has been
    /// exceeded.", sent to every processing slot at once).
    #[serde(default)]
    pub context_exceeded: u64,
    /// Steps that left a waiting request out for want of free KV blocks (below the sequence
    /// cap), summed over the ranks.
    #[serde(default)]
    pub kv_deferred_steps: u64,
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    /// Prompt tokens the steps computed (prefill chunks, recomputes after preemption
    /// included); neither prefix-cache hits nor prompts whose KV came from a prefill engine.
    #[serde(default)]
    pub prefill_tokens_computed: u64,
    pub generation_tokens: u64,
    pub preemptions: u64,
    pub steps: u64,
    /// Speculative decoding: verify steps (one per decoding sequence per step) and the draft
    /// tokens they accepted, counted as the steps ran (whatever an engine exposes when).
    #[serde(default)]
    pub spec_verify_steps: u64,
    #[serde(default)]
    pub spec_accepted: u64,
}

impl Totals {
    /// The true mean accept length (tokens per sequence per step, the bonus token included):
    /// `1 + accepted / verify steps`; `None` without speculative decoding.
    pub fn accept_length(&self) -> Option<f64> {
        (self.spec_verify_steps > 0)
            .then(|| 1.0 + self.spec_accepted as f64 / self.spec_verify_steps as f64)
    }
}

/// How far the HTTP front-end fell behind the schedulers: for each streamed chunk, the seconds
/// from its step's end to its encoding. A front-end that cannot keep up (hundreds of streams on
/// a busy host, as a real engine's API server) delivers its chunks further apart than the steps
/// ran, which the client then measures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrontendLag {
    pub chunks: u64,
    pub mean_s: f64,
    pub max_s: f64,
}

impl FrontendLag {
    /// Adds one chunk's lag.
    pub(crate) fn add(&mut self, lag_s: f64) {
        self.chunks += 1;
        self.mean_s += (lag_s - self.mean_s) / self.chunks as f64;
        self.max_s = self.max_s.max(lag_s);
    }
}

/// Everything `/sim/truth` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub flavor: String,
    pub dp: u32,
    pub time_scale: f64,
    pub profile: Profile,
    /// Steps with no prefill tokens, by batch size.
    pub decode_steps: Vec<StepTruth>,
    /// Steps that computed prefill tokens, by batch size.
    pub mixed_steps: Vec<StepTruth>,
    pub totals: Totals,
    pub ranks: Vec<RankTruth>,
    pub faults: FaultsConfigTruth,
    pub faults_injected: FaultsInjected,
    #[serde(default)]
    pub frontend_lag: FrontendLag,
}

/// The fault rates the sim runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultsConfigTruth {
    pub http_500: f64,
    pub http_429: f64,
    pub drop: f64,
    pub stall: f64,
    pub stall_ms: u64,
    pub bad_metrics: f64,
}

impl From<&Faults> for FaultsConfigTruth {
    fn from(f: &Faults) -> Self {
        FaultsConfigTruth {
            http_500: f.http_500,
            http_429: f.http_429,
            drop: f.drop,
            stall: f.stall,
            stall_ms: f.stall_ms,
            bad_metrics: f.bad_metrics,
        }
    }
}

impl Truth {
    /// Decode-only steps at this batch size, if any ran.
    pub fn decode_at(&self, batch_size: u32) -> Option<&StepTruth> {
        self.decode_steps
            .iter()
            .find(|s| s.batch_size == batch_size)
    }
}

pub(crate) fn steps_table(map: &BTreeMap<u32, StepAgg>) -> Vec<StepTruth> {
    map.iter()
        .filter(|(_, a)| a.count > 0)
        .map(|(bs, a)| StepTruth {
            batch_size: *bs,
            count: a.count,
            mean_s: a.sum_s / a.count as f64,
            nominal_mean_s: a.nominal_sum_s / a.count as f64,
        })
        .collect()
}

/// A rank's running batch weighted by its steps' time, decode and mixed steps together.
fn batch_mean(st: &RankStats) -> Option<f64> {
    let (bs_s, s) = st
        .decode_steps
        .iter()
        .chain(&st.mixed_steps)
        .fold((0.0, 0.0), |(bs_s, s), (bs, a)| {
            (bs_s + f64::from(*bs) * a.sum_s, s + a.sum_s)
        });
    (s > 0.0).then(|| bs_s / s)
}

/// What the simulator runs with, as the truth reports it beside the measured aggregates.
pub(crate) struct Setting<'a> {
    pub flavor: SimFlavor,
    pub dp: u32,
    pub time_scale: f64,
    pub profile: &'a Profile,
    pub faults: &'a Faults,
    pub faults_injected: FaultsInjected,
    pub frontend_lag: FrontendLag,
}

/// Assembles the truth from the setting and per-rank snapshots.
pub(crate) fn build(setting: Setting<'_>, ranks: &[RankStats]) -> Truth {
    let mut decode = BTreeMap::<u32, StepAgg>::new();
    let mut mixed = BTreeMap::<u32, StepAgg>::new();
    let mut totals = Totals::default();
    let mut rank_rows = Vec::new();
    for (r, st) in ranks.iter().enumerate() {
        for (bs, agg) in &st.decode_steps {
            decode.entry(*bs).or_default().merge(agg);
        }
        for (bs, agg) in &st.mixed_steps {
            mixed.entry(*bs).or_default().merge(agg);
        }
        totals.requests_finished += st.requests_finished;
        totals.requests_aborted += st.requests_aborted;
        totals.context_exceeded += st.context_exceeded;
        totals.kv_deferred_steps += st.kv_deferred_steps;
        totals.prompt_tokens += st.prompt_tokens;
        totals.cached_prompt_tokens += st.cached_prompt_tokens;
        // SGLang's `prefill_compute` counter is exactly the prefill tokens each step computed.
        totals.prefill_tokens_computed += st.sg_realtime_prefill_compute;
        totals.generation_tokens += st.generation_tokens;
        totals.preemptions += st.preemptions;
        totals.steps += st.steps;
        totals.spec_verify_steps += st.spec_drafts;
        totals.spec_accepted += st.spec_accepted;
        rank_rows.push(RankTruth {
            rank: r as u32,
            running: st.running,
            waiting: st.waiting,
            kv_used_blocks: st.kv_used_blocks,
            steps: st.steps,
            batch_mean: batch_mean(st),
        });
    }
    Truth {
        flavor: setting.flavor.as_str().to_string(),
        dp: setting.dp,
        time_scale: setting.time_scale,
        profile: setting.profile.clone(),
        decode_steps: steps_table(&decode),
        mixed_steps: steps_table(&mixed),
        totals,
        ranks: rank_rows,
        faults: FaultsConfigTruth::from(setting.faults),
        faults_injected: setting.faults_injected,
        frontend_lag: setting.frontend_lag,
    }
}

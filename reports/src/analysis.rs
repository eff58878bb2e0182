//! The whole analysis of one recording: per-step summaries and step times, the step-time fit,
//! the ceiling and the findings, as one serializable [`Analysis`]. The binary loads a
//! [`RunData`] from the store and calls [`analyze`]; nothing here does I/O.

use std::fmt;

use serde::Serialize;

use ceiling_collectors::engines::Flavor;
use ceiling_collectors::{GpuSample, ScrapeRecord};

use crate::ceiling::{self, Ceiling, CeilingOptions};
use crate::engine::{self, EngineSample};
use crate::finding::Finding;
use crate::findings::{self, Tolerances};
use crate::fit::{self, FitPoint, StepTimeFit};
use crate::recording::{LatenessTick, RequestRecord, StepRecord};
use crate::step_time::{self, StepTiming};
use crate::summary::{self, StepSummary};

/// Everything a recording holds that the analysis reads.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    pub run_id: Option<i64>,
    /// `vllm`, `sglang`, `llamacpp` as recorded in the run's manifest.
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    /// DP ranks from the probe configuration, where it says.
    pub dp: Option<u32>,
    pub steps: Vec<StepRecord>,
    pub requests: Vec<RequestRecord>,
    pub ticks: Vec<LatenessTick>,
    pub gpu: Vec<GpuSample>,
    pub scrapes: Vec<ScrapeRecord>,
}

/// What the analysis is asked to assume.
#[derive(Clone, Default)]
pub struct AnalysisOptions {
    /// DP ranks; overrides the recording's.
    pub dp: Option<u32>,
    pub sla_otps: Option<f64>,
    pub sla_tpot_s: Option<f64>,
    /// KV capacity per rank in tokens; overrides the engine's metrics.
    pub kv_capacity_tokens: Option<f64>,
    /// The engine's sequence cap per rank.
    pub max_num_seqs: Option<u32>,
    pub tolerances: Tolerances,
    /// The probe asked for a warm prefix cache (`--prefix-cache warm`).
    pub prefix_cache_warm_expected: bool,
    /// The deployment's roofline, where a model config and GPU were given.
    pub roofline: Option<crate::roofline::Roofline>,
}

impl fmt::Debug for AnalysisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnalysisOptions")
            .field("dp", &self.dp)
            .field("sla_otps", &self.sla_otps)
            .field("sla_tpot_s", &self.sla_tpot_s)
            .field("kv_capacity_tokens", &self.kv_capacity_tokens)
            .field("max_num_seqs", &self.max_num_seqs)
            .field("tolerances", &self.tolerances)
            .field(
                "prefix_cache_warm_expected",
                &self.prefix_cache_warm_expected,
            )
            .field("roofline", &self.roofline.is_some())
            .finish()
    }
}

/// The result of analysing one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub run_id: Option<i64>,
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    pub dp: u32,
    /// The constraints the ceiling was computed under.
    pub ceiling_options: CeilingOptions,
    pub tolerances: Tolerances,
    pub steps: Vec<StepSummary>,
    pub timings: Vec<StepTiming>,
    pub fit: Option<StepTimeFit>,
    pub ceilings: Vec<Ceiling>,
    pub findings: Vec<Finding>,
}

impl Analysis {
    /// The ceiling for the run's most measured lengths (the one to quote), if any.
    pub fn headline(&self) -> Option<&Ceiling> {
        self.ceilings.iter().max_by_key(|c| {
            self.timings
                .iter()
                .filter(|t| t.input_len == c.input_len && t.output_len == c.output_len)
                .count()
        })
    }

    /// Whether any finding is an `error`.
    pub fn has_errors(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == crate::finding::Severity::Error)
    }
}

fn flavor(kind: Option<&str>) -> Option<Flavor> {
    match kind? {
        "vllm" => Some(Flavor::Vllm),
        "sglang" => Some(Flavor::Sglang),
        "llamacpp" | "llama.cpp" | "llama-cpp" => Some(Flavor::Llamacpp),
        _ => None,
    }
}

/// Analyses a recording: scrapes go through the engine adapters, then [`analyze_samples`].
pub fn analyze(data: &RunData, opts: &AnalysisOptions) -> Analysis {
    let samples = engine::engine_samples(&data.scrapes, flavor(data.engine_kind.as_deref()));
    analyze_samples(data, &samples, opts)
}

/// Analyses a recording whose scrapes are already canonical signals (sorted by time).
pub fn analyze_samples(
    data: &RunData,
    engine_samples: &[EngineSample],
    opts: &AnalysisOptions,
) -> Analysis {
    let dp = opts.dp.or(data.dp).unwrap_or(1).max(1);
    let steps = summary::summarize_steps(&data.steps, &data.requests, &data.ticks);
    let mut gpu = data.gpu.clone();
    gpu.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let mut timings = time_steps(&data.steps, &data.requests, engine_samples, &gpu, dp);
    if let Some(roof) = &opts.roofline {
        for t in &mut timings {
            let context = fit::decode_context(t.input_len, t.output_len);
            if let Some(r) = roof.for_step(t.bs_per_rank, context, t.t_fwd_s) {
                t.roofline_t_min_s = Some(r.t_min_s);
                t.roofline_efficiency = r.efficiency;
            }
        }
    }
    let points: Vec<FitPoint> = timings
        .iter()
        .filter_map(|t| {
            t.t_fwd_s.map(|v| FitPoint {
                step_idx: t.step_idx,
                bs: t.bs_per_rank,
                context_tokens: fit::decode_context(t.input_len, t.output_len),
                t_fwd_s: v,
            })
        })
        .collect();
    let fit = fit::fit_step_time(&points);
    let ceiling_options = CeilingOptions {
        dp,
        sla_otps: opts.sla_otps,
        sla_tpot_s: opts.sla_tpot_s,
        kv_capacity_tokens: opts.kv_capacity_tokens,
        max_num_seqs: opts.max_num_seqs,
    };
    let ceilings = ceiling::ceilings(&timings, fit.as_ref(), &ceiling_options);
    let findings = findings::findings(
        &steps,
        &timings,
        &ceilings,
        &opts.tolerances,
        opts.prefix_cache_warm_expected,
    );
    Analysis {
        run_id: data.run_id,
        engine_kind: data.engine_kind.clone(),
        model: data.model.clone(),
        dp,
        ceiling_options,
        tolerances: opts.tolerances.clone(),
        steps,
        timings,
        fit,
        ceilings,
        findings,
    }
}

/// Times every step (see [`step_time::time_step`]).
pub fn time_steps(
    steps: &[StepRecord],
    requests: &[RequestRecord],
    engine_samples: &[EngineSample],
    gpu: &[GpuSample],
    dp: u32,
) -> Vec<StepTiming> {
    let mut by_step: std::collections::BTreeMap<u32, Vec<&RequestRecord>> = Default::default();
    for r in requests {
        by_step.entry(r.step_idx).or_default().push(r);
    }
    steps
        .iter()
        .map(|s| {
            let reqs = by_step.get(&s.idx).map(Vec::as_slice).unwrap_or(&[]);
            step_time::time_step(s, reqs, engine_samples, gpu, dp)
        })
        .collect()
}

#[cfg(test)]
mod tests;

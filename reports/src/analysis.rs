//! The whole analysis of one recording: per-step summaries and step times, the step-time fit,
//! the ceiling and the findings, as one serializable [`Analysis`]. The binary loads a
//! [`Recording`] from the store and calls [`analyze`]; nothing here does I/O. The per-step
//! aggregates are polars queries over the recording's frames ([`crate::frames`],
//! [`crate::summary`], [`crate::step_time`]); the fit, ceiling and findings are typed functions
//! over those aggregates.

use std::fmt;

use serde::Serialize;

use polars::prelude::PolarsError;

use crate::ceiling::{self, Ceiling, CeilingOptions};
use crate::finding::Finding;
use crate::findings::{self, Tolerances};
use crate::fit::{self, FitPoint, StepTimeFit};
use crate::frames;
use crate::rate::{self, MacroCeiling, MacroSla, RateStep};
use crate::recording::Recording;
use crate::step_time::{self, StepTiming};
use crate::summary::{self, StepSummary};

/// A query of the analysis failed: the recording's frames do not have the columns and types
/// the queries expect, which is a bug in whoever built them.
#[derive(Debug, thiserror::Error)]
#[error("the analysis' query over the recording failed (a bug; please report it): {0}")]
pub struct AnalysisError(#[from] PolarsError);

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
    /// The macro ceiling's p99 TTFT limit (`--sla-ttft`); its p99 TPOT limit is `sla_tpot_s`.
    pub sla_ttft_s: Option<f64>,
    /// A micro ceiling (and its step-time fit) from another run (`--against RUN`), for the
    /// macro ceiling to be set beside instead of this run's own.
    pub against: Option<(Ceiling, Option<StepTimeFit>)>,
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
            .field("sla_ttft_s", &self.sla_ttft_s)
            .field("against", &self.against.is_some())
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
    /// GPUs recorded but not counted, shown apart.
    pub gpus_apart: Vec<crate::gpus_apart::GpuApart>,
    /// The open-loop (rate) steps' figures, in step order; absent when the run has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<RateStep>,
    /// The highest rate meeting the SLA, beside the micro ceiling where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub macro_ceiling: Option<MacroCeiling>,
    /// Each side of a prefill/decode disaggregated deployment, where the run scraped them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pd: Option<crate::pd::PdView>,
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

/// Analyses a recording.
pub fn analyze(rec: &Recording, opts: &AnalysisOptions) -> Result<Analysis, AnalysisError> {
    let dp = opts.dp.or(rec.dp).unwrap_or(1).max(1);
    let figures = frames::request_figures(rec)?;
    let chunks = frames::chunk_gaps(rec, &figures)?;
    // The summary and the step times read the same frames and nothing of each other: on two
    // cores, at the same time.
    let (steps, timings) = std::thread::scope(|scope| {
        let timings = scope.spawn(|| step_time::time_steps(rec, &figures, &chunks, dp));
        let steps = summary::summarize(rec, &figures, &chunks);
        let timings = timings
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (steps, timings)
    });
    let (steps, mut timings) = (steps?, timings?);
    if let Some(roof) = &opts.roofline {
        for t in &mut timings {
            let context = fit::decode_context(t.input_len, t.output_len);
            if let Some(r) = roof.for_step(t.bs_per_rank, context, t.t_fwd_s) {
                t.roofline_t_min_s = Some(r.t_min_s);
                t.roofline_efficiency = r.efficiency;
            }
        }
    }
    // The fit and the ceiling are the micro view: the fixed-batch steps only. A rate step has
    // no batch of its own (its figures are `rates`).
    let open_loop: Vec<u32> = rec
        .steps
        .iter()
        .filter(|s| s.pattern == crate::recording::Pattern::Rate)
        .map(|s| s.idx)
        .collect();
    let fixed: Vec<StepTiming> = timings
        .iter()
        .filter(|t| !open_loop.contains(&t.step_idx))
        .cloned()
        .collect();
    let points: Vec<FitPoint> = fixed
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
    let ceilings = ceiling::ceilings(&fixed, fit.as_ref(), &ceiling_options);
    let sla = MacroSla {
        ttft_p99_s: opts.sla_ttft_s,
        tpot_p99_s: opts.sla_tpot_s,
    };
    let rates = rate::rate_steps(rec, &figures, &steps, &sla)?;
    let macro_ceiling = macro_view(&rates, &ceilings, fit.as_ref(), &fixed, opts);
    let pd = crate::pd::pd_view_of(rec, &steps, &rates, macro_ceiling.as_ref())?;
    let findings = findings::findings(
        &steps,
        &timings,
        &rates,
        &ceilings,
        &opts.tolerances,
        opts.prefix_cache_warm_expected,
    );
    Ok(Analysis {
        run_id: rec.run_id,
        engine_kind: rec.engine_kind.clone(),
        model: rec.model.clone(),
        dp,
        ceiling_options,
        tolerances: opts.tolerances.clone(),
        steps,
        timings,
        fit,
        ceilings,
        findings,
        gpus_apart: crate::gpus_apart::gpus_apart(&rec.gpu_other)?,
        rates,
        macro_ceiling,
        pd,
    })
}

/// The macro ceiling of the run's rate steps under the options' SLA, beside the `against`
/// run's micro ceiling, else this run's own (the one at its most measured lengths).
fn macro_view(
    rates: &[RateStep],
    ceilings: &[Ceiling],
    fit: Option<&StepTimeFit>,
    timings: &[StepTiming],
    opts: &AnalysisOptions,
) -> Option<MacroCeiling> {
    if rates.is_empty() {
        return None;
    }
    let sla = MacroSla {
        ttft_p99_s: opts.sla_ttft_s,
        tpot_p99_s: opts.sla_tpot_s,
    };
    // A ceiling with no throughput (no feasible batch) is nothing to set beside.
    let own = ceilings
        .iter()
        .filter(|c| c.bs_per_rank > 0 && c.throughput_tok_s > 0.0)
        .max_by_key(|c| {
            timings
                .iter()
                .filter(|t| t.input_len == c.input_len && t.output_len == c.output_len)
                .count()
        });
    match (&opts.against, own) {
        (Some((c, f)), _) => rate::macro_ceiling(rates, sla, Some(c), f.as_ref()),
        (None, Some(c)) => rate::macro_ceiling(rates, sla, Some(c), fit),
        (None, None) => rate::macro_ceiling(rates, sla, None, None),
    }
}

#[cfg(test)]
mod length_tests;
#[cfg(test)]
mod tests;

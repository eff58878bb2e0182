//! The findings catalogue (DESIGN.md, "Findings"; each code is explained in docs/FINDINGS.md):
//! places where the client, engine and GPU views disagree or the run cannot be trusted. Each has
//! a stable snake_case code, a severity, a one-line message that says what to change, and its
//! numbers as evidence. Clean data raises no `warn` or `error`. Pure: it reads the figures the
//! analysis computed and never computes a figure of its own beyond the comparison it makes.
//!
//! Each code is one [`Rule`] in [`RULES`]: the code, the severities it may raise, a line on what
//! it checks, and its check function, which alone writes the finding's severity, message and
//! evidence. The rules are grouped by the view they read: `requests` (outcomes, lengths, answers),
//! `engine` (the engine's counters and gauges), `timing` (step time, the identities, the
//! roofline, the client's pace), `gpu` and `run` (run-wide). [`findings`] runs the table over
//! each step's [`StepView`] in step order, rules in table order, then the run rules over the
//! [`RunView`]; that order is the order of the output.
//!
//! A step rule raises at most one finding per step ([`Check::Step`]), except
//! `engine_batch_mismatch`, which reads the batch from two independent readings (the engine's
//! running gauge and llama.cpp's busy slots per step) and raises one finding for each that
//! disagrees with the probe's batch, so up to two per step ([`Check::StepMany`]). The run rule
//! `ceiling_extrapolated` raises one per extrapolated ceiling ([`Check::Run`]).

use serde::Serialize;

use crate::ceiling::Ceiling;
use crate::finding::{Finding, Severity};
use crate::rate::RateStep;
use crate::recording::Pattern;
use crate::step_time::StepTiming;
use crate::summary::StepSummary;

mod engine;
mod gpu;
mod ranks;
mod rate;
mod requests;
mod run;
mod timing;

/// How far views may disagree before a finding is raised (relative errors unless named `_s`).
/// The defaults are the ones docs/FINDINGS.md quotes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// Client vs engine step time (`step_time_disagreement`).
    pub step_time_rel: f64,
    /// `QPS × output_len` vs `bs × DP × MTP / t_fwd` (`identity_broken`).
    pub identity_rel: f64,
    /// The engine's mean requests in flight vs `QPS × mean E2E` (`littles_law_broken`).
    pub littles_law_rel: f64,
    /// Client vs engine generation tokens (`token_count_mismatch`).
    pub token_count_rel: f64,
    /// Share of failed requests above which `request_failures` is an error.
    pub failures_error_frac: f64,
    /// Client lateness p99 (`client_lateness`, and the cause `step_time_disagreement` names).
    pub lateness_p99_s: f64,
    /// GPU memory used share at which `gpu_memory_near_full` is raised.
    pub gpu_memory_frac: f64,
    /// KV-cache usage share at which `kv_near_full` is raised.
    pub kv_usage_frac: f64,
    /// Prefix-cache hit share above which a cold run counts as warm.
    pub prefix_hit_frac: f64,
    /// How much faster than the roofline a step may look before it is impossible.
    pub roofline_margin: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            step_time_rel: 0.05,
            identity_rel: 0.05,
            littles_law_rel: 0.15,
            token_count_rel: 0.01,
            failures_error_frac: 0.05,
            lateness_p99_s: 0.005,
            gpu_memory_frac: 0.98,
            kv_usage_frac: 0.95,
            prefix_hit_frac: 0.05,
            roofline_margin: 0.05,
        }
    }
}

/// What a step's rules read: its summary, its timing and what the run expected of it.
#[derive(Debug, Clone, Copy)]
pub struct StepView<'a> {
    pub summary: &'a StepSummary,
    pub timing: &'a StepTiming,
    /// The probe asked for a warm prefix cache (`--prefix-cache warm`), so hits are expected.
    pub prefix_cache_warm_expected: bool,
    /// An open-loop step's rate figures (`None` for the fixed-batch patterns).
    pub rate: Option<&'a RateStep>,
}

impl StepView<'_> {
    /// The batch the probe held, as the checks compare it with the engine's readings.
    fn bs(&self) -> f64 {
        f64::from(self.summary.batch_size)
    }

    /// The most sequences the engine's readings may show for this batch without a mismatch:
    /// `bs`, or `DP × ⌈bs / DP⌉` when `bs` does not divide over the DP ranks (SGLang DP 2 at
    /// bs 1: one rank runs the sequence, the idle one may still report its last batch).
    fn bs_upper(&self) -> f64 {
        let dp = self.dp();
        dp * (self.bs() / dp).ceil()
    }

    /// The DP ranks the probe was told of (`--dp`).
    fn dp(&self) -> f64 {
        let t = self.timing;
        if t.bs_per_rank > 0.0 {
            (self.bs() / t.bs_per_rank).round().max(1.0)
        } else {
            1.0
        }
    }

    /// A closed-loop window whose engine queue drained at some scrape: requests only passed
    /// through it (between a finish and the next send, or for a prefill chunk), so a batch
    /// short of `bs` there is the loop's turnaround. Under a cap the queue never drains. An
    /// engine without a queue gauge is judged as before: its batch alone.
    fn turnaround(&self) -> bool {
        self.summary.pattern == crate::recording::Pattern::ClosedLoop
            && self.timing.engine.waiting_min.is_some_and(|w| w <= 0.0)
    }

    /// The engine ran and queued nothing at every scrape inside the windows (two at least)
    /// while the client's runtime woke late: the client read its streams behind the engine, so
    /// the windows (the client's instants) hold the client's backlog, not the engine's batch.
    fn client_behind_engine(&self, tol: &Tolerances) -> bool {
        let e = &self.timing.engine;
        !self.timing.windows.is_empty()
            && e.samples >= 2
            && e.running_max.is_some_and(|m| m <= 0.0)
            && e.waiting_max.is_none_or(|w| w <= 0.0)
            && self
                .summary
                .client_lateness_p99_s
                .is_some_and(|l| l > tol.lateness_p99_s)
    }
}

/// What the run-wide rules read.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    pub ceilings: &'a [Ceiling],
}

/// What a finding is about: one step ([`StepView`]) or the whole run ([`RunView`]).
trait Subject {
    fn step_idx(&self) -> Option<u32>;

    /// A finding of `rule` about this subject.
    fn finding(
        &self,
        rule: &Rule,
        severity: Severity,
        message: String,
        evidence: serde_json::Value,
    ) -> Finding {
        Finding {
            step_idx: self.step_idx(),
            code: rule.code.to_string(),
            severity,
            message,
            evidence,
        }
    }
}

impl Subject for StepView<'_> {
    fn step_idx(&self) -> Option<u32> {
        Some(self.summary.step_idx)
    }
}

impl Subject for RunView<'_> {
    fn step_idx(&self) -> Option<u32> {
        None
    }
}

/// A rule's check: what it reads and how many findings it may raise.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// At most one finding per step.
    Step(fn(&StepView<'_>, &Tolerances) -> Option<Finding>),
    /// Several findings of the code for one step, one per reading that disagrees.
    StepMany(fn(&StepView<'_>, &Tolerances) -> Vec<Finding>),
    /// Run-wide: one finding per offending item.
    Run(fn(&RunView<'_>, &Tolerances) -> Vec<Finding>),
}

/// One finding code: everything about it lives here and in its check function.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable snake_case code, as stored and rendered.
    pub code: &'static str,
    /// Every severity the check may give its findings.
    pub severities: &'static [Severity],
    /// One line on what it checks (docs/FINDINGS.md has the formula and what to change).
    pub what: &'static str,
    pub check: Check,
}

impl Rule {
    /// The findings this rule raises for one step; none for a run rule.
    pub fn on_step(&self, view: &StepView<'_>, tol: &Tolerances) -> Vec<Finding> {
        match self.check {
            Check::Step(check) => check(view, tol).into_iter().collect(),
            Check::StepMany(check) => check(view, tol),
            Check::Run(_) => Vec::new(),
        }
    }

    /// The findings this rule raises for the whole run; none for a step rule.
    pub fn on_run(&self, view: &RunView<'_>, tol: &Tolerances) -> Vec<Finding> {
        match self.check {
            Check::Run(check) => check(view, tol),
            Check::Step(_) | Check::StepMany(_) => Vec::new(),
        }
    }
}

/// Every rule, in the order its findings appear for a step. That order is the output's, which
/// snapshots and readers of stored runs see, not the files' grouping: `kv_near_full` (an engine
/// reading) comes after the GPU rules.
pub static RULES: &[Rule] = &[
    requests::REQUEST_FAILURES,
    requests::LENGTH_MISMATCH,
    requests::NO_MEASUREMENT_WINDOW,
    requests::REASONING_EXHAUSTED,
    requests::EMPTY_ANSWER,
    engine::CLIENT_BEHIND_ENGINE,
    engine::ENGINE_BATCH_MISMATCH,
    engine::ENGINE_QUEUEING,
    ranks::DP_RANK_IMBALANCE,
    engine::PREEMPTIONS,
    engine::PREFIX_CACHE_WARM,
    engine::TOKEN_COUNT_MISMATCH,
    timing::STEP_TIME_DISAGREEMENT,
    timing::IDENTITY_BROKEN,
    timing::LITTLES_LAW_BROKEN,
    timing::ABOVE_ROOFLINE,
    timing::CLIENT_LATENESS,
    rate::RATE_NOT_KEPT,
    gpu::GPU_THROTTLING,
    gpu::GPU_WINDOW_TOO_SHORT,
    gpu::DECODE_NOT_MEMORY_BOUND,
    gpu::GPU_MEMORY_NEAR_FULL,
    engine::KV_NEAR_FULL,
    run::CEILING_EXTRAPOLATED,
];

/// The rules that hold a step to its fixed batch (its window, the engine's batch and queue,
/// the step time and the identities at `bs`): an open-loop step has no fixed batch, so they do
/// not apply to it.
pub const FIXED_BATCH_ONLY: &[&str] = &[
    "no_measurement_window",
    "client_behind_engine",
    "engine_batch_mismatch",
    "engine_queueing",
    "dp_rank_imbalance",
    "step_time_disagreement",
    "identity_broken",
    "littles_law_broken",
    "above_roofline",
];

/// Every finding of a run: each step's (steps in order, rules in [`RULES`] order), then the
/// run-wide ones. `rates` are the run's open-loop steps' figures.
pub fn findings(
    summaries: &[StepSummary],
    timings: &[StepTiming],
    rates: &[RateStep],
    ceilings: &[Ceiling],
    tol: &Tolerances,
    prefix_cache_warm_expected: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (summary, timing) in summaries.iter().zip(timings) {
        let view = StepView {
            summary,
            timing,
            prefix_cache_warm_expected,
            rate: rates.iter().find(|r| r.step_idx == summary.step_idx),
        };
        let open_loop = summary.pattern == Pattern::Rate;
        out.extend(
            RULES
                .iter()
                .filter(|r| !(open_loop && FIXED_BATCH_ONLY.contains(&r.code)))
                .flat_map(|r| r.on_step(&view, tol)),
        );
    }
    let run = RunView { ceilings };
    out.extend(RULES.iter().flat_map(|r| r.on_run(&run, tol)));
    out
}

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;

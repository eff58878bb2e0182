//! The nightly history: what is kept of an analysed run ([`StepResult`], [`RunResult`], made
//! by [`results_of`]), the history key that says which runs compare, and the regression
//! verdicts over a history ([`regress()`]). The binary stores the results in SQLite and reads a
//! history back as rows of [`HistoryStep`]; every computation over the history is a polars
//! query ([`frame`]).

pub mod attribution;
pub mod frame;
pub mod nightly;
pub mod parquet;
pub mod regress;
pub mod render;
pub mod trend;

use serde::{Deserialize, Serialize};

use polars::prelude::PolarsResult;

use crate::analysis::Analysis;
use crate::finding::Severity;
use crate::metrics::Distribution;

/// The figures of one analysed step that the history keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step_idx: u32,
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    /// The step time the analysis chose, and its three views.
    pub t_fwd_s: Option<f64>,
    pub t_fwd_client_s: Option<f64>,
    pub t_fwd_engine_s: Option<f64>,
    pub t_fwd_identity_s: Option<f64>,
    /// The run's own scatter at this step, relative: the fit's residual standard deviation
    /// over this step's time (`None` without a fit with degrees of freedom left).
    pub own_rel_sigma: Option<f64>,
    pub tpot_p50_s: Option<f64>,
    pub tpot_p99_s: Option<f64>,
    pub ttft_p50_s: Option<f64>,
    pub ttft_p99_s: Option<f64>,
    pub itl_p50_s: Option<f64>,
    pub itl_p99_s: Option<f64>,
    /// Output tokens/s of the node in the decode windows.
    pub throughput_tok_s: Option<f64>,
    pub running_mean: Option<f64>,
    pub kv_usage_max_frac: Option<f64>,
    pub kv_capacity_tokens: Option<f64>,
    pub preemptions: Option<f64>,
    pub gpu_util_mean_pct: Option<f64>,
    pub sm_clock_mean_mhz: Option<f64>,
    pub mem_clock_mean_mhz: Option<f64>,
    pub power_mean_w: Option<f64>,
    pub temp_mean_c: Option<f64>,
    /// The union of the NVML slowdown reasons seen in the windows, comma-separated.
    pub throttle_reasons: Option<String>,
    pub energy_per_output_token_j: Option<f64>,
}

/// The figures of one analysed run that the history keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub fit_a_s: Option<f64>,
    pub fit_b_s_per_seq: Option<f64>,
    pub fit_c_s_per_seq_token: Option<f64>,
    pub fit_residual_std_s: Option<f64>,
    /// The headline ceiling (the most measured lengths).
    pub ceiling_tok_s: Option<f64>,
    pub ceiling_bs_per_rank: Option<u32>,
    /// Every length's ceiling as `[input_len, output_len, tok_s]`.
    pub ceilings: Vec<(u32, u32, f64)>,
    pub kv_capacity_tokens: Option<f64>,
    pub max_num_seqs: Option<u32>,
    pub findings_info: u32,
    pub findings_warn: u32,
    pub findings_error: u32,
}

/// The history's figures of an analysis.
pub fn results_of(a: &Analysis) -> (RunResult, Vec<StepResult>) {
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count() as u32;
    let fit = a.fit.as_ref();
    let run = RunResult {
        fit_a_s: fit.map(|f| f.a_s),
        fit_b_s_per_seq: fit.map(|f| f.b_s_per_seq),
        fit_c_s_per_seq_token: fit.and_then(|f| f.c_s_per_seq_token),
        fit_residual_std_s: fit.and_then(|f| f.residual_std_s),
        ceiling_tok_s: a.headline().map(|c| c.throughput_tok_s),
        ceiling_bs_per_rank: a.headline().map(|c| c.bs_per_rank),
        ceilings: a
            .ceilings
            .iter()
            .map(|c| (c.input_len, c.output_len, c.throughput_tok_s))
            .collect(),
        kv_capacity_tokens: a.ceiling_options.kv_capacity_tokens,
        max_num_seqs: a.ceiling_options.max_num_seqs,
        findings_info: count(Severity::Info),
        findings_warn: count(Severity::Warn),
        findings_error: count(Severity::Error),
    };
    let residual = run.fit_residual_std_s;
    let steps = a
        .timings
        .iter()
        .map(|t| {
            let s = a.steps.iter().find(|s| s.step_idx == t.step_idx);
            let p = |d: fn(&crate::summary::StepSummary) -> &Option<Distribution>,
                     q: fn(&Distribution) -> f64| {
                s.and_then(|s| d(s).as_ref()).map(q)
            };
            StepResult {
                step_idx: t.step_idx,
                batch_size: t.batch_size,
                input_len: t.input_len,
                output_len: t.output_len,
                t_fwd_s: t.t_fwd_s,
                t_fwd_client_s: t.t_fwd_client_s,
                t_fwd_engine_s: t.t_fwd_engine_s,
                t_fwd_identity_s: t.t_fwd_identity_s,
                own_rel_sigma: residual
                    .zip(t.t_fwd_s)
                    .filter(|(_, t)| *t > 0.0)
                    .map(|(r, t)| r / t),
                tpot_p50_s: p(|s| &s.tpot_s, |d| d.p50),
                tpot_p99_s: p(|s| &s.tpot_s, |d| d.p99),
                ttft_p50_s: p(|s| &s.ttft_s, |d| d.p50),
                ttft_p99_s: p(|s| &s.ttft_s, |d| d.p99),
                itl_p50_s: p(|s| &s.itl_s, |d| d.p50),
                itl_p99_s: p(|s| &s.itl_s, |d| d.p99),
                throughput_tok_s: t.throughput_window_tok_s,
                running_mean: t.engine.running_mean,
                kv_usage_max_frac: t.engine.kv_usage_max_frac,
                kv_capacity_tokens: t.engine.kv_capacity_tokens,
                preemptions: t.engine.preemptions,
                gpu_util_mean_pct: t.gpu.util_mean_pct,
                sm_clock_mean_mhz: t.gpu.sm_clock_mean_mhz,
                mem_clock_mean_mhz: t.gpu.mem_clock_mean_mhz,
                power_mean_w: t.gpu.power_mean_w,
                temp_mean_c: t.gpu.temp_mean_c,
                throttle_reasons: t
                    .gpu
                    .throttle_reasons_mask
                    .map(|_| t.gpu.throttle_reasons.join(",")),
                energy_per_output_token_j: t.gpu.energy_per_output_token_j,
            }
        })
        .collect();
    (run, steps)
}

/// What makes two runs comparable, and what the attribution compares between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    pub run_id: i64,
    pub started_at: String,
    pub host: Option<String>,
    pub gpu_model: Option<String>,
    pub gpu_count: u32,
    /// The boards' UUIDs, comma-separated in index order.
    pub gpu_uuids: Option<String>,
    pub driver_version: Option<String>,
    pub engine_kind: Option<String>,
    pub engine_version: Option<String>,
    pub model: Option<String>,
    pub probe_config_hash: String,
    /// The lowest power limit of the run's GPUs, W.
    pub power_limit_w: Option<f64>,
    pub status: String,
    /// The model's revision (`--model-revision`, else the engine's model list).
    #[serde(default)]
    pub model_revision: Option<String>,
    /// The compute processes beside the engine's on the run's GPUs at its start, `pid on GPU
    /// n`, comma-separated (empty: none); `None` where they could not be told apart.
    #[serde(default)]
    pub other_gpu_processes: Option<String>,
    /// Every compute process on the run's GPUs at its start (per GPU, summed); `None` where
    /// the source could not list them.
    #[serde(default)]
    pub gpu_compute_processes: Option<u32>,
}

/// One step of one run of a history: the run's key, its run-level results and the step's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryStep {
    pub key: RunKey,
    pub run: RunResult,
    pub step: StepResult,
}

/// The verdicts on one run against its history, with the causes beside its regressions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressReport {
    pub run_id: i64,
    pub host: Option<String>,
    pub started_at: String,
    pub options: regress::RegressOptions,
    /// The baseline runs, oldest first.
    pub baseline_run_ids: Vec<i64>,
    pub verdicts: Vec<regress::MetricVerdict>,
    /// Empty unless a metric regressed.
    pub attribution: Vec<attribution::Cause>,
    /// With a fleet's export at hand (`--history-from`): this node against the others of its
    /// group that night, per judged metric and batch size.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<(String, parquet::FleetPoint)>,
}

impl RegressReport {
    /// The judged metrics that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &regress::MetricVerdict> {
        self.verdicts
            .iter()
            .filter(|v| v.verdict == regress::Verdict::Regression)
    }

    /// The morning's one line: the node, the worst regression, and what changed beside it.
    pub fn headline(&self) -> String {
        let host = self.host.as_deref().unwrap_or("this node");
        let worst = self.regressions().max_by(|a, b| {
            let r = |v: &regress::MetricVerdict| v.change_rel.unwrap_or(0.0).abs();
            r(a).total_cmp(&r(b))
        });
        let Some(w) = worst else {
            let short = self
                .verdicts
                .iter()
                .all(|v| v.verdict == regress::Verdict::InsufficientHistory);
            return if short {
                format!(
                    "{host}: run {}: insufficient history (fewer than {} baseline runs)",
                    self.run_id,
                    regress::MIN_BASELINE
                )
            } else {
                format!("{host}: run {}: no regression beyond noise", self.run_id)
            };
        };
        let n = self.regressions().count();
        let mut line = format!(
            "{host}: run {}: {} at bs {} {} {:.1} % beyond noise ({n} regression{})",
            self.run_id,
            w.metric,
            w.batch_size,
            if w.change_rel.unwrap_or(0.0) >= 0.0 {
                "rose"
            } else {
                "fell"
            },
            w.change_rel.unwrap_or(0.0).abs() * 100.0,
            if n == 1 { "" } else { "s" },
        );
        for c in &self.attribution {
            line.push_str("; ");
            line.push_str(&c.message);
        }
        line
    }
}

/// Judges run `run_id` against the rows of its history (one key, every run).
pub fn regress(
    rows: &[HistoryStep],
    run_id: i64,
    o: &regress::RegressOptions,
) -> PolarsResult<Option<RegressReport>> {
    let judged = regress::judge_history(rows, o)?;
    let verdicts = regress::verdicts_of(&judged, run_id)?;
    let this_steps: Vec<&HistoryStep> = rows.iter().filter(|r| r.key.run_id == run_id).collect();
    let Some(this) = this_steps.first() else {
        return Ok(None);
    };
    let baseline = baseline_runs(rows, this, o.last_n);
    let last = baseline
        .last()
        .and_then(|id| rows.iter().find(|r| r.key.run_id == *id));
    let attribution = if verdicts
        .iter()
        .any(|v| v.verdict == regress::Verdict::Regression)
    {
        let evidence = regress::evidence_of(&judged, run_id)?;
        attribution::attribute(this, &this_steps, last, &evidence)
    } else {
        Vec::new()
    };
    Ok(Some(RegressReport {
        run_id,
        host: this.key.host.clone(),
        started_at: this.key.started_at.clone(),
        options: *o,
        baseline_run_ids: baseline,
        verdicts,
        attribution,
        fleet: Vec::new(),
    }))
}

/// The last `n` eligible runs before `this` (in start order), oldest first.
fn baseline_runs(rows: &[HistoryStep], this: &HistoryStep, n: usize) -> Vec<i64> {
    let order = |r: &HistoryStep| (r.key.started_at.clone(), r.key.run_id);
    let mut runs: Vec<(String, i64)> = rows
        .iter()
        .filter(|r| r.key.status == "complete" && r.run.findings_error == 0)
        .filter(|r| order(r) < order(this))
        .map(order)
        .collect();
    runs.sort();
    runs.dedup();
    let skip = runs.len().saturating_sub(n);
    runs.into_iter().skip(skip).map(|(_, id)| id).collect()
}

//! A history as polars frames: [`steps_frame`] holds one row per run × step with the run's key
//! and every kept figure (the shape the Parquet export writes); [`metrics_frame`] is the same
//! history long, one row per run × step × metric, the shape the noise model groups over.

use polars::prelude::*;

use super::HistoryStep;

/// A metric the history follows: its column, and which way is worse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    /// Larger is worse (a time); else smaller is worse (a rate).
    pub higher_is_worse: bool,
    /// Judged for regressions; else only read as evidence by the attribution.
    pub judged: bool,
    /// Counted inside the decode windows, whose edges fall within a step: its own interval
    /// holds the edges' scatter (see [`metrics_frame`]).
    pub window_counted: bool,
}

const fn m(name: &'static str, higher_is_worse: bool, judged: bool) -> Metric {
    Metric {
        name,
        higher_is_worse,
        judged,
        window_counted: false,
    }
}

/// Every metric of the history, the judged ones first.
pub const METRICS: &[Metric] = &[
    m("t_fwd_s", true, true),
    m("tpot_p50_s", true, true),
    m("itl_p50_s", true, true),
    // TTFT is kept and charted but not judged by default: it depends on how the engine
    // schedules a wave's prefills and on the client's timing, and swings by multiples between
    // quiet and busy nights where the step time moves by a per cent.
    m("ttft_p50_s", true, false),
    Metric {
        window_counted: true,
        ..m("throughput_tok_s", false, true)
    },
    m("sm_clock_mean_mhz", false, false),
    m("mem_clock_mean_mhz", false, false),
    m("power_mean_w", true, false),
    m("temp_mean_c", true, false),
    m("energy_per_output_token_j", true, false),
];

/// The metric named `name`, if the history follows it.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// One row per run × step: the key columns, the run's results and the step's figures.
pub fn steps_frame(rows: &[HistoryStep]) -> PolarsResult<DataFrame> {
    macro_rules! c {
        ($($path:ident).+) => {
            rows.iter().map(|r| r.$($path).+.clone()).collect::<Vec<_>>()
        };
    }
    let started: Vec<String> = c!(key.started_at);
    let date: Vec<String> = started
        .iter()
        .map(|s| s.chars().take(10).collect())
        .collect();
    let eligible: Vec<bool> = rows
        .iter()
        .map(|r| r.key.status == "complete" && r.run.findings_error == 0)
        .collect();
    df!(
        "run_id" => c!(key.run_id),
        "started_at" => started,
        "date" => date,
        "host" => c!(key.host),
        "gpu_model" => c!(key.gpu_model),
        "gpu_count" => c!(key.gpu_count),
        "gpu_uuids" => c!(key.gpu_uuids),
        "driver_version" => c!(key.driver_version),
        "engine_kind" => c!(key.engine_kind),
        "engine_version" => c!(key.engine_version),
        "model" => c!(key.model),
        "probe_config_hash" => c!(key.probe_config_hash),
        "power_limit_w" => c!(key.power_limit_w),
        "model_revision" => c!(key.model_revision),
        "other_gpu_processes" => c!(key.other_gpu_processes),
        "gpu_compute_processes" => c!(key.gpu_compute_processes),
        "status" => c!(key.status),
        "eligible" => eligible,
        "kv_capacity_run_tokens" => c!(run.kv_capacity_tokens),
        "max_num_seqs" => c!(run.max_num_seqs),
        "fit_a_s" => c!(run.fit_a_s),
        "fit_b_s_per_seq" => c!(run.fit_b_s_per_seq),
        "ceiling_tok_s" => c!(run.ceiling_tok_s),
        "findings_error" => c!(run.findings_error),
        "findings_warn" => c!(run.findings_warn),
        "step_idx" => c!(step.step_idx),
        "batch_size" => c!(step.batch_size),
        "input_len" => c!(step.input_len),
        "output_len" => c!(step.output_len),
        "own_rel_sigma" => c!(step.own_rel_sigma),
        "t_fwd_s" => c!(step.t_fwd_s),
        "t_fwd_client_s" => c!(step.t_fwd_client_s),
        "t_fwd_engine_s" => c!(step.t_fwd_engine_s),
        "t_fwd_identity_s" => c!(step.t_fwd_identity_s),
        "tpot_p50_s" => c!(step.tpot_p50_s),
        "tpot_p99_s" => c!(step.tpot_p99_s),
        "ttft_p50_s" => c!(step.ttft_p50_s),
        "ttft_p99_s" => c!(step.ttft_p99_s),
        "itl_p50_s" => c!(step.itl_p50_s),
        "itl_p99_s" => c!(step.itl_p99_s),
        "throughput_tok_s" => c!(step.throughput_tok_s),
        "running_mean" => c!(step.running_mean),
        "kv_usage_max_frac" => c!(step.kv_usage_max_frac),
        "kv_capacity_tokens" => c!(step.kv_capacity_tokens),
        "preemptions" => c!(step.preemptions),
        "gpu_util_mean_pct" => c!(step.gpu_util_mean_pct),
        "sm_clock_mean_mhz" => c!(step.sm_clock_mean_mhz),
        "mem_clock_mean_mhz" => c!(step.mem_clock_mean_mhz),
        "power_mean_w" => c!(step.power_mean_w),
        "temp_mean_c" => c!(step.temp_mean_c),
        "throttle_reasons" => c!(step.throttle_reasons),
        "energy_per_output_token_j" => c!(step.energy_per_output_token_j),
    )
}

/// A metric's own relative interval at a step: the fit's scatter, and for a metric counted in
/// the decode windows the scatter of its two edges. Each edge falls anywhere within a step
/// (uniform: variance 1/12 step²), so a window of `N` steps counts `N ± √(1/6)` steps' tokens;
/// a wave's window holds at most `output_len − 1` steps, and one wave is assumed (seen: −1.3 %
/// to −12 % on one-wave windows of 14 steps whose step time moved 8 %, −3.2 % on a quiet night).
fn own_rel_sigma(m: &Metric) -> Expr {
    if !m.window_counted {
        return col("own_rel_sigma");
    }
    let steps = when(col("output_len").gt(lit(2)))
        .then(col("output_len").cast(DataType::Float64) - lit(1.0))
        .otherwise(lit(1.0));
    let edge = lit((1.0f64 / 6.0).sqrt()) / steps;
    (col("own_rel_sigma").fill_null(lit(0.0)).pow(2) + edge.pow(2))
        .sqrt()
        .alias("own_rel_sigma")
}

/// The steps frame long: `run_id, started_at, seq, eligible, batch_size, input_len,
/// output_len, own_rel_sigma, metric, worse_sign, judged, value`, one row per metric with a
/// value. `seq` orders the runs (start time, then id).
pub fn metrics_frame(steps: LazyFrame) -> PolarsResult<LazyFrame> {
    let runs = steps
        .clone()
        .group_by([col("run_id"), col("started_at")])
        .agg([len().alias("n")])
        .sort(["started_at", "run_id"], SortMultipleOptions::default())
        .with_row_index("seq", None)
        .select([col("run_id"), col("seq").cast(DataType::Int64)]);
    let parts: Vec<LazyFrame> = METRICS
        .iter()
        .map(|m| {
            steps.clone().select([
                col("run_id"),
                col("started_at"),
                col("eligible"),
                col("batch_size"),
                col("input_len"),
                col("output_len"),
                own_rel_sigma(m),
                lit(m.name).alias("metric"),
                lit(if m.higher_is_worse { 1.0 } else { -1.0 }).alias("worse_sign"),
                lit(m.judged).alias("judged"),
                col(m.name).cast(DataType::Float64).alias("value"),
            ])
        })
        .collect();
    Ok(concat(parts, UnionArgs::default())?
        .filter(col("value").is_not_null())
        .join(
            runs,
            [col("run_id")],
            [col("run_id")],
            JoinArgs::new(JoinType::Inner),
        ))
}

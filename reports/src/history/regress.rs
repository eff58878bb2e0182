//! The regression verdicts over a history (docs/NIGHTLY.md, "Noise model"). For each run, each
//! metric, batch size and pair of lengths: the baseline is the last N eligible runs before it
//! (complete, no `error` finding); the noise is the baseline's MAD × 1.4826 combined with this
//! run's own interval; a change beyond k of those sigmas and beyond the minimum effect, the
//! worse way, is a regression. Fewer than 3 baseline runs: insufficient history, with the
//! change against the last run's interval alone. All of it is one polars query
//! ([`judge_history`]); the attribution of a regression is [`super::attribution`].

use polars::prelude::*;
use serde::Serialize;

use super::HistoryStep;
use super::frame::{metrics_frame, steps_frame};

/// The robust sigma of a normal sample from its median absolute deviation.
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Fewer baseline runs than this: insufficient history.
pub const MIN_BASELINE: u32 = 3;

/// How a regression is decided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegressOptions {
    /// Baseline runs (the last N eligible before the judged run).
    pub last_n: usize,
    /// Robust sigmas a change must exceed.
    pub k: f64,
    /// Relative change a regression must exceed, e.g. 0.03.
    pub min_effect: f64,
}

impl Default for RegressOptions {
    fn default() -> Self {
        RegressOptions {
            last_n: 7,
            k: 3.0,
            min_effect: 0.03,
        }
    }
}

/// The verdict on one metric at one batch size and pair of lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    WithinNoise,
    InsufficientHistory,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::WithinNoise => "within_noise",
            Verdict::InsufficientHistory => "insufficient_history",
        }
    }

    fn parse(s: &str) -> Verdict {
        match s {
            "regression" => Verdict::Regression,
            "improvement" => Verdict::Improvement,
            "within_noise" => Verdict::WithinNoise,
            _ => Verdict::InsufficientHistory,
        }
    }
}

/// One row of the verdicts: a run's metric at a batch size and pair of lengths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricVerdict {
    pub run_id: i64,
    pub metric: String,
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub value: f64,
    /// Baseline runs used.
    pub baseline_runs: u32,
    pub baseline_median: Option<f64>,
    /// MAD × 1.4826 over the baseline.
    pub baseline_sigma: Option<f64>,
    /// The combined sigma: baseline and this run's own interval.
    pub sigma: Option<f64>,
    /// `(value − median) / median`.
    pub change_rel: Option<f64>,
    /// `(value − median) / sigma`; infinite when the sigma is 0.
    pub z: Option<f64>,
    pub verdict: Verdict,
    /// With insufficient history: the change against the last run beyond both runs' own
    /// intervals and the minimum effect, the worse way.
    pub worse_than_last: bool,
    /// The change against the last baseline run, relative.
    pub change_vs_last_rel: Option<f64>,
}

/// Every run's verdicts on every metric of a history (one key), judged metrics and the
/// evidence metrics alike; `judged` tells them apart.
pub fn judge_history(rows: &[HistoryStep], o: &RegressOptions) -> PolarsResult<DataFrame> {
    let long = metrics_frame(steps_frame(rows)?.lazy())?;
    let cell = [
        col("metric"),
        col("batch_size"),
        col("input_len"),
        col("output_len"),
    ];
    let base = long.clone().filter(col("eligible")).select([
        col("metric"),
        col("batch_size"),
        col("input_len"),
        col("output_len"),
        col("seq").alias("b_seq"),
        col("run_id").alias("b_run"),
        col("value").alias("b_value"),
        col("own_rel_sigma").fill_null(lit(0.0)).alias("b_own"),
    ]);
    let desc = SortMultipleOptions::default().with_order_descending(true);
    let recent = |c: &str| {
        col(c)
            .sort_by([col("b_seq")], desc.clone())
            .head(Some(o.last_n))
    };
    let last = |c: &str| col(c).sort_by([col("b_seq")], desc.clone()).first();
    let med = recent("b_value").median();
    let mad = (recent("b_value") - med.clone()).pow(2).sqrt().median() * lit(MAD_TO_SIGMA);
    let mut keys = vec![col("run_id")];
    keys.extend(cell.iter().cloned());
    let stats = long
        .clone()
        .join(
            base,
            cell.clone(),
            cell.clone(),
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("b_seq").lt(col("seq")))
        .group_by(keys.clone())
        .agg([
            recent("b_value").count().alias("baseline_runs"),
            med.alias("baseline_median"),
            mad.alias("baseline_sigma"),
            last("b_value").alias("last_value"),
            last("b_own").alias("last_own"),
        ]);
    let judged = long
        .join(stats, keys.clone(), keys, JoinArgs::new(JoinType::Left))
        .with_column(
            col("baseline_runs")
                .fill_null(lit(0))
                .cast(DataType::UInt32),
        );
    judged.with_columns(verdict_columns(o)).collect()
}

/// The verdict's columns over the joined baseline statistics.
fn verdict_columns(o: &RegressOptions) -> Vec<Expr> {
    let k2 = lit(o.k * o.k);
    let min2 = lit(o.min_effect * o.min_effect);
    let own = col("value") * col("own_rel_sigma").fill_null(lit(0.0));
    let delta = col("value") - col("baseline_median");
    let sigma2 = col("baseline_sigma").pow(2) + own.clone().pow(2);
    let rel = delta.clone() / col("baseline_median");
    let beyond = delta.clone().pow(2).gt(k2.clone() * sigma2.clone());
    let effect = rel.clone().pow(2).gt_eq(min2.clone());
    let worse = (delta.clone() * col("worse_sign")).gt(lit(0.0));
    let d_last = col("value") - col("last_value");
    let s_last2 = own.pow(2) + (col("last_value") * col("last_own")).pow(2);
    let rel_last = d_last.clone() / col("last_value");
    let worse_than_last = col("baseline_runs")
        .gt_eq(lit(1))
        .and(d_last.clone().pow(2).gt(k2 * s_last2))
        .and(rel_last.clone().pow(2).gt_eq(min2))
        .and((d_last * col("worse_sign")).gt(lit(0.0)));
    let verdict = when(col("baseline_runs").lt(lit(MIN_BASELINE)))
        .then(lit(Verdict::InsufficientHistory.as_str()))
        .when(beyond.clone().and(effect.clone()).and(worse))
        .then(lit(Verdict::Regression.as_str()))
        .when(beyond.and(effect))
        .then(lit(Verdict::Improvement.as_str()))
        .otherwise(lit(Verdict::WithinNoise.as_str()));
    vec![
        sigma2.clone().sqrt().alias("sigma"),
        rel.alias("change_rel"),
        (delta / sigma2.sqrt()).alias("z"),
        verdict.alias("verdict"),
        worse_than_last
            .fill_null(lit(false))
            .alias("worse_than_last"),
        rel_last.alias("change_vs_last_rel"),
    ]
}

/// The judged metrics' verdicts of run `run_id`, in metric, batch size, length order.
pub fn verdicts_of(judged: &DataFrame, run_id: i64) -> PolarsResult<Vec<MetricVerdict>> {
    let df = judged
        .clone()
        .lazy()
        .filter(col("run_id").eq(lit(run_id)).and(col("judged")))
        .collect()?;
    read_verdicts(&df)
}

/// The rows of a judged frame as verdicts.
pub fn read_verdicts(df: &DataFrame) -> PolarsResult<Vec<MetricVerdict>> {
    let f = |n: &str| -> PolarsResult<Vec<Option<f64>>> {
        Ok(df
            .column(n)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .collect())
    };
    let u = |n: &str| -> PolarsResult<Vec<u32>> {
        Ok(df
            .column(n)?
            .cast(&DataType::UInt32)?
            .u32()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let s = |n: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(n)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let run: Vec<i64> = df
        .column("run_id")?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let (metric, verdict) = (s("metric")?, s("verdict")?);
    let (bs, il, ol, n) = (
        u("batch_size")?,
        u("input_len")?,
        u("output_len")?,
        u("baseline_runs")?,
    );
    let (value, med, bsig, sig) = (
        f("value")?,
        f("baseline_median")?,
        f("baseline_sigma")?,
        f("sigma")?,
    );
    let (rel, z, rel_last) = (f("change_rel")?, f("z")?, f("change_vs_last_rel")?);
    let wtl: Vec<bool> = df
        .column("worse_than_last")?
        .bool()?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    Ok((0..df.height())
        .map(|i| MetricVerdict {
            run_id: run[i],
            metric: metric[i].clone(),
            batch_size: bs[i],
            input_len: il[i],
            output_len: ol[i],
            value: value[i].unwrap_or(f64::NAN),
            baseline_runs: n[i],
            baseline_median: med[i],
            baseline_sigma: bsig[i],
            sigma: sig[i],
            change_rel: rel[i],
            z: z[i],
            verdict: Verdict::parse(&verdict[i]),
            worse_than_last: wtl[i],
            change_vs_last_rel: rel_last[i],
        })
        .collect())
}

/// The evidence metrics (clocks, power, temperature) of run `run_id`, as verdict rows.
pub fn evidence_of(judged: &DataFrame, run_id: i64) -> PolarsResult<Vec<MetricVerdict>> {
    let df = judged
        .clone()
        .lazy()
        .filter(col("run_id").eq(lit(run_id)).and(col("judged").not()))
        .collect()?;
    read_verdicts(&df)
}

#[cfg(test)]
mod tests;

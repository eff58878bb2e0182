//! The queries the analysis shares over a [`Recording`]'s frames: the per-request figures (each
//! request with its chunk aggregates and the [`crate::metrics`] expressions), the chunks with
//! their gap to the previous chunk of the same request and their request's flags, the
//! distribution aggregates, and the small reader that turns a per-step result frame back into
//! typed values. No I/O.

use std::collections::HashMap;

use polars::polars_utils::kahan_sum::KahanSum;
use polars::prelude::*;

use crate::metrics::{self, Distribution};
use crate::recording::Recording;

/// One row per request, in recorded order: the `requests` frame plus `chunks_n`,
/// `chunk_tokens_sum`, `chunk_tokens_nulls`, `last_chunk_t_s`, `second_chunk_t_s` (from its
/// chunks, in arrival order; a chunk is recorded only when it carries output) and the metrics `output_tokens`, `output_tokens_known`, `ttft_s`, `ttft_answer_s`,
/// `e2e_s`, `tpot_s`, `measured_ok`.
pub fn request_figures(rec: &Recording) -> PolarsResult<DataFrame> {
    let per_request = rec.chunks.clone().lazy().group_by([col("request")]).agg([
        len().alias("chunks_n"),
        col("tokens").sum().alias("chunk_tokens_sum"),
        col("tokens").null_count().alias("chunk_tokens_nulls"),
        col("t_s").last().alias("last_chunk_t_s"),
        col("t_s")
            .slice(lit(1i64), lit(1u64))
            .first()
            .alias("second_chunk_t_s"),
    ]);
    rec.requests
        .clone()
        .lazy()
        .join(
            per_request,
            [col("request")],
            [col("request")],
            JoinArgs::new(JoinType::Left),
        )
        // Row `i` is request `i`: the chunks gather their request's flags by it.
        .sort(["request"], SortMultipleOptions::default())
        .with_columns([
            col("chunks_n").fill_null(lit(0u32)),
            col("chunk_tokens_nulls").fill_null(lit(0u32)),
        ])
        .with_column(metrics::output_tokens_expr().alias("output_tokens"))
        .with_columns([
            metrics::output_tokens_known_expr().alias("output_tokens_known"),
            metrics::ttft_expr().alias("ttft_s"),
            metrics::ttft_answer_expr().alias("ttft_answer_s"),
            metrics::e2e_expr().alias("e2e_s"),
            metrics::tpot_expr().alias("tpot_s"),
            metrics::is_measured_ok_expr().alias("measured_ok"),
        ])
        .collect()
}

/// The `chunks` frame with its request's `warmup` and `measured_ok` (gathered by the request's
/// row number) and `gap_s`, the time since the previous chunk of the same request (the ITL;
/// null for a request's first chunk). Chunks are sorted by request then arrival.
pub fn chunk_gaps(rec: &Recording, figures: &DataFrame) -> PolarsResult<DataFrame> {
    let idx = rec.chunks.column("request")?.u32()?;
    let warmup = figures.column("warmup")?.take(idx)?;
    let measured_ok = figures.column("measured_ok")?.take(idx)?;
    let mut chunks = rec.chunks.clone();
    chunks.with_column(warmup.with_name("warmup".into()))?;
    chunks.with_column(measured_ok.with_name("measured_ok".into()))?;
    chunks
        .lazy()
        .with_column(
            when(same_request())
                .then(col("t_s") - col("t_s").shift(lit(1)))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("gap_s"),
        )
        .collect()
}

/// Whether a chunk's previous row belongs to the same request.
pub fn same_request() -> Expr {
    col("request").eq(col("request").shift(lit(1)))
}

/// The aggregates of [`Distribution`] over the finite values of `value`, as columns
/// `{name}_n`, `_mean`, `_p50`, `_p90`, `_p95`, `_p99`, `_max`, `_std` (population; polars' linear quantile is
/// [`metrics::percentile`]'s method).
pub fn distribution_aggs(value: Expr, name: &str) -> Vec<Expr> {
    let v = value.clone().filter(value.is_finite());
    let q = |p: f64| v.clone().quantile(lit(p), QuantileMethod::Linear);
    vec![
        v.clone().count().alias(format!("{name}_n")),
        v.clone().mean().alias(format!("{name}_mean")),
        q(0.5).alias(format!("{name}_p50")),
        q(0.9).alias(format!("{name}_p90")),
        q(0.95).alias(format!("{name}_p95")),
        q(0.99).alias(format!("{name}_p99")),
        v.clone().max().alias(format!("{name}_max")),
        v.std(0).alias(format!("{name}_std")),
    ]
}

/// A numeric column's values by row, for the passes over millions of chunk rows: each of its
/// arrays walked with static calls (`ChunkedArray::iter` makes a dynamic one per value; at 10 M
/// rows the difference was within the noise).
pub fn values<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
) -> impl Iterator<Item = Option<T::Native>> + '_ {
    ca.downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.copied()))
}

/// A boolean column's values by row, as [`values`].
pub fn flags(ca: &BooleanChunked) -> impl Iterator<Item = Option<bool>> + '_ {
    ca.downcast_iter().flat_map(|a| a.iter())
}

/// The [`Distribution`] of a group's finite values, given in row order, as
/// [`distribution_aggs`] computes it in a polars group-by: the count, polars' mean of a group
/// (a Kahan sum in row order), its linear quantiles ([`metrics::quantiles_unsorted`]) and the
/// maximum; `None` when there is no value. For groups of millions of rows, read from one
/// contiguous vector per group: polars' filtered quantiles copy the group's values once per
/// quantile.
pub fn distribution_of(mut values: Vec<f64>) -> Option<Distribution> {
    values.retain(|v| v.is_finite());
    let n = values.len();
    let mean = match n {
        0 => return None,
        1 => values[0],
        _ => {
            let sum = values
                .iter()
                .fold(KahanSum::default(), |sum, &v| sum + v)
                .sum();
            sum / n as f64
        }
    };
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let std = metrics::population_std(&values, mean);
    let [p50, p90, p95, p99] = metrics::quantiles_unsorted(&mut values, [0.5, 0.9, 0.95, 0.99])?;
    Some(Distribution {
        n,
        mean,
        p50,
        p90,
        p95,
        p99,
        max,
        std,
    })
}

/// A per-key result frame read back by key (`step_idx`, or any u32 key column).
pub struct Rows {
    df: DataFrame,
    rows: HashMap<u32, usize>,
}

impl Rows {
    pub fn new(df: DataFrame, key: &str) -> PolarsResult<Rows> {
        let rows = df
            .column(key)?
            .u32()?
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.map(|k| (k, i)))
            .collect();
        Ok(Rows { df, rows })
    }

    /// The value of a numeric column at `key`, as f64; `None` for a missing row or a null.
    pub fn f64(&self, key: u32, name: &str) -> PolarsResult<Option<f64>> {
        let Some(&row) = self.rows.get(&key) else {
            return Ok(None);
        };
        let c = self.df.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?.get(row))
    }

    /// The value of an integer column at `key`, as u64.
    pub fn u64(&self, key: u32, name: &str) -> PolarsResult<Option<u64>> {
        let Some(&row) = self.rows.get(&key) else {
            return Ok(None);
        };
        let c = self.df.column(name)?.cast(&DataType::UInt64)?;
        Ok(c.u64()?.get(row))
    }

    /// The [`Distribution`] of [`distribution_aggs`]' columns `{name}_*` at `key`.
    pub fn distribution(&self, key: u32, name: &str) -> PolarsResult<Option<Distribution>> {
        let n = self.u64(key, &format!("{name}_n"))?.unwrap_or(0);
        if n == 0 {
            return Ok(None);
        }
        let get = |s: &str| self.f64(key, &format!("{name}_{s}"));
        let (Some(mean), Some(p50), Some(p90), Some(p95), Some(p99), Some(max)) = (
            get("mean")?,
            get("p50")?,
            get("p90")?,
            get("p95")?,
            get("p99")?,
            get("max")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Distribution {
            n: n as usize,
            mean,
            p50,
            p90,
            p95,
            p99,
            max,
            // One value has no spread (polars gives null for it).
            std: get("std")?.unwrap_or(0.0),
        }))
    }
}

/// Per step, the ITLs (chunk gaps) of its measured successful requests, in recorded order.
pub fn measured_itls(rec: &Recording) -> PolarsResult<std::collections::BTreeMap<u32, Vec<f64>>> {
    let figures = request_figures(rec)?;
    let gaps = chunk_gaps(rec, &figures)?
        .lazy()
        .filter(col("measured_ok").and(col("gap_s").is_not_null()))
        .select([col("step_idx"), col("gap_s")])
        .collect()?;
    let mut out: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    let steps = gaps.column("step_idx")?.u32()?;
    let gap = gaps.column("gap_s")?.f64()?;
    for (s, g) in steps.iter().zip(gap.iter()) {
        if let (Some(s), Some(g)) = (s, g) {
            out.entry(s).or_default().push(g);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gaps in three interleaved groups, some not finite, with ties.
    fn groups() -> DataFrame {
        let mut seed = 11u64;
        let mut key = Vec::new();
        let mut value = Vec::new();
        for i in 0..30_011u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            key.push((seed >> 40) as u32 % 3);
            value.push(match i % 997 {
                0 => f64::INFINITY,
                1 => f64::NAN,
                _ => ((seed >> 20) % 5000) as f64 * 3.1e-5 + 0.008,
            });
        }
        df!("key" => key, "v" => value).unwrap()
    }

    #[test]
    fn a_groups_distribution_is_the_group_bys_to_the_bit() {
        let df = groups();
        let rows = Rows::new(
            df.clone()
                .lazy()
                .group_by([col("key")])
                .agg(distribution_aggs(col("v"), "d"))
                .collect()
                .unwrap(),
            "key",
        )
        .unwrap();
        let keys = df.column("key").unwrap().u32().unwrap();
        let values = df.column("v").unwrap().f64().unwrap();
        for k in 0..3 {
            let group: Vec<f64> = keys
                .iter()
                .zip(values.iter())
                .filter(|(g, _)| *g == Some(k))
                .filter_map(|(_, v)| v)
                .collect();
            let ours = distribution_of(group).unwrap();
            let polars = rows.distribution(k, "d").unwrap().unwrap();
            assert_eq!(ours.n, polars.n);
            for (a, b) in [
                (ours.mean, polars.mean),
                (ours.p50, polars.p50),
                (ours.p90, polars.p90),
                (ours.p99, polars.p99),
                (ours.max, polars.max),
            ] {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "group {k}: {ours:?} vs {polars:?}"
                );
            }
        }
        assert_eq!(distribution_of(vec![f64::NAN]), None);
        assert_eq!(distribution_of(vec![0.25]).unwrap().p99, 0.25);
    }
}

//! The queries the analysis shares over a [`Recording`]'s frames: the per-request figures (each
//! request with its chunk aggregates and the [`crate::metrics`] expressions), the chunks with
//! their gap to the previous chunk of the same request and their request's flags, the
//! distribution aggregates, and the small reader that turns a per-step result frame back into
//! typed values. No I/O.

use std::collections::HashMap;

use polars::prelude::*;

use crate::metrics::{self, Distribution};
use crate::recording::Recording;

/// One row per request, in recorded order: the `requests` frame plus `chunks_n`,
/// `chunk_tokens_sum`, `chunk_tokens_nulls`, `last_chunk_t_s` (from its chunks, in arrival
/// order) and the metrics `output_tokens`, `output_tokens_known`, `ttft_s`, `ttft_answer_s`,
/// `e2e_s`, `tpot_s`, `measured_ok`.
pub fn request_figures(rec: &Recording) -> PolarsResult<DataFrame> {
    let per_request = rec.chunks.clone().lazy().group_by([col("request")]).agg([
        len().alias("chunks_n"),
        col("tokens").sum().alias("chunk_tokens_sum"),
        col("tokens").null_count().alias("chunk_tokens_nulls"),
        col("t_s").last().alias("last_chunk_t_s"),
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
/// `{name}_n`, `_mean`, `_p50`, `_p90`, `_p99`, `_max` (polars' linear quantile is
/// [`metrics::percentile`]'s method).
pub fn distribution_aggs(value: Expr, name: &str) -> Vec<Expr> {
    let v = value.clone().filter(value.is_finite());
    let q = |p: f64| v.clone().quantile(lit(p), QuantileMethod::Linear);
    vec![
        v.clone().count().alias(format!("{name}_n")),
        v.clone().mean().alias(format!("{name}_mean")),
        q(0.5).alias(format!("{name}_p50")),
        q(0.9).alias(format!("{name}_p90")),
        q(0.99).alias(format!("{name}_p99")),
        v.max().alias(format!("{name}_max")),
    ]
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
        let (Some(mean), Some(p50), Some(p90), Some(p99), Some(max)) = (
            get("mean")?,
            get("p50")?,
            get("p90")?,
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
            p99,
            max,
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

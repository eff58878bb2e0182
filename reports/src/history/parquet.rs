//! A fleet's history in Parquet (docs/NIGHTLY.md, "Fleet layout"): [`write_partitioned`] writes
//! a node's history (the [`super::frame::steps_frame`] shape: one row per run × step with the
//! run's key and results) under `DIR/host=H/date=YYYY-MM-DD/`, Hive-style, the partition
//! columns in the path only; [`scan`] reads any number of such trees back with one lazy polars
//! scan (the partition columns restored), and [`fleet_view`] sets each node against the others
//! of the same GPU model, engine, model and probe config that night: the robust z-score.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use super::regress::MAD_TO_SIGMA;

/// A partition value as a path segment: anything but letters, digits, `.`, `-` and `_`
/// becomes `_`.
fn segment(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `steps` (rows started on or after `since`, a `YYYY-MM-DD` prefix, when given) under
/// `dir`, one file per host and date; returns the files written.
pub fn write_partitioned(
    steps: DataFrame,
    dir: &Path,
    since: Option<&str>,
) -> PolarsResult<Vec<PathBuf>> {
    let mut lf = steps
        .lazy()
        .with_column(col("host").fill_null(lit("unknown")));
    if let Some(since) = since {
        lf = lf.filter(col("date").gt_eq(lit(since)));
    }
    let df = lf.collect()?;
    let parts = df
        .clone()
        .lazy()
        .group_by([col("host"), col("date")])
        .agg([
            col("run_id").min().alias("first"),
            col("run_id").max().alias("last"),
        ])
        .sort(["host", "date"], SortMultipleOptions::default())
        .collect()?;
    let hosts = parts.column("host")?.str()?.clone();
    let dates = parts.column("date")?.str()?.clone();
    let (first, last) = (parts.column("first")?.i64()?, parts.column("last")?.i64()?);
    let mut written = Vec::new();
    for i in 0..parts.height() {
        let (Some(host), Some(date)) = (hosts.get(i), dates.get(i)) else {
            continue;
        };
        let mut part = df
            .clone()
            .lazy()
            .filter(col("host").eq(lit(host)).and(col("date").eq(lit(date))))
            .drop(cols(["host", "date"]))
            .collect()?;
        let folder = dir
            .join(format!("host={}", segment(host)))
            .join(format!("date={}", segment(date)));
        std::fs::create_dir_all(&folder)?;
        let path = folder.join(format!(
            "runs-{}-{}.parquet",
            first.get(i).unwrap_or(0),
            last.get(i).unwrap_or(0)
        ));
        let file = std::fs::File::create(&path)?;
        ParquetWriter::new(file).finish(&mut part)?;
        written.push(path);
    }
    Ok(written)
}

/// One run's raw table (`requests` or `chunks`, as the analysis reads them) with a `run_id`
/// column, written to `dir/TABLE/host=H/date=D/run-ID.parquet`; returns the file.
pub fn write_raw(
    mut frame: DataFrame,
    dir: &Path,
    table: &str,
    host: &str,
    date: &str,
    run_id: i64,
) -> PolarsResult<PathBuf> {
    let height = frame.height();
    frame.insert_column(0, Column::new("run_id".into(), vec![run_id; height]))?;
    let folder = dir
        .join(table)
        .join(format!("host={}", segment(host)))
        .join(format!("date={}", segment(date)));
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!("run-{run_id}.parquet"));
    let file = std::fs::File::create(&path)?;
    ParquetWriter::new(file).finish(&mut frame)?;
    Ok(path)
}

/// Every file a glob such as `DIR/**/*.parquet` names, as one lazy frame with the `host` and
/// `date` partition columns.
pub fn scan(glob: &str) -> PolarsResult<LazyFrame> {
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            hive_start_idx: 0,
            schema: None,
            try_parse_dates: false,
        },
        glob: true,
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet(PlRefPath::new(glob), args)
}

/// One node's metric at one batch size on one night, against the others of its group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetPoint {
    pub host: String,
    pub date: String,
    pub gpu_model: Option<String>,
    pub batch_size: u32,
    pub value: f64,
    /// Nodes of the group that night.
    pub nodes: u32,
    pub fleet_median: f64,
    /// `(value − median) / (1.4826 × MAD)` over the group's nodes; `None` when the MAD is 0.
    pub z: Option<f64>,
}

impl FleetPoint {
    /// The z-score as printed: signed, one decimal; `-` without one.
    pub fn z_text(&self) -> String {
        self.z.map_or_else(|| "-".into(), |z| format!("{z:+.1}"))
    }
}

/// The cross-node view of `metric` on `date` (the latest date in the data when `None`): each
/// node's value (its median over that night's runs) against the median and MAD of the nodes
/// with the same GPU model, engine kind, model and probe config, per batch size and lengths.
pub fn fleet_view(
    lf: LazyFrame,
    metric: &str,
    date: Option<&str>,
) -> PolarsResult<Vec<FleetPoint>> {
    let date = match date {
        Some(d) => d.to_string(),
        None => {
            let d = lf
                .clone()
                .select([col("date").cast(DataType::String).max()])
                .collect()?;
            d.column("date")?
                .str()?
                .get(0)
                .unwrap_or_default()
                .to_string()
        }
    };
    let group = [
        col("gpu_model"),
        col("engine_kind"),
        col("model"),
        col("probe_config_hash"),
        col("batch_size"),
        col("input_len"),
        col("output_len"),
    ];
    let mut node_keys = vec![col("host")];
    node_keys.extend(group.iter().cloned());
    let nodes = lf
        .with_column(col("date").cast(DataType::String))
        .filter(col("date").eq(lit(date.clone())))
        .group_by(node_keys)
        .agg([col(metric).cast(DataType::Float64).median().alias("value")])
        .filter(col("value").is_not_null());
    let med = col("value").median();
    let stats = nodes.clone().group_by(group.clone()).agg([
        len().alias("nodes"),
        med.clone().alias("fleet_median"),
        ((col("value") - med).pow(2).sqrt().median() * lit(MAD_TO_SIGMA)).alias("fleet_sigma"),
    ]);
    let df = nodes
        .join(stats, group.clone(), group, JoinArgs::new(JoinType::Inner))
        .with_column(
            when(col("fleet_sigma").gt(lit(0.0)))
                .then((col("value") - col("fleet_median")) / col("fleet_sigma"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("z"),
        )
        .sort(["batch_size", "host"], SortMultipleOptions::default())
        .collect()?;
    let s = |n: &str| -> PolarsResult<StringChunked> {
        Ok(df.column(n)?.cast(&DataType::String)?.str()?.clone())
    };
    let f = |n: &str| -> PolarsResult<Float64Chunked> {
        Ok(df.column(n)?.cast(&DataType::Float64)?.f64()?.clone())
    };
    let u = |n: &str| -> PolarsResult<UInt32Chunked> {
        Ok(df.column(n)?.cast(&DataType::UInt32)?.u32()?.clone())
    };
    let (host, gpu) = (s("host")?, s("gpu_model")?);
    let (bs, n) = (u("batch_size")?, u("nodes")?);
    let (value, median, z) = (f("value")?, f("fleet_median")?, f("z")?);
    Ok((0..df.height())
        .map(|i| FleetPoint {
            host: host.get(i).unwrap_or_default().to_string(),
            date: date.clone(),
            gpu_model: gpu.get(i).map(str::to_string),
            batch_size: bs.get(i).unwrap_or(0),
            value: value.get(i).unwrap_or(f64::NAN),
            nodes: n.get(i).unwrap_or(0),
            fleet_median: median.get(i).unwrap_or(f64::NAN),
            z: z.get(i),
        })
        .collect())
}

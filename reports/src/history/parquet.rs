//! A fleet's history in Parquet (docs/NIGHTLY.md, "Fleet layout"): [`write_partitioned`] writes
//! a node's history (the [`super::frame::steps_frame`] shape: one row per run × step with the
//! run's key and results) under `DIR/host=H/date=YYYY-MM-DD/`, Hive-style, the partition
//! columns in the path only; [`scan`] reads any number of such trees back as one lazy frame (the
//! partition columns restored), and [`fleet_view`] sets each node against the others
//! of the same GPU model, engine, model and probe config that night: the robust z-score.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::prelude::{ParquetReader, ParquetWriter, SerReader};
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

/// Every file a glob such as `DIR/**/*.parquet` names (a directory: every `.parquet` file under
/// it), as one lazy frame with the Hive partition columns of each file's path (`host`, `date`:
/// every `KEY=VALUE` folder) as strings. Each file is read whole: polars' own lazy Parquet scan
/// runs on its streaming engine, whose build cost ~20 % of a cold release build
/// (docs/PERFORMANCE.md, "Cold build"), and a fleet's history files are small.
pub fn scan(pattern: &str) -> PolarsResult<LazyFrame> {
    let pattern = if Path::new(pattern).is_dir() {
        format!("{}/**/*.parquet", pattern.trim_end_matches('/'))
    } else {
        pattern.to_string()
    };
    let paths = glob::glob(&pattern).map_err(|e| polars_err!(ComputeError: "{e}"))?;
    let mut frames = Vec::new();
    for path in paths {
        let path = path.map_err(|e| polars_err!(ComputeError: "{e}"))?;
        if path.is_file() {
            frames.push(read_with_partitions(&path)?);
        }
    }
    if frames.is_empty() {
        polars_bail!(ComputeError: "no file matches {pattern:?}");
    }
    concat(frames, UnionArgs::default())
}

/// One Parquet file with a string column per `KEY=VALUE` folder of its path.
fn read_with_partitions(path: &Path) -> PolarsResult<LazyFrame> {
    let file = std::fs::File::open(path)?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| e.context(format!("{}", path.display()).into()))?;
    let parts: Vec<Expr> = path
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|c| c.as_os_str().to_str()?.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| lit(v.to_string()).alias(k))
        .collect();
    Ok(df.lazy().with_columns(parts))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, t: &[f64]) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut df = df!("t_fwd_s" => t).unwrap();
        ParquetWriter::new(std::fs::File::create(path).unwrap())
            .finish(&mut df)
            .unwrap();
    }

    #[test]
    fn scan_restores_every_partition_as_a_string_and_reads_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        // A numeric host stays a string (polars' own Hive inference would make it an integer).
        write(dir.path(), "host=10/date=2026-12-01/a.parquet", &[1.0, 2.0]);
        write(dir.path(), "host=b/date=2026-12-02/b.parquet", &[4.0]);
        std::fs::write(dir.path().join("host=b/notes.txt"), "not parquet").unwrap();
        let by_glob = format!("{}/**/*.parquet", dir.path().display());
        for pattern in [by_glob.as_str(), dir.path().to_str().unwrap()] {
            let df = scan(pattern)
                .unwrap()
                .sort(["t_fwd_s"], SortMultipleOptions::default())
                .collect()
                .unwrap();
            assert_eq!(df.height(), 3, "{pattern}");
            let host: Vec<_> = df.column("host").unwrap().str().unwrap().iter().collect();
            assert_eq!(host, [Some("10"), Some("10"), Some("b")]);
            let date = df.column("date").unwrap().str().unwrap();
            assert_eq!(date.get(2), Some("2026-12-02"));
            let t = df.column("t_fwd_s").unwrap().f64().unwrap().sum();
            assert_eq!(t, Some(7.0));
        }
    }

    #[test]
    fn scan_says_when_nothing_matches_or_a_file_is_not_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let none = format!("{}/**/*.parquet", dir.path().display());
        let err = scan(&none).err().unwrap().to_string();
        assert!(err.contains("no file matches"), "{err}");
        std::fs::write(dir.path().join("bad.parquet"), "not parquet").unwrap();
        let err = scan(&none).err().unwrap().to_string();
        assert!(err.contains("bad.parquet"), "{err}");
    }
}

//! Flags of the nightly-regression commands (`nightly`, `regress`, `history`) and of the simulator's
//! planted nights (`ceiling sim --step-scale …`).

use std::path::PathBuf;

use clap::Args;

use super::OutputArgs;

#[derive(Debug, Args)]
pub struct RegressArgs {
    /// The run to judge: an id, or `latest`.
    #[arg(default_value = "latest")]
    pub run: String,

    #[command(flatten)]
    pub judge: JudgeArgs,

    /// A fleet's Parquet export (e.g. `'DIR/**/*.parquet'`): add this node's robust z-score
    /// against the others of its GPU, engine, model and probe config that night.
    #[arg(long, value_name = "GLOB")]
    pub history_from: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// How a run is judged against its history, and where the verdicts go: shared by `regress`
/// and `nightly`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Regression")]
pub struct JudgeArgs {
    /// The baseline: `auto` (the last --last eligible runs of the same history key before
    /// this one) or a run id to compare with alone.
    #[arg(long, default_value = "auto")]
    pub baseline: String,

    /// Baseline runs (`auto`).
    #[arg(long = "last", value_name = "N", default_value_t = 7)]
    pub last_n: usize,

    /// Relative change a regression must exceed: `3%` or `0.03`.
    #[arg(long, default_value = "3%", value_parser = fraction)]
    pub min_effect: f64,

    /// Robust sigmas (MAD × 1.4826, with the run's own interval) a change must exceed.
    #[arg(long, default_value_t = 3.0)]
    pub k: f64,

    /// Exit 1 when any metric regressed.
    #[arg(long)]
    pub gate: bool,

    /// Write the verdicts as JUnit XML (one testcase per metric × batch size × lengths).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write the night's figures and verdicts in the Prometheus text format, for
    /// node_exporter's textfile collector (written beside and renamed into place).
    #[arg(long, value_name = "FILE")]
    pub prom_textfile: Option<PathBuf>,
}

/// `ceiling nightly`: the probe's flags, then how the night is judged and where its report goes.
#[derive(Debug, Args)]
pub struct NightlyArgs {
    #[command(flatten)]
    pub probe: super::ProbeArgs,

    #[command(flatten)]
    pub judge: JudgeArgs,

    /// The directory of the night's report (`nightly.html`, `nightly.md`, `charts/`, the run's
    /// own report in `run/`); default `ceiling-nightly-RUN`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history of this run's key (host, GPUs, engine kind, model, probe config): an id or
    /// `latest`. Default `latest` unless --host/--gpu/--model choose.
    #[arg(long, value_name = "RUN")]
    pub like: Option<String>,

    /// Runs of this host.
    #[arg(long, conflicts_with = "like")]
    pub host: Option<String>,

    /// Runs on this GPU model (the NVML name, e.g. `NVIDIA H100 80GB HBM3`).
    #[arg(long, conflicts_with = "like")]
    pub gpu: Option<String>,

    /// Runs of this served model.
    #[arg(long, conflicts_with = "like")]
    pub model: Option<String>,

    /// The metric: t_fwd_s, tpot_p50_s, itl_p50_s, ttft_p50_s, throughput_tok_s,
    /// sm_clock_mean_mhz, mem_clock_mean_mhz, power_mean_w, temp_mean_c,
    /// energy_per_output_token_j.
    #[arg(long, default_value = "t_fwd_s")]
    pub metric: String,

    /// One batch size (default: all).
    #[arg(long)]
    pub bs: Option<u32>,

    /// Nights shown.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub last: usize,

    /// Baseline runs of the noise band.
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub baseline_runs: usize,

    /// Write the trend chart here (SVG; PNG when the name ends in .png).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,

    /// Read a fleet's Parquet export instead (e.g. `'DIR/**/*.parquet'`) and show the
    /// cross-node view: each node against the others of its GPU, engine, model and probe
    /// config on one night (robust z-score).
    #[arg(long, value_name = "GLOB", conflicts_with_all = ["like", "chart"])]
    pub from: Option<String>,

    /// The night of the cross-node view, `YYYY-MM-DD` (default: the latest in the export).
    #[arg(long, requires = "from")]
    pub date: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file format; only `parquet`.
    #[arg(long, default_value = "parquet", value_parser = ["parquet"])]
    pub format: String,

    /// The directory to write `host=H/date=YYYY-MM-DD/runs-FIRST-LAST.parquet` under.
    #[arg(long)]
    pub out: PathBuf,

    /// Only runs started on or after this date, `YYYY-MM-DD`.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Also write each exported run's requests and chunks, as the analysis reads them, under
    /// this directory: `RAW/requests/host=H/date=D/run-ID.parquet` and the same for `chunks`
    /// (apart from --out, so `--out`'s `**/*.parquet` stays one table).
    #[arg(long, value_name = "RAW")]
    pub raw: Option<PathBuf>,
}

/// `3%` or `0.03` as a fraction in [0, 1).
pub fn fraction(s: &str) -> Result<f64, String> {
    let (text, scale) = match s.trim().strip_suffix('%') {
        Some(p) => (p.trim(), 0.01),
        None => (s.trim(), 1.0),
    };
    let v: f64 = text
        .parse()
        .map_err(|_| format!("{s:?} is not a fraction; write e.g. 3% or 0.03"))?;
    let v = v * scale;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} must be at least 0 % and below 100 %"))
    }
}

/// A planted night: a slower step and the GPU condition `/dcgm` shows.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Planted nights")]
pub struct SimNightArgs {
    /// Multiply every step's time by this (e.g. 1.08 for +8 %); overrides the profile's.
    #[arg(long, value_name = "F")]
    pub step_scale: Option<f64>,

    /// SM clock the simulated GPUs report, MHz (default 1980).
    #[arg(long, value_name = "MHZ")]
    pub sm_clock: Option<u32>,

    /// Memory clock the simulated GPUs report, MHz (default 2619).
    #[arg(long, value_name = "MHZ")]
    pub mem_clock: Option<u32>,

    /// Power limit, W: the reported draw is clamped at it, with the `sw_power_cap` reason
    /// (default 700).
    #[arg(long, value_name = "W")]
    pub power_limit: Option<f64>,

    /// Report thermal throttling: +25 °C and the `sw_thermal_slowdown` reason while busy.
    #[arg(long)]
    pub thermal_throttle: bool,

    /// Driver version the simulated GPUs report (default 535.183.01).
    #[arg(long, value_name = "VERSION")]
    pub driver_version: Option<String>,

    /// A number in the boards' UUIDs: another value is another board.
    #[arg(long, value_name = "N")]
    pub board_serial: Option<u32>,

    /// The hub commit the model is served from (`/v1/models` names a snapshot path as its
    /// `root`): another value is another model revision.
    #[arg(long, value_name = "REV")]
    pub model_revision: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_read_as_percent_or_plain() {
        assert_eq!(fraction("3%"), Ok(0.03));
        assert_eq!(fraction("0.05"), Ok(0.05));
        assert!(fraction("100%").is_err());
        assert!(fraction("-1%").is_err());
        assert!(fraction("three").is_err());
    }
}

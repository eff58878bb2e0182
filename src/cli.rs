//! The command line, as clap derive types only. Nothing here validates beyond what clap parses;
//! `config.rs` and the commands turn these into checked configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// How close is this LLM serving node to its limit, why, and can the benchmark be trusted.
#[derive(Debug, Parser)]
#[command(name = "ceiling", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Recording")]
pub struct StoreArgs {
    /// The SQLite recording to read and write.
    #[arg(long, global = true, env = "CEILING_DB", default_value = "ceiling.db")]
    pub db: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List recorded runs, or show one run's manifest.
    Runs(RunsArgs),
    /// Scrape an engine's /metrics once (or twice, with --delta) and print the canonical
    /// signals, the raw metric each came from, and what could not be mapped.
    Scrape(ScrapeArgs),
    /// List the GPUs and say which GPU source works on this machine.
    Gpus(GpusArgs),
    /// Import an nvidia-smi CSV log into a recorded run's GPU samples.
    ImportGpu(ImportGpuArgs),
    /// Exercise the recording writer until killed (used by the crash-safety test).
    #[command(name = "__write-load", hide = true)]
    WriteLoad(WriteLoadArgs),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Show a run's manifest: tool, host, engine, model, GPUs, probe configuration, steps.
    Show {
        /// Run id, or `latest`.
        run: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct WriteLoadArgs {
    /// Requests to record before exiting (0 = until killed).
    #[arg(long, default_value_t = 0)]
    pub requests: u64,
}

/// An engine flavor, for when auto-detection from the metric names is not wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlavorArg {
    Vllm,
    Sglang,
    Llamacpp,
}

#[derive(Debug, Args)]
pub struct ScrapeArgs {
    /// The engine's metrics URL, e.g. http://localhost:8000/metrics.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub url: Option<String>,
    /// Read a saved exposition instead of scraping.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The engine, instead of detecting it from the metric names.
    #[arg(long, value_enum)]
    pub flavor: Option<FlavorArg>,
    /// Scrape twice, --interval apart, and print per-second rates and window means.
    #[arg(long, requires = "url")]
    pub delta: bool,
    /// Time between the two scrapes of --delta.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Give up on a scrape after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct GpusArgs {
    /// The GPU source to try: `nvml`, or `dcgm:URL` for a DCGM exporter.
    #[arg(long, default_value = "nvml")]
    pub gpu_source: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ImportGpuArgs {
    /// The log: `nvidia-smi --query-gpu=timestamp,index,... --format=csv[,nounits] -lms N`.
    pub file: PathBuf,
    /// The run to add the samples to: an id, or `latest`.
    #[arg(long)]
    pub run: String,
    /// The UTC offset of the machine that wrote the log (nvidia-smi prints local time with no
    /// zone), e.g. `+02:00` or `-05:30`.
    #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
    pub utc_offset: String,
}

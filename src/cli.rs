//! The command line, as clap derive types only. Nothing here validates beyond what clap parses;
//! `config.rs` and the commands turn these into checked configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Run a simulated engine (vLLM, SGLang or llama.cpp flavor) with a known ground truth.
    Sim(SimArgs),
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

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Which engine to imitate at the HTTP and /metrics level.
    #[arg(long, value_enum, default_value = "vllm")]
    pub flavor: crate::sim::SimFlavor,

    /// A built-in profile: tiny, llama-8b-h100, llama-70b-tp4-h100.
    #[arg(long, default_value = "tiny", conflicts_with = "profile_file")]
    pub profile: String,

    /// A profile in TOML (see docs/PERFORMANCE.md and `ceiling sim --help`).
    #[arg(long, value_name = "F.toml")]
    pub profile_file: Option<PathBuf>,

    /// Data-parallel ranks: independent schedulers behind one server.
    #[arg(long, default_value_t = 1)]
    pub dp: u32,

    /// Run this many times faster than real time (every duration is divided by it).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    #[command(flatten)]
    pub faults: SimFaultArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Faults")]
pub struct SimFaultArgs {
    /// Answer this fraction of completion requests with HTTP 500.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub fault_http_500: f64,

    /// Answer this fraction of completion requests with HTTP 429.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub fault_http_429: f64,

    /// Cut this fraction of responses mid-stream (no `[DONE]`).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub fault_drop: f64,

    /// Pause this fraction of streams once for MS milliseconds.
    #[arg(long, value_name = "P:MS")]
    pub fault_stall: Option<String>,

    /// Serve a malformed /metrics exposition on this fraction of scrapes.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub fault_bad_metrics: f64,
}

fn probability(text: &str) -> Result<f64, String> {
    crate::sim::parse_probability(text).map_err(|e| e.to_string())
}

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
    /// Analyse a recorded run: step table, step time three ways, fit, ceiling, findings.
    Analyze(AnalyzeArgs),
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
pub struct AnalyzeArgs {
    /// Run id, or `latest`.
    #[arg(default_value = "latest")]
    pub run: String,

    #[command(flatten)]
    pub ceiling: CeilingArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The constraints the ceiling is computed under.
#[derive(Debug, Args)]
#[command(next_help_heading = "Ceiling")]
pub struct CeilingArgs {
    /// Minimum output tokens/s per sequence (default 20 when no SLA is given).
    #[arg(long, value_name = "TOK_S")]
    pub sla_otps: Option<f64>,

    /// Maximum time per output token, e.g. `50ms`.
    #[arg(long, value_name = "DURATION")]
    pub sla_tpot: Option<humantime::Duration>,

    /// Data-parallel ranks the batch was spread over (default: the probe's --dp, else 1).
    #[arg(long)]
    pub dp: Option<u32>,

    /// KV cache capacity per rank in tokens (default: the engine's metrics).
    #[arg(long, value_name = "TOKENS")]
    pub kv_capacity_tokens: Option<u64>,

    /// The engine's sequence cap per rank (vLLM `--max-num-seqs`).
    #[arg(long)]
    pub max_num_seqs: Option<u32>,
}

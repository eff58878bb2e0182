//! Flags of the commands that read a recorded run: `analyze`, `report`, and `demo` (which
//! records one first), with the ceiling constraints and the roofline they share.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{KvDtypeArg, OutputArgs, WeightDtypeArg};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Run id, or `latest`.
    #[arg(default_value = "latest")]
    pub run: String,

    #[command(flatten)]
    pub ceiling: CeilingArgs,

    #[command(flatten)]
    pub roofline: RunRooflineArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The constraints the ceiling is computed under, and what to do with `error` findings.
#[derive(Debug, Args, Clone, Default)]
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

    /// Exit with code 1 when any finding is an `error` (for CI and nightly jobs).
    #[arg(long)]
    pub gate: bool,

    /// The macro ceiling's SLA on p99 time to first token, e.g. `2s` (default: the probe's).
    #[arg(long, value_name = "DURATION")]
    pub sla_ttft: Option<humantime::Duration>,

    /// Set the macro ceiling of this run's rate steps beside the micro ceiling of another run
    /// (an id or `latest`; default: this run's own, where it has one).
    #[arg(long, value_name = "RUN")]
    pub against: Option<String>,
}

/// The hardware roofline the measured step times are compared with.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Roofline")]
pub struct RunRooflineArgs {
    /// The model's Hugging Face `config.json` (a local file); with it every step's time is
    /// compared with the least the hardware allows.
    #[arg(long, value_name = "FILE")]
    pub model_config: Option<PathBuf>,

    /// The GPU by NVML name or short name (H100, A100-SXM4-80GB, …) [default: the GPU the run
    /// recorded].
    #[arg(long, requires = "model_config")]
    pub gpu: Option<String>,

    /// Tensor-parallel size of each replica.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp: u32,

    /// How the weights are stored [default: as the config says].
    #[arg(long, value_enum)]
    pub weight_dtype: Option<WeightDtypeArg>,

    /// How the KV cache is stored.
    #[arg(long, value_enum, default_value_t = KvDtypeArg::Bf16)]
    pub kv_dtype: KvDtypeArg,
}

impl Default for RunRooflineArgs {
    fn default() -> Self {
        RunRooflineArgs {
            model_config: None,
            gpu: None,
            tp: 1,
            weight_dtype: None,
            kv_dtype: KvDtypeArg::Bf16,
        }
    }
}

/// One output of `ceiling report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// `report.html`: one self-contained page, charts inline.
    Html,
    /// `report.md` with `charts/*.svg` beside it.
    Md,
    /// `result.json`, versioned, with a JSON Schema in `schema/`.
    Json,
    /// `charts/*.png` as well as the SVGs.
    Png,
    /// `vllm/step-N.json`: each rate step in the shape vLLM's `bench serve --save-result`
    /// writes.
    VllmJson,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id, or `latest` [default: latest; with --result, no run unless one is named].
    pub run: Option<String>,

    /// Imported results (ids from `ceiling results`, comma-separated): a report of them instead
    /// (their table, the checks that did not pass, throughput vs p99 latency and request rate
    /// vs error rate), with the named run's measured ceiling across the throughput chart.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub result: Vec<i64>,

    /// Directory to write into (created if missing) [default: `ceiling-report-ID`, ID the run's id].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// What to write, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "html,md,json"
    )]
    pub format: Vec<ReportFormat>,

    #[command(flatten)]
    pub ceiling: CeilingArgs,

    #[command(flatten)]
    pub roofline: RunRooflineArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the report [default: ceiling-demo].
    #[arg(long, value_name = "DIR", default_value = "ceiling-demo")]
    pub out: PathBuf,

    /// Batch sizes of the sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,128",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_sizes: Vec<u32>,

    /// Also write PNG charts.
    #[arg(long)]
    pub png: bool,

    /// Show the nightly regression instead: two weeks of a simulated node's nights (into
    /// DIR/nightly.db), the last one planted slower with its SM clock down and a new driver,
    /// judged and reported as `ceiling nightly` does (DIR/nightly.html).
    #[arg(long, conflicts_with_all = ["batch_sizes", "png"])]
    pub nightly: bool,

    /// The constraints of the ceiling [default for the demo: --sla-otps 90].
    #[command(flatten)]
    pub ceiling: CeilingArgs,
}

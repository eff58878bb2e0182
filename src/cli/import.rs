//! Flags of the commands that read other tools' benchmark results: `import`, `results` and
//! `check result`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::OutputArgs;

/// Which tool wrote the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToolArg {
    /// Tell from the content.
    Auto,
    Vllm,
    Sglang,
    Guidellm,
    Aiperf,
    GenaiPerf,
    Evalscope,
    Llmperf,
    Locust,
    Gpustack,
    InferenceBenchmarker,
}

/// The deployment behind a result: none of it is in the tools' files.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Deployment")]
pub struct DeploymentArgs {
    /// The model's Hugging Face `config.json` (a local file).
    #[arg(long, value_name = "FILE")]
    pub model_config: Option<PathBuf>,

    /// The GPU by NVML name or short name (H100, H200, A100-SXM4-80GB, L40S, …).
    #[arg(long)]
    pub gpu: Option<String>,

    /// Tensor-parallel size of each replica.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp: Option<u32>,

    /// Data-parallel replicas the load was spread over.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub dp: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Result files (vLLM / SGLang bench JSON or JSONL, guidellm benchmarks.json, AIPerf or
    /// GenAI-Perf profile_export JSON, AIPerf profile_export.jsonl, EvalScope
    /// benchmark_summary.json or benchmark_data.db, llmperf *_summary.json).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The tool that wrote the files.
    #[arg(long, value_enum, default_value_t = ToolArg::Auto)]
    pub tool: ToolArg,

    #[command(flatten)]
    pub deployment: DeploymentArgs,

    /// A note stored with each result.
    #[arg(long)]
    pub note: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ResultsArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CheckResultArgs {
    /// An imported result's id (`ceiling results`), or a result file to read without storing.
    pub result: String,

    /// The tool that wrote the file (when a file is given).
    #[arg(long, value_enum, default_value_t = ToolArg::Auto)]
    pub tool: ToolArg,

    /// Overrides what was stated at import.
    #[command(flatten)]
    pub deployment: DeploymentArgs,

    /// A recorded `ceiling` run (id or `latest`) whose step-time fit predicts the result's TPOT
    /// and throughput at its concurrency and lengths.
    #[arg(long, value_name = "RUN")]
    pub against: Option<String>,

    /// Minimum output tokens/s per sequence [default: 20].
    #[arg(long, value_name = "TOK_S")]
    pub sla_otps: Option<f64>,

    /// Print Markdown (for a PR comment) instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Exit with code 1 when any check fails.
    #[arg(long)]
    pub gate: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// What changed between the two results of `ceiling compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChangeArg {
    Decode,
    Prefill,
    KvCache,
    Mtp,
    Ep,
    Pd,
    Tp,
    Quantization,
    Hardware,
    EngineVersion,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: an imported result's id, a result file, or a step of a recorded run
    /// (`run:ID`, `run:ID:STEP`, `run:latest`; STEP is the step index `ceiling runs ID` shows,
    /// needed when the run has several).
    pub a: String,
    /// The changed one, in the same forms.
    pub b: String,

    /// What changed from A to B; decides what may not move.
    #[arg(long, value_enum)]
    pub change: ChangeArg,

    /// The model's Hugging Face `config.json`, for `--change tp`'s head-divisibility checks
    /// (else the one imported with a result).
    #[arg(long, value_name = "FILE")]
    pub model_config: Option<PathBuf>,

    /// A's tensor-parallel size (else the one imported with it).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp_a: Option<u32>,

    /// B's tensor-parallel size (else the one imported with it).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp_b: Option<u32>,

    /// Exit with code 1 when a rule of the change is broken.
    #[arg(long)]
    pub gate: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

//! The command line, as clap derive types only. Nothing here validates beyond what clap parses;
//! `config.rs` and the commands turn these into checked configuration.

use std::path::PathBuf;

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
    /// The decode roofline of a model on a GPU: the least step time and the most tokens/s the
    /// hardware allows at each batch size, without any run.
    Roofline(RooflineArgs),
    /// Check a deployment's shape before running it.
    Check(CheckArgs),
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
#[command(next_help_heading = "Model")]
pub struct ModelConfigArgs {
    /// The model's Hugging Face `config.json` (a local file).
    #[arg(long, value_name = "FILE")]
    pub model_config: PathBuf,
}

/// How the weights are stored (bytes per parameter, scales included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightDtypeArg {
    Fp32,
    Bf16,
    Fp16,
    Fp8,
    Int8,
    /// 4-bit integer, group 128 (AWQ, GPTQ).
    Int4,
    Mxfp4,
    Nvfp4,
}

/// How the KV cache is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KvDtypeArg {
    Fp32,
    Bf16,
    Fp16,
    Fp8,
}

#[derive(Debug, Args)]
pub struct RooflineArgs {
    #[command(flatten)]
    pub model: ModelConfigArgs,

    /// The GPU, by the name NVML reports (`nvidia-smi --query-gpu=name`), e.g.
    /// "NVIDIA H100 80GB HBM3"; short names such as H100, H200, A100-SXM4-80GB, L40S work too.
    #[arg(long)]
    pub gpu: String,

    /// Tensor-parallel size.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tp: u32,

    /// Batch sizes (sequences decoding together per replica), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub bs: Vec<u32>,

    /// Tokens in each sequence's KV cache at the step (prompt plus tokens generated so far).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub context: u32,

    /// How the block weights are stored [default: as the config says: `torch_dtype`, and
    /// `quantization_config` where present].
    #[arg(long, value_enum)]
    pub weight_dtype: Option<WeightDtypeArg>,

    /// How the KV cache is stored.
    #[arg(long, value_enum, default_value_t = KvDtypeArg::Bf16)]
    pub kv_dtype: KvDtypeArg,

    /// Use this HBM bandwidth (GB/s) instead of the datasheet's.
    #[arg(long, value_name = "GB/S", help_heading = "GPU overrides")]
    pub hbm_bw_gbs: Option<f64>,

    /// Use this dense peak (TFLOPS) instead of the datasheet's, whatever the compute dtype.
    #[arg(long, value_name = "TFLOPS", help_heading = "GPU overrides")]
    pub peak_tflops: Option<f64>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub what: CheckWhat,
}

#[derive(Debug, Subcommand)]
pub enum CheckWhat {
    /// Which tensor-parallel (and expert-parallel) sizes the engines accept for a model, and why.
    Tp(CheckTpArgs),
}

#[derive(Debug, Args)]
pub struct CheckTpArgs {
    #[command(flatten)]
    pub model: ModelConfigArgs,

    /// Tensor-parallel sizes to check, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tp: Vec<u32>,

    /// Expert-parallel size: routed experts spread over this many ranks, each expert whole.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub ep: Option<u32>,

    /// GPUs on the node; sizes needing more are rejected.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub gpus: Option<u32>,

    #[command(flatten)]
    pub output: OutputArgs,
}

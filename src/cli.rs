//! The command line, as clap derive types only. Nothing here validates beyond what clap parses;
//! `config.rs` and the commands turn these into checked configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod analysis;
mod gpu;
mod import;
mod nightly;
mod rate;
mod sim;
pub use analysis::*;
pub use gpu::*;
pub use import::*;
pub use nightly::*;
pub use rate::*;
pub use sim::*;

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
    /// Drive an engine with fixed batch sizes over the OpenAI API and record every chunk.
    Probe(Box<ProbeArgs>),
    /// Scrape an engine's /metrics once (or twice, with --delta) and print the canonical
    /// signals, the raw metric each came from, and what could not be mapped.
    Scrape(ScrapeArgs),
    /// List the GPUs and say which GPU source works on this machine.
    Gpus(GpusArgs),
    /// Import an nvidia-smi CSV log into a recorded run's GPU samples.
    ImportGpu(ImportGpuArgs),
    /// Run a simulated engine (vLLM, SGLang or llama.cpp flavor) with a known ground truth.
    Sim(SimArgs),
    /// Run the proxy in front of simulated prefill and decode servers (vLLM's disaggregated
    /// prefill): prefill with one token, hand the KV off, stream the decode server's answer.
    SimRouter(SimRouterArgs),
    /// Analyse a recorded run: step table, step time three ways, fit, ceiling, findings.
    Analyze(AnalyzeArgs),
    /// Write a run's report: self-contained HTML, Markdown, result.json and the charts.
    Report(ReportArgs),
    /// Start the built-in simulated engine, probe it, analyse and report: the whole job in
    /// under a minute with nothing else installed.
    Demo(DemoArgs),
    /// The decode roofline of a model on a GPU: the least step time and the most tokens/s the
    /// hardware allows at each batch size, without any run.
    Roofline(RooflineArgs),
    /// Check a deployment's shape before running it, or a benchmark result.
    Check(CheckArgs),
    /// Import other benchmark tools' result files (vLLM, SGLang, guidellm, AIPerf, GenAI-Perf,
    /// EvalScope, llmperf) into the store.
    Import(ImportArgs),
    /// List imported benchmark results.
    Results(ResultsArgs),
    /// Compare two imported results: each figure's change with its noise, and what the change
    /// may not move.
    Compare(CompareArgs),
    /// Judge a run against its history: regression, improvement or noise per metric and batch.
    Regress(RegressArgs),
    /// One night on one node: probe, analyse, judge against the node's history, write the
    /// nightly report (HTML and Markdown: the verdict, the regressions with what changed beside
    /// them, the trend charts), and exit 1 with --gate when a metric regressed.
    Nightly(Box<NightlyArgs>),
    /// A metric's trend over a node's nights, with the noise band and the version changes.
    History(HistoryArgs),
    /// Write the node's history (runs × steps with their results) as Parquet, by host and date.
    Export(ExportArgs),
    /// Exercise the recording writer until killed (used by the crash-safety test).
    #[command(name = "__write-load", hide = true)]
    WriteLoad(WriteLoadArgs),
    /// Record a synthetic run of about N chunks (the analysis benchmark's input).
    #[command(name = "__synth-run", hide = true)]
    SynthRun(SynthRunArgs),
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
pub struct SynthRunArgs {
    /// Chunk rows to record, spread over four wave steps (bs 32, 64, 128, 256, 1,024 tokens
    /// each).
    #[arg(long, default_value_t = 10_000_000)]
    pub chunks: u64,
}

/// Where the engine is and how to talk to it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Engine")]
pub struct EngineArgs {
    /// The engine's base URL (the OpenAI API under /v1, metrics under /metrics).
    #[arg(long)]
    pub url: String,
    /// Model name to send; default: the first model `/v1/models` lists.
    #[arg(long)]
    pub model: Option<String>,
    /// The model's revision (a Hugging Face commit, an image tag), recorded with the run and
    /// named by `regress` when it changes. Default: what the engine says of its weights (the
    /// model list's `root` path where it is not the served name; llama.cpp's parameter count
    /// and file size).
    #[arg(long, value_name = "REV")]
    pub model_revision: Option<String>,
    /// Environment variable holding the API key (sent as a bearer token, never stored).
    /// Default: OPENAI_API_KEY when it is set.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Which OpenAI endpoint to drive: token-id prompts on completions, text on chat.
    #[arg(long, value_enum, default_value_t = EndpointArg::Completions)]
    pub endpoint: EndpointArg,
    /// Data-parallel ranks behind the URL (for the throughput identity).
    #[arg(long, default_value_t = 1)]
    pub dp: u32,
    /// Give up on a request after this long.
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
}

/// What load to send.
#[derive(Debug, Args)]
#[command(next_help_heading = "Load")]
pub struct LoadArgs {
    /// Batch sizes: concurrent sequences per step, one step each; or `auto` to search for the
    /// largest batch the engine follows (see the Search flags and docs/SEARCH.md).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32", value_parser = batch_size)]
    pub batch_sizes: Vec<BatchSizeArg>,
    /// Prompt lengths in tokens (exact on the completions endpoint). Several, e.g.
    /// `128,1024,8192`, make one step per batch size × length pair.
    #[arg(long, value_delimiter = ',', default_value = "512")]
    pub input_len: Vec<u32>,
    /// Output lengths in tokens (`max_tokens` with `ignore_eos`). Several, e.g. `128,1024`,
    /// make one step per batch size × length pair.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    pub output_len: Vec<u32>,
    /// `wave`: bs requests at once, wait for all, repeat. `closed-loop`: bs workers back to back.
    /// `rate`: open loop at --rates. `sweep`: saturation, then rates up to it (docs/PROBE.md).
    #[arg(long, value_enum, default_value_t = PatternArg::Wave)]
    pub pattern: PatternArg,
    /// Measured waves per step (wave pattern).
    #[arg(long, default_value_t = 3)]
    pub waves: u32,
    /// Measured time per step (closed-loop pattern).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Warm-up before measuring: a number of waves (wave) or a duration such as `10s`
    /// (closed-loop).
    #[arg(long, default_value = "1")]
    pub warmup: String,
    /// Start closed-loop workers at this rate (e.g. `2/s`) instead of all at once.
    #[arg(long)]
    pub ramp: Option<String>,
    /// Vocabulary size for random token-id prompts (default: what the engine reports, else
    /// ids below 10,000).
    #[arg(long)]
    pub vocab_size: Option<u32>,
    /// The model's `tokenizer.json` (Hugging Face format, a local file): token-id prompts use
    /// its ordinary tokens, and chat prompts are built from its one-token words and counted by
    /// it, so their length is exact on chat too.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<std::path::PathBuf>,
    /// `cold`: a unique random prompt per request defeats the prefix cache. `warm`: each
    /// worker reuses its prompt, to measure the cache.
    #[arg(long, value_enum, default_value_t = PrefixCacheArg::Cold)]
    pub prefix_cache: PrefixCacheArg,
    /// Seed for the random prompts [default: a fresh one per run, recorded in the run's probe
    /// config]. The same seed sends the same prompts: against an engine with prefix caching,
    /// rerunning with a fixed seed hits the cache.
    #[arg(long)]
    pub seed: Option<u64>,
    /// On Ctrl-C, let in-flight streams finish for this long before cancelling them.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
}

/// What to record besides the requests.
#[derive(Debug, Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryArgs {
    /// Scrape the engine's /metrics this often (0s turns scraping off).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub scrape_interval: std::time::Duration,
    /// The engine's metrics URL; default: URL/metrics. For a prefill/decode disaggregated
    /// deployment, repeat it with a role: `--metrics-url prefill=URL --metrics-url decode=URL`
    /// (several of each); the router's URL is then not scraped unless given without a role.
    #[arg(long, value_name = "[ROLE=]URL")]
    pub metrics_url: Vec<String>,
    /// Fail instead of warning when the engine's metrics cannot be scraped.
    #[arg(long)]
    pub require_metrics: bool,
    /// Sample the GPUs this often (0s turns GPU sampling off).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub gpu_interval: std::time::Duration,
    /// Where GPU samples come from: `nvml`, or `dcgm:URL` for a DCGM exporter.
    #[arg(long, default_value = "nvml")]
    pub gpu_source: String,
    /// Fail instead of warning when no GPU can be sampled.
    #[arg(long)]
    pub require_gpu: bool,
    #[command(flatten)]
    pub gpu_select: GpuSelectArgs,
}

/// One entry of `--batch-sizes`: a size, or `auto` (the search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSizeArg {
    Auto,
    Size(u32),
}

fn batch_size(text: &str) -> Result<BatchSizeArg, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(BatchSizeArg::Auto);
    }
    text.trim()
        .parse()
        .map(BatchSizeArg::Size)
        .map_err(|_| format!("{text:?} is neither a batch size nor `auto`"))
}

/// How `--batch-sizes auto` searches.
#[derive(Debug, Args)]
#[command(next_help_heading = "Search (--batch-sizes auto)")]
pub struct SearchArgs {
    /// Stop the search before a step that would end past this much time from its start.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub budget: Duration,
    /// Minimum output tokens/s per sequence a step must reach to count (default 20 when no
    /// SLA is given); also the SLA of the analysis printed at the end.
    #[arg(long, value_name = "TOK_S")]
    pub sla_otps: Option<f64>,
    /// Maximum time per output token a step may take, e.g. `50ms`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub sla_tpot: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub rate: RateArgs,
    #[command(flatten)]
    pub mix: MixArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointArg {
    Completions,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PatternArg {
    Wave,
    ClosedLoop,
    /// Open loop at each of --rates.
    Rate,
    /// A closed-loop saturation step, then --sweep-points rates up to it.
    Sweep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrefixCacheArg {
    Cold,
    Warm,
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
    /// Whether a benchmark result is plausible: its identities, its workload, and the hardware.
    Result(Box<CheckResultArgs>),
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

//! Flags of the open-loop probe (`--pattern rate` and `--pattern sweep`) and of the length
//! mixes any pattern can send (`--dataset`, `--input-range`). Clap types only; `config/rate.rs`
//! checks them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// One entry of `--rates`: requests per second, or `inf` (all at once).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateArg {
    PerSecond(f64),
    Inf,
}

pub(super) fn rate(text: &str) -> Result<RateArg, String> {
    let t = text.trim().trim_end_matches("/s");
    if t.eq_ignore_ascii_case("inf") {
        return Ok(RateArg::Inf);
    }
    match t.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(RateArg::PerSecond(r)),
        _ => Err(format!(
            "{text:?} is not a request rate; give requests per second (e.g. 2 or 0.5) or `inf`"
        )),
    }
}

/// A share given as `95%` or `0.95`.
pub(super) fn share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    };
    match v {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{text:?} is not a share; give e.g. 95% or 0.95")),
    }
}

/// The open loop and its sweep (`--pattern rate`, `--pattern sweep`; docs/PROBE.md).
#[derive(Debug, Args)]
#[command(next_help_heading = "Open loop (--pattern rate | sweep)")]
pub struct RateArgs {
    /// Arrival rates in requests/s, one step each, e.g. `1,2,4,8,inf`; `inf` sends every
    /// request of the step at once. Each step lasts --duration (or sends --num-prompts).
    #[arg(long, value_delimiter = ',', value_parser = rate)]
    pub rates: Vec<RateArg>,
    /// Gamma shape of the inter-arrival times, as vLLM's bench: 1 is a Poisson process, lower
    /// is burstier, higher more regular. The mean rate is the asked one whatever the shape.
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// At most this many requests in flight; an arrival past it waits for a slot (as vLLM's
    /// `--max-concurrency`), and its wait shows as lateness against the schedule.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<u32>,
    /// Requests per rate step instead of --duration (vLLM's `--num-prompts`); also the size
    /// of an `inf` step [default: the most a finite rate of the run sends in --duration].
    #[arg(long, value_name = "N")]
    pub num_prompts: Option<u32>,
    /// Sweep: rate steps spread evenly from the lowest to the saturation rate a closed-loop
    /// step measured first.
    #[arg(long, default_value_t = 10)]
    pub sweep_points: u32,
    /// Sweep: concurrency of the closed-loop step that finds the saturation rate [default:
    /// --max-concurrency, else 256].
    #[arg(long, value_name = "N")]
    pub saturation_concurrency: Option<u32>,
    /// The macro ceiling's SLA on p99 time to first token, e.g. `2s` (with --sla-tpot on p99
    /// TPOT).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub sla_ttft: Option<Duration>,
    /// Sweep: stop when a step's successful requests fall below this share, e.g. `95%`.
    #[arg(long, value_name = "SHARE", value_parser = share)]
    pub stop_on_failure: Option<f64>,
}

/// What a dataset's prompts send (`--dataset-prompts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetPromptsArg {
    Lengths,
    Text,
}

/// Where the request lengths come from, whatever the pattern.
#[derive(Debug, Args)]
#[command(next_help_heading = "Length mix")]
pub struct MixArgs {
    /// Lengths from a dataset: ShareGPT JSON (a list of `{"conversations": [...]}`), or JSONL
    /// of `{"prompt": ...}` (output from --output-len) or `{"prompt_len": N, "output_len": M}`.
    /// Each request takes the next entry's lengths (shuffled by --seed) and sends a prompt of
    /// exactly that many tokens; `ignore_eos` still forces the output length.
    #[arg(long, value_name = "FILE", conflicts_with = "input_range")]
    pub dataset: Option<PathBuf>,
    /// What a dataset's prompts send: `lengths` (a prompt of exactly the entry's length, made
    /// of random tokens: exact lengths, comparable with the micro ceiling) or `text` (the
    /// entry's own text, as vLLM's and guidellm's ShareGPT runs send it: the engine's count is
    /// recorded as the length; a line of lengths still gets a prompt made to length).
    #[arg(long, value_enum, default_value = "lengths", requires = "dataset")]
    pub dataset_prompts: DatasetPromptsArg,
    /// Uniform lengths around --input-len and --output-len: each request draws from
    /// `[len × (1 − R), len × (1 + R)]`, as vLLM's random dataset's `--random-range-ratio`.
    #[arg(long, value_name = "R")]
    pub input_range: Option<f64>,
}

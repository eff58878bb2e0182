//! `ceiling sim`'s arguments: the flavor and profile it imitates, its prefill/decode role, DP,
//! time scale, the faults it injects, and `ceiling sim-router`'s; its DCGM exporter's and planted nights' flags are in [`super::gpu`] and
//! [`super::nightly`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{SimGpuArgs, SimNightArgs};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Which engine to imitate at the HTTP and /metrics level.
    #[arg(long, value_enum, default_value = "vllm")]
    pub flavor: SimFlavorArg,

    /// Unified, or one side of a prefill/decode pair (put `ceiling sim-router` in front).
    #[arg(long, value_enum, default_value = "unified")]
    pub role: SimRoleArg,

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

    #[command(flatten)]
    pub gpu: SimGpuArgs,

    #[command(flatten)]
    pub night: SimNightArgs,
}

/// The engine `ceiling sim` imitates (mapped onto `ceiling_sim::SimFlavor`, which knows no clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimFlavorArg {
    Vllm,
    Sglang,
    Llamacpp,
}

/// The part `ceiling sim` plays (mapped onto `ceiling_sim::SimRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SimRoleArg {
    Unified,
    Prefill,
    Decode,
}

/// `ceiling sim-router`'s arguments: the servers of each side and the KV hand-off.
#[derive(Debug, Args)]
pub struct SimRouterArgs {
    /// A prefill server's base URL, e.g. http://127.0.0.1:8100 (repeat for more; round robin).
    #[arg(long, value_name = "URL")]
    pub prefill: Vec<String>,

    /// A decode server's base URL (repeat for more; round robin).
    #[arg(long, value_name = "URL")]
    pub decode: Vec<String>,

    /// The simulated KV transfer: the wait between the prefill's answer and the decode request.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    pub handoff: Duration,

    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
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
    ceiling_sim::parse_probability(text).map_err(|e| e.to_string())
}

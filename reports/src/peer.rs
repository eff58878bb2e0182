//! Other benchmark tools' result files, read into one shape: [`PeerPoint`], one per benchmark
//! point (a sweep or a multi-rate file gives several), with its requests where the file has
//! them. Pure: bytes in, points out; the binary stores them and reads side files (EvalScope's
//! SQLite) for it.
//!
//! The convention every point is normalised to is ours (and vLLM's): times in seconds,
//! `TPOT = (E2E − TTFT) / (n − 1)` per request, averaged over requests; `ITL` = the gaps between
//! streamed chunks, pooled over all chunks. Where the file has per-request data, TPOT and ITL
//! are recomputed from it ([`stats::from_requests`]); else they are taken from the tool's own
//! figures only where its definition is ours, and left `None` where it is not (guidellm's
//! `time_per_output_token_ms`, which includes TTFT; llmperf's `inter_token_latency_s`). The
//! tool's own figures are kept beside, under their own names, in [`PeerPoint::tool_figures`].
//! The formats, their units and quirks: `docs/CHECKS.md` and the tools' sources.

pub mod aiperf;
pub mod detect;
pub mod evalscope;
pub mod gpustack;
pub mod guidellm;
pub mod inference_benchmarker;
pub mod json;
pub mod llmperf;
pub mod locust;
pub mod own_run;
pub mod stats;
pub mod vllm;

use serde::{Deserialize, Serialize};

pub use detect::{Tool, parse};

/// Mean, median, p90, p95, p99 and standard deviation of one latency, in seconds; a figure
/// the tool did not write and that cannot be recomputed is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub mean_s: Option<f64>,
    pub p50_s: Option<f64>,
    pub p90_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub p99_s: Option<f64>,
    pub std_s: Option<f64>,
}

impl Stats {
    /// Each figure of `self`, else `other`'s.
    pub fn or(self, other: Stats) -> Stats {
        Stats {
            mean_s: self.mean_s.or(other.mean_s),
            p50_s: self.p50_s.or(other.p50_s),
            p90_s: self.p90_s.or(other.p90_s),
            p95_s: self.p95_s.or(other.p95_s),
            p99_s: self.p99_s.or(other.p99_s),
            std_s: self.std_s.or(other.std_s),
        }
    }

    /// Every figure multiplied by `k` (milliseconds to seconds: `1e-3`).
    pub fn scaled(self, k: f64) -> Stats {
        let f = |v: Option<f64>| v.map(|x| x * k);
        Stats {
            mean_s: f(self.mean_s),
            p50_s: f(self.p50_s),
            p90_s: f(self.p90_s),
            p95_s: f(self.p95_s),
            p99_s: f(self.p99_s),
            std_s: f(self.std_s),
        }
    }
}

/// How the load was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadMode {
    /// A fixed number of streams sending back to back.
    ClosedLoop,
    /// Requests at a given rate (Poisson or gamma arrivals), possibly capped by a concurrency.
    Rate,
    /// One point of a sweep the tool ran itself.
    SweepPoint,
    /// The file does not say.
    Unknown,
}

impl LoadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadMode::ClosedLoop => "closed_loop",
            LoadMode::Rate => "rate",
            LoadMode::SweepPoint => "sweep_point",
            LoadMode::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> LoadMode {
        match s {
            "closed_loop" => LoadMode::ClosedLoop,
            "rate" => LoadMode::Rate,
            "sweep_point" => LoadMode::SweepPoint,
            _ => LoadMode::Unknown,
        }
    }
}

/// One request of an imported result, times in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRequest {
    /// Send time relative to the first request's, where the file has absolute times.
    pub start_s: Option<f64>,
    pub ttft_s: Option<f64>,
    pub e2e_s: Option<f64>,
    pub input_tokens: Option<f64>,
    pub output_tokens: Option<f64>,
    pub ok: bool,
    pub error: Option<String>,
    /// The gaps between this request's streamed chunks (empty when the file has none).
    pub itl_s: Vec<f64>,
}

/// One benchmark point, normalised (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerPoint {
    pub tool: Tool,
    pub tool_version: Option<String>,
    /// Which point of the file: a run index, a strategy name (`concurrent@8`).
    pub label: Option<String>,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub mode: LoadMode,
    /// The configured concurrency (streams or the client's semaphore).
    pub concurrency: Option<f64>,
    /// The offered request rate; `None` when unlimited or not said.
    pub request_rate: Option<f64>,
    pub burstiness: Option<f64>,
    pub dataset: Option<String>,
    pub input_len_requested: Option<f64>,
    pub output_len_requested: Option<f64>,
    pub input_len_mean: Option<f64>,
    pub output_len_mean: Option<f64>,
    /// Whether `ignore_eos` was sent, where the file says.
    pub ignore_eos: Option<bool>,
    /// Requests run before the measurement and left out of it, where the file says.
    pub warmup_requests: Option<u64>,
    pub completed: Option<u64>,
    pub failed: Option<u64>,
    pub duration_s: Option<f64>,
    pub req_per_s: Option<f64>,
    pub output_tok_per_s: Option<f64>,
    pub total_tok_per_s: Option<f64>,
    pub ttft: Stats,
    pub tpot: Stats,
    pub itl: Stats,
    pub e2e: Stats,
    /// The tool's own figures under its own names, with what each means.
    pub tool_figures: serde_json::Value,
    pub requests: Vec<PeerRequest>,
}

impl PeerPoint {
    /// An empty point of `tool`: every figure `None`, mode unknown.
    pub fn new(tool: Tool) -> Self {
        PeerPoint {
            tool,
            tool_version: None,
            label: None,
            model: None,
            endpoint: None,
            mode: LoadMode::Unknown,
            concurrency: None,
            request_rate: None,
            burstiness: None,
            dataset: None,
            input_len_requested: None,
            output_len_requested: None,
            input_len_mean: None,
            output_len_mean: None,
            ignore_eos: None,
            warmup_requests: None,
            completed: None,
            failed: None,
            duration_s: None,
            req_per_s: None,
            output_tok_per_s: None,
            total_tok_per_s: None,
            ttft: Stats::default(),
            tpot: Stats::default(),
            itl: Stats::default(),
            e2e: Stats::default(),
            tool_figures: serde_json::Value::Null,
            requests: Vec::new(),
        }
    }

    /// Fills what the per-request data give and the file left out, and replaces TPOT and ITL
    /// with our convention recomputed from the requests where they carry the times. A tool's
    /// TTFT and E2E figures are kept: they are what it printed.
    pub fn complete_from_requests(&mut self) -> Result<(), polars::error::PolarsError> {
        if self.failed.is_none() && !self.requests.is_empty() {
            self.failed = Some(self.requests.iter().filter(|r| !r.ok).count() as u64);
        }
        let Some(agg) = stats::from_requests(&self.requests)? else {
            return Ok(());
        };
        self.ttft = self.ttft.or(agg.ttft);
        self.e2e = self.e2e.or(agg.e2e);
        if agg.tpot.mean_s.is_some() {
            self.tpot = agg.tpot;
        }
        if agg.itl.mean_s.is_some() {
            self.itl = agg.itl;
        }
        self.input_len_mean = self.input_len_mean.or(agg.input_len_mean);
        self.output_len_mean = self.output_len_mean.or(agg.output_len_mean);
        Ok(())
    }
}

/// A file that could not be read as a result: where, what was expected, and which tools it
/// might be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {problem}{}", hint(.maybe))]
pub struct PeerError {
    /// `line L column C`, a key path such as `benchmarks[0].metrics`, or `the file`.
    pub at: String,
    pub problem: String,
    /// Tools whose files this one resembles.
    pub maybe: Vec<String>,
}

fn hint(maybe: &[String]) -> String {
    if maybe.is_empty() {
        String::new()
    } else {
        format!(" (it looks like a {} file)", maybe.join(" or "))
    }
}

impl PeerError {
    pub fn new(at: impl Into<String>, problem: impl Into<String>) -> Self {
        PeerError {
            at: at.into(),
            problem: problem.into(),
            maybe: Vec::new(),
        }
    }
}

impl From<polars::error::PolarsError> for PeerError {
    fn from(e: polars::error::PolarsError) -> Self {
        PeerError::new("the per-request table", e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests;

//! The rows of a recording as the probe writes them and the analysis reads them: steps, requests
//! with their chunk arrivals, and the client's lateness ticks. Instants are f64 seconds from the
//! run's start on one monotonic clock; anything not observed is `None`. These are what the
//! probe writes; the analysis reads a [`Recording`], the same rows as polars frames.

use serde::{Deserialize, Serialize};

mod frames;
pub use frames::{ChunkColumns, Recording, RecordingParts, RequestColumns, RunInfo, ticks_frame};

/// How a step drives the engine (DESIGN.md, "Probe semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// `bs` requests at once, wait for all, repeat.
    Wave,
    /// `bs` long-lived workers sending back to back.
    ClosedLoop,
    /// Open loop: requests arrive on a schedule at a set rate (gamma inter-arrivals), each a
    /// new request whatever is in flight; the step has no fixed batch.
    Rate,
}

impl Pattern {
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Wave => "wave",
            Pattern::ClosedLoop => "closed-loop",
            Pattern::Rate => "rate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wave" => Some(Pattern::Wave),
            "closed-loop" => Some(Pattern::ClosedLoop),
            "rate" => Some(Pattern::Rate),
            _ => None,
        }
    }
}

/// One step of a run: a batch size and lengths driven with one pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub idx: u32,
    /// The fixed batch (wave, closed loop); for a rate step the in-flight cap
    /// (`--max-concurrency`), 0 when uncapped.
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub pattern: Pattern,
    pub start_t_s: f64,
    pub end_t_s: Option<f64>,
    /// A rate step's asked arrival rate, requests/s (`+inf`: all at once); `None` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_rps: Option<f64>,
    /// A rate step's burstiness (the gamma shape; 1 is Poisson); `None` elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burstiness: Option<f64>,
}

/// How a request ended. A failed request is data, counted by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// The engine answered with a non-2xx status.
    HttpError,
    /// The connection could not be made or broke before the response headers.
    ConnectError,
    /// The request ran past `--request-timeout`.
    Timeout,
    /// The stream ended before the engine said it was done.
    StreamCut,
    /// The stream carried something that is not valid SSE / JSON.
    MalformedSse,
    /// The engine sent an error object inside the stream.
    EngineError,
    /// The probe stopped the request (Ctrl-C, deadline).
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::ConnectError,
        Outcome::Timeout,
        Outcome::StreamCut,
        Outcome::MalformedSse,
        Outcome::EngineError,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::ConnectError => "connect_error",
            Outcome::Timeout => "timeout",
            Outcome::StreamCut => "stream_cut",
            Outcome::MalformedSse => "malformed_sse",
            Outcome::EngineError => "engine_error",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Whether a chunk carried reasoning (`reasoning_content`) or answer text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    Reasoning,
    Answer,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Reasoning => "reasoning",
            ChunkKind::Answer => "answer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reasoning" => Some(ChunkKind::Reasoning),
            "answer" => Some(ChunkKind::Answer),
            _ => None,
        }
    }
}

/// One streamed chunk that carried tokens: when it arrived and, where the engine said so
/// (`continuous_usage_stats`), how many tokens it held.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkArrival {
    pub t_s: f64,
    pub tokens: Option<u32>,
    pub kind: ChunkKind,
}

/// One request as the probe saw it: instants, what was asked, what the engine's `usage` said,
/// how it ended, and every chunk's arrival.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub step_idx: u32,
    pub worker: u32,
    /// Wave number within the step (wave pattern only).
    pub wave: Option<u32>,
    /// Sent during warm-up: recorded, left out of the figures.
    pub warmup: bool,
    /// When the schedule wanted the request sent (rate steps); `sent_t_s` minus this is how
    /// late the client was. `None` outside the open loop.
    #[serde(default)]
    pub scheduled_t_s: Option<f64>,
    pub sent_t_s: f64,
    pub headers_t_s: Option<f64>,
    pub first_token_t_s: Option<f64>,
    pub first_answer_t_s: Option<f64>,
    pub done_t_s: Option<f64>,
    pub prompt_tokens_requested: u32,
    pub completion_tokens_requested: u32,
    pub prompt_tokens_reported: Option<u32>,
    pub completion_tokens_reported: Option<u32>,
    pub cached_tokens_reported: Option<u32>,
    /// The prompt was a dataset's text (`--dataset-prompts text`): `prompt_tokens_requested` is
    /// a count of that text (by `--tokenizer`, else estimated), and the engine's
    /// `prompt_tokens_reported` is the measure. False for the exact-length prompts.
    #[serde(default)]
    pub prompt_from_text: bool,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub chunks: Vec<ChunkArrival>,
    /// The engine's id for the response (the `id` of its chunks), to find the request in the
    /// engine's logs.
    #[serde(default)]
    pub response_id: Option<String>,
}

/// One tick of the client's lateness ticker: when it was due to wake and how late it woke.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatenessTick {
    pub step_idx: u32,
    pub t_s: f64,
    pub late_s: f64,
}

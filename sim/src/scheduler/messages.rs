//! What the HTTP side and a rank's scheduler hand each other: a [`Submission`] in, an [`Emit`]
//! per step out, and why a request stopped.

use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

/// Why a request stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishReason {
    Stop,
    Length,
    Abort,
    /// llama.cpp: its KV cache could not hold the batch ([`CONTEXT_EXCEEDED`]); the request
    /// ends with an error, not a finish reason.
    ContextExceeded,
}

/// What llama.cpp sends every processing slot when a batch finds no room in its KV cache even
/// one token at a time (`server_context::update_slots`, b11434).
pub(crate) const CONTEXT_EXCEEDED: &str = "Context size has been exceeded.";

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Abort | FinishReason::ContextExceeded => "abort",
        }
    }
}

/// One request handed to a rank.
pub(crate) struct Submission {
    pub prompt: Vec<u32>,
    pub max_tokens: u32,
    pub min_tokens: u32,
    pub ignore_eos: bool,
    /// Leading output tokens that are reasoning (chat with a reasoning profile).
    pub reasoning_tokens: u32,
    pub arrival: Instant,
    pub tx: UnboundedSender<Emit>,
    /// The API server (front-end) that took the request: vLLM with DP runs one per rank.
    pub frontend: u32,
    /// The prompt's KV arrived from a prefill engine (a decode server's `do_remote_prefill`):
    /// the prompt counts as computed, and the request still needs its KV blocks.
    pub prefilled: bool,
}

/// Tokens a step delivered to one request (one streamed chunk).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Emit {
    pub tokens: u32,
    /// How many of `tokens` (the leading ones) are reasoning tokens.
    pub reasoning: u32,
    pub finish: Option<FinishReason>,
    pub prompt_tokens: u32,
    pub cached_tokens: u32,
    /// Output tokens so far, this chunk included.
    pub completion_tokens: u32,
    /// When the scheduler delivered it (its step's end): the front-end's lag is measured from
    /// here to the chunk's encoding.
    pub at: std::time::Instant,
}

pub(crate) enum Msg {
    Submit(Submission),
    Stop,
}

//! Reading a completion request: the JSON body validated the way the imitated engine validates
//! it (context length, `max_tokens`, `min_tokens`, `kv_transfer_params`), prompt tokens
//! counted, and the error body in the flavor's shape.
//!
//! Prompt length: a token-id array counts one token per id; a text prompt (or a chat's message
//! contents) counts one token per whitespace-separated word, each word hashed to a stable id so
//! that repeated text hits the prefix cache.

use std::hash::{DefaultHasher, Hash, Hasher};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::flavor::SimFlavor;
use crate::role::KvTransfer;
use crate::shared::Shared;

/// A validated completion request.
pub(crate) struct CompletionRequest {
    pub chat: bool,
    pub prompt: Vec<u32>,
    pub max_tokens: u32,
    pub min_tokens: u32,
    pub ignore_eos: bool,
    pub stream: bool,
    pub include_usage: bool,
    pub continuous_usage: bool,
    pub kv_transfer: KvTransfer,
}

fn word_token(word: &str, vocab: u32) -> u32 {
    let mut h = DefaultHasher::new();
    word.hash(&mut h);
    // Ids 0..3 are left to special tokens.
    3 + (h.finish() % u64::from(vocab - 3)) as u32
}

fn text_tokens(text: &str, vocab: u32, out: &mut Vec<u32>) {
    out.extend(text.split_whitespace().map(|w| word_token(w, vocab)));
}

fn prompt_tokens(sh: &Shared, v: &Value, chat: bool) -> Result<Vec<u32>, String> {
    let vocab = sh.profile.vocab_size;
    let mut out = Vec::new();
    if chat {
        let msgs = v["messages"]
            .as_array()
            .ok_or("`messages` must be a list")?;
        for m in msgs {
            match &m["content"] {
                Value::String(s) => text_tokens(s, vocab, &mut out),
                Value::Array(parts) => {
                    for p in parts {
                        text_tokens(p["text"].as_str().unwrap_or(""), vocab, &mut out);
                    }
                }
                _ => {}
            }
        }
        return Ok(out);
    }
    match &v["prompt"] {
        Value::String(s) => text_tokens(s, vocab, &mut out),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            for id in items.iter().filter_map(Value::as_u64) {
                if id >= u64::from(vocab) {
                    return Err(format!("Token id {id} is out of vocabulary"));
                }
                out.push(id as u32);
            }
        }
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(s) => text_tokens(s, vocab, &mut out),
            _ => return Err("batched prompts are not supported by the simulator".into()),
        },
        _ => return Err("`prompt` must be a string or a list of token ids".into()),
    }
    Ok(out)
}

/// The request in `body`, or the error response the imitated engine gives for it.
pub(super) fn parse_request(
    sh: &Shared,
    body: &[u8],
    chat: bool,
) -> Result<CompletionRequest, Box<Response>> {
    let bad = |msg: String| Box::new(error(sh, StatusCode::BAD_REQUEST, "BadRequestError", &msg));
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    let prompt = prompt_tokens(sh, &v, chat).map_err(bad)?;
    if prompt.is_empty() {
        return Err(bad("the prompt is empty".into()));
    }
    let max_len = sh.profile.max_model_len;
    let plen = prompt.len() as u64;
    let asked = v["max_tokens"]
        .as_u64()
        .or_else(|| v["max_completion_tokens"].as_u64());
    if sh.flavor == SimFlavor::Llamacpp && plen >= u64::from(max_len) {
        let body = json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": plen, "n_ctx": max_len}});
        return Err(Box::new(
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
        ));
    }
    let room = u64::from(max_len).saturating_sub(plen);
    let max_tokens = match (asked, sh.flavor) {
        (Some(0), _) => return Err(bad("max_tokens must be at least 1, got 0.".into())),
        // llama.cpp stops silently at the slot's context instead of rejecting.
        (Some(m), SimFlavor::Llamacpp) => m.min(room),
        (Some(m), _) if plen + m > u64::from(max_len) => {
            return Err(bad(format!(
                "This model's maximum context length is {max_len} tokens. However, you requested {} tokens ({plen} in the messages, {m} in the completion). Please reduce the length of the messages or completion.",
                plen + m
            )));
        }
        (Some(m), _) => m,
        (None, _) => room,
    };
    if max_tokens == 0 {
        return Err(bad(format!(
            "This model's maximum context length is {max_len} tokens and the prompt has {plen}."
        )));
    }
    let min_tokens = v["min_tokens"].as_u64().unwrap_or(0);
    if min_tokens > max_tokens {
        return Err(bad(format!(
            "min_tokens must be less than or equal to max_tokens={max_tokens}, got {min_tokens}."
        )));
    }
    let kv_transfer = KvTransfer::parse(&v["kv_transfer_params"]).map_err(bad)?;
    let opts = &v["stream_options"];
    Ok(CompletionRequest {
        chat,
        prompt,
        max_tokens: u32::try_from(max_tokens).unwrap_or(u32::MAX),
        min_tokens: min_tokens as u32,
        ignore_eos: v["ignore_eos"].as_bool().unwrap_or(false),
        stream: v["stream"].as_bool().unwrap_or(false),
        include_usage: opts["include_usage"].as_bool().unwrap_or(false),
        continuous_usage: opts["continuous_usage_stats"].as_bool().unwrap_or(false),
        kv_transfer,
    })
}

/// An error in the flavor's shape (vLLM's and SGLang's OpenAI error object, llama.cpp's).
pub(crate) fn error(sh: &Shared, status: StatusCode, kind: &str, message: &str) -> Response {
    let code = status.as_u16();
    let body = match sh.flavor {
        SimFlavor::Llamacpp => json!({"error": {"code": code, "message": message, "type": kind}}),
        _ => {
            json!({"object": "error", "message": message, "type": kind, "param": null, "code": code})
        }
    };
    (status, axum::Json(body)).into_response()
}

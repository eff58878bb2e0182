//! The simulator's HTTP surface: OpenAI-compatible completions and chat (streamed or not),
//! `/v1/models`, `/metrics` in the flavor's format, `/sim/truth`, `/health`, llama.cpp's
//! `/props` and `/slots`, and a simulated DCGM exporter at `/dcgm`. Parses requests and applies
//! faults; the scheduler does the timing.
//!
//! Prompt length: a token-id array counts one token per id; a text prompt (or a chat's message
//! contents) counts one token per whitespace-separated word, each word hashed to a stable id so
//! that repeated text hits the prefix cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::faults::{RequestFault, corrupt_exposition};
use super::scheduler::{Msg, Submission};
use super::{Shared, SimFlavor, dcgm, exposition};

mod stream;

type AppState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/metrics", get(metrics))
        .route("/sim/truth", get(truth))
        .route("/sim/requests", get(sim_requests))
        .route("/health", get(health))
        .route("/props", get(props))
        .route("/slots", get(slots))
        .route("/dcgm", get(dcgm_metrics))
        .with_state(shared)
}

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
}

async fn completions(State(sh): AppState, body: Bytes) -> Response {
    complete(sh, body, false).await
}

async fn chat_completions(State(sh): AppState, body: Bytes) -> Response {
    complete(sh, body, true).await
}

async fn complete(sh: Arc<Shared>, body: Bytes, chat: bool) -> Response {
    let arrival = Instant::now();
    let req = match parse_request(&sh, &body, chat) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let fault = sh.faults.draw_request(&sh.fault_counters, req.max_tokens);
    match fault {
        RequestFault::Http500 => {
            return error(
                &sh,
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "simulated internal server error (--fault-http-500)",
            );
        }
        RequestFault::Http429 => {
            return error(
                &sh,
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsError",
                "simulated rate limit (--fault-http-429)",
            );
        }
        _ => {}
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let reasoning = if chat { sh.profile.reasoning_tokens } else { 0 };
    let sub = Submission {
        prompt: req.prompt.clone(),
        max_tokens: req.max_tokens,
        min_tokens: req.min_tokens,
        ignore_eos: req.ignore_eos,
        reasoning_tokens: reasoning,
        arrival,
        tx,
    };
    let rank = sh.next_rank.fetch_add(1, Ordering::Relaxed) % sh.ranks.len();
    if sh.ranks[rank].tx.send(Msg::Submit(sub)).is_err() {
        return error(
            &sh,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the simulated engine is shutting down",
        );
    }
    if req.stream {
        stream::sse_response(sh, req, rx, fault, arrival)
    } else {
        stream::full_response(sh, req, rx, fault).await
    }
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

fn parse_request(sh: &Shared, body: &[u8], chat: bool) -> Result<CompletionRequest, Box<Response>> {
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

async fn models(State(sh): AppState) -> Response {
    let p = &sh.profile;
    let owner = match sh.flavor {
        SimFlavor::Vllm => "vllm",
        SimFlavor::Sglang => "sglang",
        SimFlavor::Llamacpp => "llamacpp",
    };
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": p.model, "object": "model", "created": sh.created_unix_s, "owned_by": owner,
            "root": p.model, "parent": null, "max_model_len": p.max_model_len,
        }]
    }))
    .into_response()
}

async fn metrics(State(sh): AppState) -> Response {
    let snapshot = sh.snapshot(sh.flavor == SimFlavor::Llamacpp);
    let mut text = exposition::render(sh.flavor, &sh.profile, &snapshot);
    if sh.faults.draw_bad_metrics(&sh.fault_counters) {
        text = corrupt_exposition(&text);
    }
    let content_type = match sh.flavor {
        SimFlavor::Llamacpp => "text/plain; version=0.0.4",
        _ => "text/plain; version=0.0.4; charset=utf-8",
    };
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

async fn dcgm_metrics(State(sh): AppState) -> Response {
    let busy: Vec<f64> = sh.snapshot(false).iter().map(|s| s.busy_s).collect();
    let text = dcgm::render(&sh.dcgm.busy_fractions(&busy));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn truth(State(sh): AppState) -> Response {
    axum::Json(sh.truth()).into_response()
}

/// Each streamed response's id and server-side time to first token (arrival to the write of
/// its first token chunk), in the order first tokens were written.
async fn sim_requests(State(sh): AppState) -> Response {
    let log = match sh.first_tokens.lock() {
        Ok(log) => log.clone(),
        Err(_) => Vec::new(),
    };
    let rows: Vec<serde_json::Value> = log
        .into_iter()
        .map(|(id, ttft_s)| json!({"id": id, "ttft_s": ttft_s}))
        .collect();
    axum::Json(rows).into_response()
}

async fn health(State(sh): AppState) -> Response {
    match sh.flavor {
        SimFlavor::Llamacpp => axum::Json(json!({"status": "ok"})).into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

fn total_slots(sh: &Shared) -> u32 {
    sh.profile.max_num_seqs.saturating_mul(sh.dp)
}

async fn props(State(sh): AppState) -> Response {
    if sh.flavor != SimFlavor::Llamacpp {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(json!({
        "default_generation_settings": {"id": 0, "n_ctx": sh.profile.max_model_len, "speculative": sh.profile.spec.is_some(), "is_processing": false},
        "total_slots": total_slots(&sh),
        "model_path": sh.profile.model,
        "chat_template": "",
        "build_info": "b11434-ceiling-sim",
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct SlotsQuery {
    fail_on_no_slot: Option<u8>,
}

async fn slots(State(sh): AppState, Query(q): Query<SlotsQuery>) -> Response {
    if sh.flavor != SimFlavor::Llamacpp {
        return StatusCode::NOT_FOUND.into_response();
    }
    let per_rank = sh.profile.max_num_seqs;
    let snapshot = sh.snapshot(false);
    let mut rows: Vec<Value> = (0..total_slots(&sh))
        .map(|id| json!({"id": id, "n_ctx": sh.profile.max_model_len, "speculative": sh.profile.spec.is_some(), "is_processing": false, "n_prompt_tokens": 0, "n_prompt_tokens_processed": 0, "n_prompt_tokens_cache": 0, "next_token": {"has_next_token": false, "n_remain": -1, "n_decoded": 0}}))
        .collect();
    let mut busy = 0;
    for (r, st) in snapshot.iter().enumerate() {
        for s in &st.slots {
            let id = r as u32 * per_rank + s.id;
            if let Some(row) = rows.get_mut(id as usize) {
                busy += 1;
                *row = json!({"id": id, "n_ctx": sh.profile.max_model_len, "speculative": sh.profile.spec.is_some(), "is_processing": s.is_processing, "n_prompt_tokens": s.n_prompt_tokens, "n_prompt_tokens_processed": s.n_prompt_tokens_processed, "n_prompt_tokens_cache": s.n_prompt_tokens_cache, "next_token": {"has_next_token": true, "n_remain": -1, "n_decoded": s.n_decoded}});
            }
        }
    }
    if q.fail_on_no_slot == Some(1) && busy >= rows.len() {
        return error(
            &sh,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "no slot available",
        );
    }
    axum::Json(Value::Array(rows)).into_response()
}

/// Body that fails after `prefix` (a cut connection).
pub(crate) fn cut_body(prefix: Option<Bytes>) -> Body {
    let items: Vec<Result<Bytes, std::io::Error>> = prefix
        .into_iter()
        .map(Ok)
        .chain(std::iter::once(Err(std::io::Error::other(
            "connection dropped (--fault-drop)",
        ))))
        .collect();
    Body::from_stream(futures_util::stream::iter(items))
}

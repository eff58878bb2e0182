//! The simulator's HTTP surface: OpenAI-compatible completions and chat (streamed or not),
//! `/v1/models`, `/metrics` in the flavor's format, `/sim/truth`, `/health`, llama.cpp's
//! `/props` and `/slots`, and a simulated DCGM exporter at `/dcgm`. Routes requests and applies
//! faults; `request` parses them, `stream` encodes the answers, the scheduler does the timing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::faults::{RequestFault, corrupt_exposition};
use crate::flavor::SimFlavor;
use crate::received::Received;
use crate::role::SimRole;
use crate::scheduler::{Msg, Submission};
use crate::shared::Shared;
use crate::{dcgm, exposition};
use request::{error, parse_request};

mod request;
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

async fn completions(
    State(sh): AppState,
    ConnectInfo(received): ConnectInfo<Received>,
    body: Bytes,
) -> Response {
    complete(sh, &received, body, false).await
}

async fn chat_completions(
    State(sh): AppState,
    ConnectInfo(received): ConnectInfo<Received>,
    body: Bytes,
) -> Response {
    complete(sh, &received, body, true).await
}

async fn complete(sh: Arc<Shared>, received: &Received, body: Bytes, chat: bool) -> Response {
    let (arrival, wall) = crate::received::paired_now();
    // How long the request's last byte waited for this handler (by the kernel's stamp).
    let socket_wait = received.age_at(wall);
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
        frontend: 0,
        prefilled: sh.role == SimRole::Decode && req.kv_transfer.do_remote_prefill,
    };
    let n = sh.next_rank.fetch_add(1, Ordering::Relaxed);
    let rank = n % sh.ranks.len();
    // The API server that took the connection is not the one the rank is picked by: vLLM's
    // front-ends share the port, so each rank serves requests of every front-end.
    let sub = Submission {
        frontend: u32::try_from((n / sh.ranks.len()) % sh.ranks.len()).unwrap_or(0),
        ..sub
    };
    if sh.ranks[rank].tx.send(Msg::Submit(sub)).is_err() {
        return error(
            &sh,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the simulated engine is shutting down",
        );
    }
    if req.stream {
        stream::sse_response(sh, req, rx, fault, arrival, socket_wait)
    } else {
        stream::full_response(sh, req, rx, fault).await
    }
}

async fn models(State(sh): AppState) -> Response {
    let p = &sh.profile;
    let owner = match sh.flavor {
        SimFlavor::Vllm => "vllm",
        SimFlavor::Sglang => "sglang",
        SimFlavor::Llamacpp => "llamacpp",
    };
    let root = match &p.model_revision {
        Some(rev) => format!(
            "/models/hub/models--{}/snapshots/{rev}",
            p.model.replace('/', "--")
        ),
        None => p.model.clone(),
    };
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": p.model, "object": "model", "created": sh.created_unix_s, "owned_by": owner,
            "root": root, "parent": null, "max_model_len": p.max_model_len,
        }]
    }))
    .into_response()
}

async fn metrics(State(sh): AppState) -> Response {
    let snapshot = sh.snapshot(sh.flavor == SimFlavor::Llamacpp);
    let mut text = exposition::render(sh.flavor, sh.role, &sh.profile, &snapshot);
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
    let g = &sh.profile.gpu;
    let text = dcgm::render(&sh.dcgm.readings(&busy, g), sh.dcgm.config(), g);
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

/// Each streamed response's id and server-side time to first token (arrival at its handler to
/// the write of its first token chunk), in the order first tokens were written, with
/// `socket_wait_s`: how long the request's last byte had waited for the handler, by the
/// kernel's receive stamp (absent without one). For a response that ran to its end,
/// `writes_s`: the seconds from its arrival to the write of each chunk that carried tokens
/// (the gaps between them are the inter-token times the server wrote).
async fn sim_requests(State(sh): AppState) -> Response {
    let log = match sh.first_tokens.lock() {
        Ok(log) => log.clone(),
        Err(_) => Vec::new(),
    };
    // Read in place under the lock: a copy would clone up to 16 MiB of instants per call.
    let log_of_writes = sh.writes.lock().ok();
    let writes: std::collections::HashMap<&str, &Vec<f64>> = log_of_writes
        .as_ref()
        .map(|w| w.responses.iter().map(|(id, t)| (id.as_str(), t)).collect())
        .unwrap_or_default();
    let rows: Vec<serde_json::Value> = log
        .into_iter()
        .map(|f| {
            let mut row = json!({"id": f.id, "ttft_s": f.ttft_s});
            if let Some(w) = f.socket_wait_s {
                row["socket_wait_s"] = json!(w);
            }
            if let Some(w) = writes.get(f.id.as_str()) {
                row["writes_s"] = json!(w);
            }
            row
        })
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

//! Response encoding: each scheduler step's tokens become one SSE chunk in the OpenAI shape
//! (`data: {json}\n\n`, then `data: [DONE]\n\n`), or one JSON body when not streaming. Applies
//! the stream faults (cut connection, stall), and a prefill server's `kv_transfer_params`
//! answer. Does no timing of its own.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::request::{CompletionRequest, error};
use crate::faults::RequestFault;
use crate::flavor::SimFlavor;
use crate::role::{SimRole, prefill_answer};
use crate::scheduler::{CONTEXT_EXCEEDED, Emit, FinishReason};
use crate::shared::{FIRST_TOKENS_KEPT, FirstToken, Shared};

const CONTENT_TOKEN: &str = " tok";
const REASONING_TOKEN: &str = " think";

/// What every chunk of one response shares.
struct Encoder {
    chat: bool,
    llamacpp: bool,
    include_usage: bool,
    continuous_usage: bool,
    /// `{"id":…,"object":…,"created":…,"model":…,` — the chunk up to `choices`.
    head: String,
    id: String,
    role_sent: bool,
}

impl Encoder {
    fn new(sh: &Shared, req: &CompletionRequest) -> Self {
        let llamacpp = sh.flavor == SimFlavor::Llamacpp;
        let id_prefix = if req.chat || llamacpp {
            "chatcmpl"
        } else {
            "cmpl"
        };
        let id = format!("{id_prefix}-{:032x}", rand::random::<u128>());
        let object = if req.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let model = serde_json::to_string(&sh.profile.model).unwrap_or_else(|_| "\"\"".into());
        Encoder {
            chat: req.chat,
            llamacpp,
            include_usage: req.include_usage,
            continuous_usage: req.continuous_usage,
            head: format!(
                r#"{{"id":"{id}","object":"{object}","created":{created},"model":{model},"#
            ),
            id,
            role_sent: false,
        }
    }

    fn usage(e: &Emit) -> String {
        format!(
            r#"{{"prompt_tokens":{p},"total_tokens":{t},"completion_tokens":{c},"prompt_tokens_details":{{"cached_tokens":{k}}}}}"#,
            p = e.prompt_tokens,
            t = e.prompt_tokens + e.completion_tokens,
            c = e.completion_tokens,
            k = e.cached_tokens,
        )
    }

    fn frame(&self, out: &mut String, choices: &str, usage: Option<String>) {
        out.push_str("data: ");
        out.push_str(&self.head);
        out.push_str(r#""choices":["#);
        out.push_str(choices);
        out.push(']');
        if let Some(u) = usage {
            out.push_str(r#","usage":"#);
            out.push_str(&u);
        }
        out.push_str("}\n\n");
    }

    /// The SSE bytes for one step's tokens.
    fn encode(&mut self, e: &Emit) -> String {
        if e.finish == Some(FinishReason::ContextExceeded) {
            // llama.cpp ends the stream with the error event, and no `[DONE]`.
            return format!(
                "data: {}\n\n",
                json!({"error": {"code": 500, "message": CONTEXT_EXCEEDED, "type": "server_error"}})
            );
        }
        let mut out = String::new();
        let finish = e
            .finish
            .map_or("null".to_string(), |f| format!("\"{}\"", f.as_str()));
        let content = CONTENT_TOKEN.repeat((e.tokens - e.reasoning) as usize);
        // llama.cpp puts usage on the final completions chunk whether asked or not.
        let usage_here =
            self.continuous_usage || (self.llamacpp && !self.chat && e.finish.is_some());
        let usage = usage_here.then(|| Self::usage(e));
        if self.chat {
            self.chat_chunk(&mut out, e, &finish, &content, usage);
        } else {
            let choice = format!(
                r#"{{"index":0,"text":"{content}","logprobs":null,"finish_reason":{finish},"stop_reason":null}}"#
            );
            self.frame(&mut out, &choice, usage);
        }
        if e.finish.is_some() {
            if self.include_usage && !usage_here {
                self.frame(&mut out, "", Some(Self::usage(e)));
            }
            out.push_str("data: [DONE]\n\n");
        }
        out
    }

    /// A chat chunk: the role chunk first (once), then the step's reasoning and content deltas.
    fn chat_chunk(
        &mut self,
        out: &mut String,
        e: &Emit,
        finish: &str,
        content: &str,
        usage: Option<String>,
    ) {
        if !self.role_sent {
            self.role_sent = true;
            let role = r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#;
            // The role chunk precedes the first token: its usage counts no output yet.
            let role_usage = self.continuous_usage.then(|| {
                Self::usage(&Emit {
                    completion_tokens: 0,
                    ..*e
                })
            });
            self.frame(out, role, role_usage);
        }
        let mut delta = Vec::new();
        if e.reasoning > 0 {
            let r = REASONING_TOKEN.repeat(e.reasoning as usize);
            delta.push(format!(r#""reasoning_content":"{r}""#));
        }
        if !content.is_empty() {
            delta.push(format!(r#""content":"{content}""#));
        }
        let choice = format!(
            r#"{{"index":0,"delta":{{{}}},"logprobs":null,"finish_reason":{finish}}}"#,
            delta.join(",")
        );
        self.frame(out, &choice, usage);
    }
}

struct StreamState {
    rx: UnboundedReceiver<Emit>,
    enc: Encoder,
    sh: Arc<Shared>,
    /// When the request arrived at its handler.
    arrived: std::time::Instant,
    /// How long its last byte had waited for the handler (the kernel's stamp).
    socket_wait: Option<std::time::Duration>,
    /// Seconds from the arrival to the write of each chunk that carried tokens (the first is
    /// the server's TTFT).
    writes: Vec<f64>,
    fault: RequestFault,
    events: u32,
    done: bool,
}

type Item = Result<Bytes, std::io::Error>;

async fn next_chunk(mut st: StreamState) -> Option<(Item, StreamState)> {
    if st.done {
        return None;
    }
    let Some(emit) = st.rx.recv().await else {
        st.done = true;
        return Some((
            Err(std::io::Error::other("the simulated engine stopped")),
            st,
        ));
    };
    st.events += 1;
    match st.fault {
        RequestFault::Drop { after_events } if st.events > after_events => {
            st.done = true;
            return Some((
                Err(std::io::Error::other("connection dropped (--fault-drop)")),
                st,
            ));
        }
        RequestFault::Stall {
            before_event,
            pause,
        } if st.events == before_event => {
            tokio::time::sleep(pause).await;
        }
        _ => {}
    }
    let bytes = st.enc.encode(&emit);
    if emit.tokens > 0 {
        let now = std::time::Instant::now();
        let since_arrival = now.duration_since(st.arrived).as_secs_f64();
        let first = st.writes.is_empty();
        st.writes.push(since_arrival);
        if let Ok(mut lag) = st.sh.frontend_lag.lock() {
            lag.add(now.duration_since(emit.at).as_secs_f64());
        }
        if first
            && let Ok(mut log) = st.sh.first_tokens.lock()
            && log.len() < FIRST_TOKENS_KEPT
        {
            log.push(FirstToken {
                id: st.enc.id.clone(),
                ttft_s: since_arrival,
                socket_wait_s: st.socket_wait.map(|w| w.as_secs_f64()),
            });
        }
    }
    st.done = emit.finish.is_some();
    if st.done
        && let Ok(mut log) = st.sh.writes.lock()
    {
        log.keep(st.enc.id.clone(), std::mem::take(&mut st.writes));
    }
    Some((Ok(Bytes::from(bytes)), st))
}

pub(super) fn sse_response(
    sh: Arc<Shared>,
    req: CompletionRequest,
    rx: UnboundedReceiver<Emit>,
    fault: RequestFault,
    arrival: std::time::Instant,
    socket_wait: Option<std::time::Duration>,
) -> Response {
    let st = StreamState {
        rx,
        enc: Encoder::new(&sh, &req),
        sh: sh.clone(),
        arrived: arrival,
        socket_wait,
        writes: Vec::new(),
        fault,
        events: 0,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(st, next_chunk));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn full_response(
    sh: Arc<Shared>,
    req: CompletionRequest,
    mut rx: UnboundedReceiver<Emit>,
    fault: RequestFault,
) -> Response {
    let (mut content, mut reasoning) = (0u32, 0u32);
    let last = loop {
        match rx.recv().await {
            Some(e) => {
                content += e.tokens - e.reasoning;
                reasoning += e.reasoning;
                if e.finish.is_some() {
                    break e;
                }
            }
            None => {
                return error(
                    &sh,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "the simulated engine stopped",
                );
            }
        }
    };
    match fault {
        RequestFault::Drop { .. } => return cut_body(None).into_response(),
        RequestFault::Stall { pause, .. } => tokio::time::sleep(pause).await,
        _ => {}
    }
    if last.finish == Some(FinishReason::ContextExceeded) {
        return error(
            &sh,
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            CONTEXT_EXCEEDED,
        );
    }
    let enc = Encoder::new(&sh, &req);
    let finish = last.finish.unwrap_or(FinishReason::Abort).as_str();
    let usage: serde_json::Value =
        serde_json::from_str(&Encoder::usage(&last)).unwrap_or(serde_json::Value::Null);
    let text = CONTENT_TOKEN.repeat(content as usize);
    let (object, choice) = if req.chat {
        let mut message = json!({"role": "assistant", "content": text});
        if reasoning > 0 {
            message["reasoning_content"] = json!(REASONING_TOKEN.repeat(reasoning as usize));
        }
        (
            "chat.completion",
            json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish}),
        )
    } else {
        (
            "text_completion",
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null}),
        )
    };
    let head: serde_json::Value =
        serde_json::from_str(&format!("{}\"choices\":[]}}", enc.head)).unwrap_or(json!({}));
    let mut body = json!({
        "id": head["id"], "object": object, "created": head["created"], "model": head["model"],
        "choices": [choice], "usage": usage,
    });
    if sh.role == SimRole::Prefill && req.kv_transfer.do_remote_decode {
        body["kv_transfer_params"] = prefill_answer(sh.port);
    }
    axum::Json(body).into_response()
}

/// Body that fails after `prefix` (a cut connection).
fn cut_body(prefix: Option<Bytes>) -> Body {
    let items: Vec<Result<Bytes, std::io::Error>> = prefix
        .into_iter()
        .map(Ok)
        .chain(std::iter::once(Err(std::io::Error::other(
            "connection dropped (--fault-drop)",
        ))))
        .collect();
    Body::from_stream(futures_util::stream::iter(items))
}

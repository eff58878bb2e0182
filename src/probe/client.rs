//! The OpenAI client: builds one streaming request, reads its SSE stream, and returns what
//! happened as a [`RequestRecord`] — instants from one monotonic clock, the engine's `usage`,
//! every chunk's arrival, and the outcome by kind. It takes instants and counts tokens; it
//! computes no figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tokio_util::sync::CancellationToken;

use ceiling_reports::{ChunkArrival, ChunkKind, Outcome, RequestRecord};

use crate::config::Endpoint;

use super::workload::Prompt;
use body::Body;
use http1::Http1;
use sse::SseEvents;

/// What the probe knows about the engine that changes the request body.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineQuirks {
    /// vLLM: `min_tokens` and `stream_options.continuous_usage_stats` are accepted.
    pub vllm_extensions: bool,
}

/// One shared HTTP client plus the fixed parts of every request.
#[derive(Clone)]
pub struct EngineClient {
    http: reqwest::Client,
    /// The probe's own HTTP/1.1 client, for a plain-`http` engine; else reqwest is used.
    own: Option<Arc<Http1>>,
    url: String,
    api_key: Option<String>,
    model: String,
    endpoint: Endpoint,
    quirks: EngineQuirks,
    timeout: Duration,
}

/// Where a request sits in the run, for its record.
#[derive(Debug, Clone, Copy)]
pub struct RequestSlot {
    pub step_idx: u32,
    pub worker: u32,
    pub wave: Option<u32>,
    pub warmup: bool,
}

impl EngineClient {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: Option<String>,
        model: String,
        endpoint: Endpoint,
        quirks: EngineQuirks,
        timeout: Duration,
    ) -> Self {
        let path = match endpoint {
            Endpoint::Completions => "/v1/completions",
            Endpoint::Chat => "/v1/chat/completions",
        };
        let url = format!("{base_url}{path}");
        EngineClient {
            own: Http1::for_url(&url, api_key.as_deref()).map(Arc::new),
            http,
            url,
            api_key,
            model,
            endpoint,
            quirks,
            timeout,
        }
    }

    /// Streams through reqwest (hyper) even where the probe's own client could: the general
    /// HTTP stack, for comparing the two (`CEILING_HTTP_CLIENT=reqwest`).
    #[must_use]
    pub fn with_general_client(mut self) -> Self {
        self.own = None;
        self
    }

    /// Which HTTP client streams the requests: `own` or `reqwest`.
    pub fn http_client_name(&self) -> &'static str {
        if self.own.is_some() { "own" } else { "reqwest" }
    }

    /// The JSON body for one request.
    pub fn body(&self, prompt: &Prompt, max_tokens: u32) -> serde_json::Value {
        let mut stream_options = serde_json::json!({"include_usage": true});
        if self.quirks.vllm_extensions {
            stream_options["continuous_usage_stats"] = true.into();
        }
        let mut body = serde_json::json!({
            "model": self.model,
            "max_tokens": max_tokens,
            "ignore_eos": true,
            "stream": true,
            "stream_options": stream_options,
            "temperature": 0.0,
        });
        if self.quirks.vllm_extensions {
            body["min_tokens"] = max_tokens.into();
        }
        match (self.endpoint, prompt) {
            (Endpoint::Completions, Prompt::Tokens(ids)) => body["prompt"] = ids.as_slice().into(),
            (Endpoint::Completions, Prompt::Text(t)) => body["prompt"] = t.as_str().into(),
            (Endpoint::Chat, p) => {
                let text = match p {
                    Prompt::Text(t) => t.clone(),
                    Prompt::Tokens(ids) => ids
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                body["messages"] = serde_json::json!([{"role": "user", "content": text}]);
            }
        }
        body
    }

    /// Sends one request and streams it to the end, the timeout, or `cancel`.
    pub async fn stream(
        &self,
        slot: RequestSlot,
        prompt: &Prompt,
        input_len: u32,
        max_tokens: u32,
        t0: Instant,
        cancel: &CancellationToken,
    ) -> RequestRecord {
        let body = self.body(prompt, max_tokens);
        let mut rec = RequestRecord {
            scheduled_t_s: None,
            response_id: None,
            step_idx: slot.step_idx,
            worker: slot.worker,
            wave: slot.wave,
            warmup: slot.warmup,
            sent_t_s: 0.0,
            headers_t_s: None,
            first_token_t_s: None,
            first_answer_t_s: None,
            done_t_s: None,
            prompt_tokens_requested: input_len,
            completion_tokens_requested: max_tokens,
            prompt_tokens_reported: None,
            completion_tokens_reported: None,
            cached_tokens_reported: None,
            prompt_from_text: false,
            outcome: Outcome::Ok,
            http_status: None,
            error: None,
            chunks: Vec::with_capacity(max_tokens as usize),
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        rec.sent_t_s = t0.elapsed().as_secs_f64();
        let work = self.exchange(body, &mut rec, t0);
        let complete = tokio::select! {
            biased;
            () = cancel.cancelled() => failed(&mut rec, Outcome::Cancelled, "cancelled by the probe".into()),
            () = tokio::time::sleep_until(deadline) => failed(
                &mut rec,
                Outcome::Timeout,
                format!("no complete response within {}s (--request-timeout)", self.timeout.as_secs_f64()),
            ),
            complete = work => complete,
        };
        if rec.done_t_s.is_none() {
            rec.done_t_s = Some(t0.elapsed().as_secs_f64());
        }
        // After `[DONE]`, out of the deadline's and the cancel's reach (the request is
        // complete whatever happens now): the body's end, to keep the connection.
        if let Some(body) = complete {
            body.finish().await;
        }
        rec
    }

    /// The request's exchange into `rec`; the response, once its `[DONE]` was read.
    async fn exchange(
        &self,
        body: serde_json::Value,
        rec: &mut RequestRecord,
        t0: Instant,
    ) -> Option<Body<'_>> {
        let mut resp = match self.open(&body, rec, t0).await {
            Ok(r) => r,
            Err(e) => return failed(rec, Outcome::ConnectError, e),
        };
        let headers_at = resp.head_arrived().unwrap_or_else(Instant::now);
        let headers_t_s = headers_at.saturating_duration_since(t0).as_secs_f64();
        // Never before the request left (a wall clock stepped under the kernel's stamp).
        rec.headers_t_s = Some(headers_t_s.max(rec.sent_t_s));
        let status = resp.status();
        rec.http_status = Some(status);
        if !(200..300).contains(&status) {
            let mut text = resp.error_text().await;
            // An engine or proxy that echoes the request would put the key in the record.
            if let Some(k) = self.api_key.as_deref().filter(|k| !k.is_empty()) {
                text = text.replace(k, "***");
            }
            return failed(
                rec,
                Outcome::HttpError,
                format!("HTTP {}: {}", body::status_text(status), clip(&text)),
            );
        }
        let mut sse = SseEvents::default();
        let mut completion_so_far: Option<u32> = None;
        loop {
            let at = match resp.next(&mut sse, t0).await {
                Ok(Some(at)) => at,
                Ok(None) => break,
                Err(e) => return failed(rec, Outcome::StreamCut, e),
            };
            while let Some(data) = sse.next_data() {
                match read_event(rec, data, at, &mut completion_so_far) {
                    Ok(true) => {}
                    Ok(false) => return Some(resp),
                    Err((outcome, error)) => return failed(rec, outcome, error),
                }
            }
            // An event still open past the limit: the rest of the stream is not read.
            if sse.pending() > limits::MAX_EVENT_BYTES {
                return failed(rec, Outcome::MalformedSse, limits::event_too_long());
            }
        }
        failed(
            rec,
            Outcome::StreamCut,
            "the stream ended without `data: [DONE]`".into(),
        )
    }
}

/// Reads one event's data into the record: true to read on, false at `[DONE]`, or how the
/// request failed.
fn read_event(
    rec: &mut RequestRecord,
    data: &[u8],
    at: f64,
    completion_so_far: &mut Option<u32>,
) -> Result<bool, (Outcome, String)> {
    let data = data.trim_ascii();
    if data == b"[DONE]" {
        rec.done_t_s = Some(at);
        return Ok(false);
    }
    if data.is_empty() {
        return Ok(true);
    }
    // The event's UTF-8 checked once, whole: serde_json then reads it as text and checks no
    // string again (from bytes it checks each of the ~15 strings of a chunk on its own).
    let text = std::str::from_utf8(data).map_err(|e| {
        let text = String::from_utf8_lossy(data);
        (Outcome::MalformedSse, format!("{e}: {}", clip(&text)))
    })?;
    let chunk: StreamChunk<'_> = serde_json::from_str(text)
        .map_err(|e| (Outcome::MalformedSse, format!("{e}: {}", clip(text))))?;
    if let Some(err) = chunk.error {
        return Err((Outcome::EngineError, clip(&err.to_string())));
    }
    if rec.response_id.is_none() {
        rec.response_id = chunk.id.as_ref().map(|id| id.0.to_string());
    }
    record_chunk(rec, &chunk, at, completion_so_far);
    Ok(true)
}

/// Adds one parsed chunk to the record: its arrival if it carried text, and the usage.
fn record_chunk(
    rec: &mut RequestRecord,
    chunk: &StreamChunk<'_>,
    at: f64,
    completion_so_far: &mut Option<u32>,
) {
    let mut kind = None;
    for c in &chunk.choices {
        let (reasoning, answer) = match &c.delta {
            Some(d) => (d.reasoning_content.or(d.reasoning), d.content),
            None => (None, c.text),
        };
        if answer.is_some_and(|s| !s.empty) {
            kind = Some(ChunkKind::Answer);
        } else if reasoning.is_some_and(|s| !s.empty) {
            kind.get_or_insert(ChunkKind::Reasoning);
        }
    }
    let mut tokens = None;
    if let Some(u) = &chunk.usage {
        rec.prompt_tokens_reported = u.prompt_tokens.or(rec.prompt_tokens_reported);
        if let Some(n) = u.completion_tokens {
            // With continuous usage every chunk carries the running total: the difference is
            // the tokens this chunk held. A first usage after text chunks is the final total
            // (llama.cpp puts it on the last text chunk of /v1/completions): it says nothing
            // about this chunk.
            if completion_so_far.is_some() || rec.chunks.is_empty() {
                tokens = Some(n.saturating_sub(completion_so_far.unwrap_or(0)));
            }
            *completion_so_far = Some(n);
            rec.completion_tokens_reported = Some(n);
        }
        if let Some(c) = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
        {
            rec.cached_tokens_reported = Some(c);
        }
    }
    let Some(kind) = kind else { return };
    if rec.first_token_t_s.is_none() {
        rec.first_token_t_s = Some(at);
    }
    if kind == ChunkKind::Answer && rec.first_answer_t_s.is_none() {
        rec.first_answer_t_s = Some(at);
    }
    rec.chunks.push(ChunkArrival {
        t_s: at,
        tokens,
        kind,
    });
}

/// Marks the request failed: nothing of its response is left to read.
fn failed<T>(rec: &mut RequestRecord, outcome: Outcome, error: String) -> Option<T> {
    rec.outcome = outcome;
    rec.error = Some(error);
    None
}

fn clip(s: &str) -> String {
    crate::printable::clip(s.trim(), 300)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// One streamed chunk. Nothing in it is copied out of the event's bytes but an id with an
/// escape in it: of the text only whether it is empty matters.
#[derive(Debug, Deserialize)]
struct StreamChunk<'a> {
    /// The response's id (the same on every chunk).
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    text: Option<Text>,
    delta: Option<Delta>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<Text>,
    reasoning_content: Option<Text>,
    reasoning: Option<Text>,
}

/// A response id, borrowed from the event's bytes unless it holds an escape.
#[derive(Debug)]
struct Id<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Id<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Id<'a>, E> {
                Ok(Id(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id<'a>, E> {
                Ok(Id(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A text field of a chunk: whether it held any text.
#[derive(Debug, Clone, Copy)]
struct Text {
    empty: bool,
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text {
                    empty: s.is_empty(),
                })
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

mod body;
mod http1;
mod limits;
mod sse;
pub mod wire;

pub use limits::{MAX_ERROR_BODY_BYTES, MAX_EVENT_BYTES, MAX_PREFLIGHT_BODY_BYTES, read_capped};

#[cfg(test)]
mod sse_tests;
#[cfg(test)]
mod tests;

//! The proxy in front of a prefill/decode pair, as vLLM's toy proxy for disaggregated prefill
//! (NIXL connector) does it: each completion goes first to a prefill server with one output
//! token and `do_remote_decode`, then, after the KV hand-off, to a decode server with the
//! original body and the prefill's `kv_transfer_params`, whose answer streams back unbuffered.
//! Servers are picked round robin per side. It owns the routing only: no metrics, no timing of
//! the engines, no change to an answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::SimError;
use crate::server::{self, Server};

#[cfg(test)]
mod tests;

/// How to run the router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Prefill servers' base URLs (`http://HOST:PORT`).
    pub prefill: Vec<String>,
    /// Decode servers' base URLs.
    pub decode: Vec<String>,
    /// The KV transfer: seconds between the prefill's answer and the decode request.
    pub handoff_s: f64,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
}

/// A running router. Dropping it stops the server without waiting.
pub struct RouterHandle {
    server: Server,
}

impl RouterHandle {
    /// `http://HOST:PORT`, with a loopback host when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Stops accepting and lets open responses end.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

/// The two sides and how to reach them.
struct Upstreams {
    client: reqwest::Client,
    prefill: Side,
    decode: Side,
    handoff: Duration,
}

/// One side's servers, picked round robin.
struct Side {
    name: &'static str,
    urls: Vec<String>,
    next: AtomicUsize,
}

impl Side {
    fn new(name: &'static str, urls: Vec<String>) -> Result<Self, SimError> {
        if urls.is_empty() {
            return Err(SimError::NoUpstream(name));
        }
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        Ok(Side {
            name,
            urls,
            next: AtomicUsize::new(0),
        })
    }

    fn pick(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        &self.urls[i]
    }
}

/// Starts the router on a runtime of its own (two worker threads).
pub async fn start_router(cfg: RouterConfig) -> Result<RouterHandle, SimError> {
    if !(cfg.handoff_s.is_finite() && cfg.handoff_s >= 0.0) {
        return Err(SimError::Handoff);
    }
    // Plain HTTP only, but the TLS-capable client still wants a crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        // Per read, not per response: a long stream is fine while its tokens keep coming.
        .read_timeout(Duration::from_secs(600))
        .build()
        .map_err(SimError::HttpClient)?;
    let up = Arc::new(Upstreams {
        client,
        prefill: Side::new("prefill", cfg.prefill)?,
        decode: Side::new("decode", cfg.decode)?,
        handoff: Duration::from_secs_f64(cfg.handoff_s),
    });
    let app = Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(up);
    let bound = server::bind(cfg.host, cfg.port)?;
    Ok(RouterHandle {
        server: server::serve(bound, app, "sim-router")?,
    })
}

type Up = State<Arc<Upstreams>>;

async fn completions(State(up): Up, headers: HeaderMap, body: Bytes) -> Response {
    disaggregate(&up, &headers, &body, "/v1/completions").await
}

async fn chat_completions(State(up): Up, headers: HeaderMap, body: Bytes) -> Response {
    disaggregate(&up, &headers, &body, "/v1/chat/completions").await
}

async fn models(State(up): Up, headers: HeaderMap) -> Response {
    let url = up.decode.urls.first().map_or("", String::as_str);
    let mut req = up.client.get(format!("{url}/v1/models"));
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth);
    }
    match req.send().await {
        Ok(resp) => forward(resp),
        Err(err) => bad_gateway(up.decode.name, url, &err),
    }
}

/// Prefill with one output token, the hand-off, then the decode request streamed back.
async fn disaggregate(up: &Upstreams, headers: &HeaderMap, body: &[u8], path: &str) -> Response {
    let original = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => v,
        _ => return bad_request("the body must be a JSON object"),
    };
    let auth = headers.get(header::AUTHORIZATION);
    let url = up.prefill.pick();
    let resp = match up.post(url, path, &prefill_body(&original), auth).await {
        Ok(resp) => resp,
        Err(err) => return bad_gateway(up.prefill.name, url, &err),
    };
    if !resp.status().is_success() {
        return forward(resp);
    }
    let answer: Value = match resp.json().await {
        Ok(v) => v,
        Err(err) => return bad_gateway(up.prefill.name, url, &err),
    };
    let kv = answer
        .get("kv_transfer_params")
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"do_remote_prefill": true}));
    tokio::time::sleep(up.handoff).await;
    let mut decode_body = original;
    decode_body["kv_transfer_params"] = kv;
    let url = up.decode.pick();
    match up.post(url, path, &decode_body, auth).await {
        Ok(resp) => forward(resp),
        Err(err) => bad_gateway(up.decode.name, url, &err),
    }
}

impl Upstreams {
    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &Value,
        auth: Option<&header::HeaderValue>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut req = self.client.post(format!("{base}{path}")).json(body);
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        req.send().await
    }
}

/// The prefill side's request: the client's body cut to one output token, not streamed, asking
/// for a remote decode.
fn prefill_body(original: &Value) -> Value {
    let mut body = original.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("max_tokens".into(), json!(1));
        if o.contains_key("max_completion_tokens") {
            o.insert("max_completion_tokens".into(), json!(1));
        }
        o.remove("min_tokens");
        o.insert("stream".into(), json!(false));
        o.remove("stream_options");
        o.insert(
            "kv_transfer_params".into(),
            json!({"do_remote_decode": true}),
        );
    }
    body
}

/// An upstream answer passed on as it comes: status, content type, body chunk by chunk.
fn forward(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let mut out = Body::from_stream(resp.bytes_stream()).into_response();
    *out.status_mut() = status;
    if let Some(ct) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    out
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"object": "error", "message": message, "type": kind, "param": null, "code": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BadRequestError", message)
}

fn bad_gateway(side: &str, url: &str, err: &reqwest::Error) -> Response {
    let message = format!("the {side} server {url} did not answer: {err}");
    error(StatusCode::BAD_GATEWAY, "BadGatewayError", &message)
}

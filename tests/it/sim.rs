//! The simulated engine end to end over HTTP on 127.0.0.1: exact lengths and usage, timing
//! against its own ground truth, `/metrics` counters against what clients received, the real
//! metric names, KV back-pressure, faults, and the `ceiling sim` process lifecycle.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ceiling_sim::{self as sim, Profile, SimConfig, SimFlavor, SimHandle, SpecConfig};
use futures_util::StreamExt;
use serde_json::{Value, json};

mod faults;
mod isolation;
mod load;
mod metrics;
mod observe;

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// One lock for every test whose timing assertions need the two cores to themselves.
static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serialises the timing-sensitive tests (async tests).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    TIMING.lock().await
}

/// Serialises the timing-sensitive tests (plain `#[test]`s, outside any runtime).
pub fn serial_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    TIMING.blocking_lock()
}

pub fn tiny() -> Profile {
    Profile::builtin("tiny").unwrap()
}

pub async fn start(flavor: SimFlavor, profile: Profile, dp: u32, time_scale: f64) -> SimHandle {
    let mut cfg = SimConfig::new(profile);
    cfg.flavor = flavor;
    cfg.dp = dp;
    cfg.time_scale = time_scale;
    sim::start(cfg).await.unwrap()
}

/// One streamed response as the client saw it.
#[derive(Debug, Default)]
pub struct Streamed {
    pub status: u16,
    /// When the request was sent.
    pub sent: Option<Instant>,
    /// (arrival, chunk) for every JSON chunk.
    pub chunks: Vec<(Instant, Value)>,
    pub done: bool,
    pub error: Option<String>,
}

impl Streamed {
    /// Output tokens seen in the text (` tok` per answer token, ` think` per reasoning token).
    pub fn tokens(&self) -> (usize, usize) {
        let (mut answer, mut reasoning) = (0, 0);
        for (_, c) in &self.chunks {
            for choice in c["choices"].as_array().into_iter().flatten() {
                let text = choice["text"]
                    .as_str()
                    .or(choice["delta"]["content"].as_str());
                answer += text.unwrap_or("").matches(" tok").count();
                let r = choice["delta"]["reasoning_content"].as_str().unwrap_or("");
                reasoning += r.matches(" think").count();
            }
        }
        (answer, reasoning)
    }

    pub fn usage(&self) -> Option<&Value> {
        self.chunks
            .iter()
            .rev()
            .map(|(_, c)| &c["usage"])
            .find(|u| u.is_object())
    }

    /// Arrival times of the chunks that carried output tokens.
    pub fn token_arrivals(&self) -> Vec<Instant> {
        self.chunks
            .iter()
            .filter(|(_, c)| {
                c["choices"].as_array().into_iter().flatten().any(|ch| {
                    ch["text"].as_str().is_some_and(|t| !t.is_empty())
                        || ch["delta"]["content"]
                            .as_str()
                            .is_some_and(|t| !t.is_empty())
                        || ch["delta"]["reasoning_content"].is_string()
                })
            })
            .map(|(t, _)| *t)
            .collect()
    }
}

pub async fn stream(client: &reqwest::Client, url: &str, body: Value) -> Streamed {
    let mut out = Streamed {
        sent: Some(Instant::now()),
        ..Streamed::default()
    };
    let resp = match client.post(url).json(&body).send().await {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    out.status = resp.status().as_u16();
    let mut bytes = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(item) = bytes.next().await {
        let now = Instant::now();
        match item {
            Ok(b) => buf.push_str(&String::from_utf8_lossy(&b)),
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
        while let Some(pos) = buf.find("\n\n") {
            let event: String = buf.drain(..pos + 2).collect();
            let data = event
                .trim()
                .strip_prefix("data: ")
                .unwrap_or("")
                .to_string();
            if data == "[DONE]" {
                out.done = true;
            } else if let Ok(v) = serde_json::from_str::<Value>(&data) {
                out.chunks.push((now, v));
            }
        }
    }
    out
}

pub fn completion(prompt_len: usize, max_tokens: u32) -> Value {
    let prompt: Vec<u32> = (0..prompt_len)
        .map(|i| 100 + (i as u32 * 7) % 3000)
        .collect();
    json!({"model": "m", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": true,
           "stream": true, "stream_options": {"include_usage": true}})
}

/// Unique prompt per request, so the prefix cache stays cold.
pub fn unique_completion(seed: u32, prompt_len: usize, max_tokens: u32) -> Value {
    let mut body = completion(prompt_len, max_tokens);
    body["prompt"][0] = json!(10 + seed);
    body
}

/// Sums of sample values per metric name (label sets collapsed), from a text exposition.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap().to_string();
        *out.entry(name).or_insert(0.0) += value.parse::<f64>().unwrap();
    }
    out
}

/// The value of one series, selected by name and a label substring.
pub fn series(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(label))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

/// `# TYPE` lines: name → type.
pub fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_request_returns_exactly_max_tokens_and_usage_matches() {
    let _serial = serial().await;
    let h = start(SimFlavor::Vllm, tiny(), 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let s = stream(&c, &url, completion(64, 37)).await;
    assert_eq!(s.status, 200);
    assert!(s.done && s.error.is_none(), "{s:?}");
    assert_eq!(s.tokens(), (37, 0));
    let usage = s.usage().unwrap();
    assert_eq!(usage["completion_tokens"], 37);
    assert_eq!(usage["prompt_tokens"], 64);
    assert_eq!(usage["total_tokens"], 101);
    let last = &s.chunks[s.chunks.len() - 2].1;
    assert_eq!(last["choices"][0]["finish_reason"], "length");
    assert_eq!(last["object"], "text_completion");
    let truth: sim::Truth = c
        .get(format!("{}/sim/truth", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth, h.truth());
    assert_eq!(truth.totals.generation_tokens, 37);
    assert_eq!(truth.totals.prompt_tokens, 64);
    assert_eq!(truth.totals.requests_finished, 1);
    assert_eq!(
        (truth.flavor.as_str(), truth.dp, truth.time_scale),
        ("vllm", 1, 1.0)
    );
    assert_eq!(truth.decode_steps.iter().map(|s| s.count).sum::<u64>(), 36);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuous_usage_counts_every_chunk_and_chat_streams_reasoning_first() {
    let _serial = serial().await;
    let mut p = tiny();
    p.reasoning_tokens = 5;
    let h = start(SimFlavor::Vllm, p, 1, 1.0).await;
    let c = client();
    let body = json!({"messages": [{"role": "user", "content": "why is the sky blue"}],
        "max_tokens": 12, "ignore_eos": true, "stream": true,
        "stream_options": {"include_usage": true, "continuous_usage_stats": true}});
    let s = stream(&c, &format!("{}/v1/chat/completions", h.base_url()), body).await;
    assert!(s.done, "{s:?}");
    assert_eq!(s.tokens(), (7, 5));
    assert_eq!(s.chunks[0].1["choices"][0]["delta"]["role"], "assistant");
    // Reasoning chunks all come before the first answer chunk.
    let kinds: Vec<bool> = s
        .chunks
        .iter()
        .filter_map(|(_, c)| c["choices"][0]["delta"].as_object().cloned())
        .filter(|d| d.contains_key("content") || d.contains_key("reasoning_content"))
        .filter(|d| !d.contains_key("role"))
        .map(|d| d.contains_key("reasoning_content"))
        .collect();
    assert_eq!(kinds.iter().filter(|r| **r).count(), 5);
    assert!(kinds.windows(2).all(|w| w[0] || !w[1]), "{kinds:?}");
    let mut seen = 0;
    for (_, c) in s
        .chunks
        .iter()
        .filter(|(_, c)| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
    {
        let (a, r) = Streamed {
            chunks: vec![(Instant::now(), c.clone())],
            ..Default::default()
        }
        .tokens();
        seen += a + r;
        assert_eq!(c["usage"]["completion_tokens"], seen as u64, "{c}");
        assert_eq!(c["usage"]["prompt_tokens"], 5);
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_request_gets_vllm_400_error_shape() {
    let h = start(SimFlavor::Vllm, tiny(), 1, 1.0).await;
    let c = client();
    let r = c
        .post(format!("{}/v1/completions", h.base_url()))
        .json(&json!({"prompt": [1, 2, 3], "max_tokens": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "error");
    assert_eq!(v["type"], "BadRequestError");
    assert_eq!(v["code"], 400);
    assert!(v["param"].is_null());
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("maximum context length is 4096")
    );
    let m: Value = c
        .get(format!("{}/v1/models", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["data"][0]["id"], "sim-tiny");
    assert_eq!(m["data"][0]["max_model_len"], 4096);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_inter_chunk_time_matches_truth_step_time_within_one_percent() {
    let _serial = serial().await;
    const B: usize = 16;
    // ~12 ms steps: long enough that a busy 2-core machine's scheduling noise stays small.
    let mut profile = tiny();
    profile.t0_s = 0.010;
    let h = start(SimFlavor::Vllm, profile, 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let tasks: Vec<_> = (0..B)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(
                async move { stream(&c, &url, unique_completion(i as u32, 64, 120)).await },
            )
        })
        .collect();
    let mut streams = Vec::new();
    for t in tasks {
        let arrivals = t.await.unwrap().token_arrivals();
        assert_eq!(arrivals.len(), 120);
        streams.push(arrivals);
    }
    // The wave's decode window: from the last first token to the first last token, exactly B
    // sequences decode together, and those are the truth's decode-only steps at batch B.
    let w_start = streams.iter().map(|a| a[0]).max().unwrap();
    let w_end = streams.iter().map(|a| *a.last().unwrap()).min().unwrap();
    let slack = Duration::from_millis(2);
    let (mut per_stream, mut gaps) = (Vec::new(), Vec::new());
    for a in &streams {
        let inside: Vec<Instant> = a
            .iter()
            .copied()
            .filter(|t| *t + slack >= w_start && *t <= w_end + slack)
            .collect();
        per_stream.push(slope_s(&inside));
        gaps.extend(inside.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()));
    }
    // Per stream, the least-squares time per token (robust to a late wake-up here and there);
    // then the median over streams.
    per_stream.sort_by(f64::total_cmp);
    let client_mean = per_stream[per_stream.len() / 2];
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    let truth = h.truth();
    let at_b = truth.decode_at(B as u32).expect("decode steps at batch 16");
    assert!(at_b.count > 50, "{truth:?}");
    let err = (client_mean - at_b.mean_s).abs() / at_b.mean_s;
    assert!(
        err < 0.01,
        "client {client_mean} (median gap {median}) vs truth {} ({err})",
        at_b.mean_s
    );
    // And the truth's own mean is the cost model's step time.
    let nominal_err = (at_b.mean_s - at_b.nominal_mean_s).abs() / at_b.nominal_mean_s;
    assert!(nominal_err < 0.05, "{at_b:?}");
    h.shutdown().await;
}

/// Least-squares slope of arrival time against chunk index, seconds per chunk.
fn slope_s(arrivals: &[Instant]) -> f64 {
    let t: Vec<f64> = arrivals
        .iter()
        .map(|a| (*a - arrivals[0]).as_secs_f64())
        .collect();
    let n = t.len() as f64;
    let mean_i = (n - 1.0) / 2.0;
    let mean_t = t.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, ti) in t.iter().enumerate() {
        num += (i as f64 - mean_i) * (ti - mean_t);
        den += (i as f64 - mean_i).powi(2);
    }
    num / den
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_fills_when_kv_capacity_is_exceeded_and_waiting_gauge_shows_it() {
    let _serial = serial().await;
    let mut p = tiny();
    p.kv_blocks = 64; // 1,024 tokens: four 200-token prompts at a time
    let h = start(SimFlavor::Vllm, p, 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { stream(&c, &url, unique_completion(i, 200, 30)).await })
        })
        .collect();
    let (mut max_waiting, mut max_running) = (0.0f64, 0.0f64);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tasks.iter().all(|t| t.is_finished()) && Instant::now() < deadline {
        let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
        max_waiting = max_waiting.max(series(&text, "vllm:num_requests_waiting", ""));
        max_running = max_running.max(series(&text, "vllm:num_requests_running", ""));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().tokens().0, 30);
    }
    assert!(max_waiting >= 1.0, "the queue never filled");
    assert!(max_running <= 4.0, "{max_running} running with room for 4");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_outgrowing_kv_preempts_and_recomputes_without_losing_tokens() {
    let _serial = serial().await;
    let mut p = tiny();
    p.kv_blocks = 64;
    let h = start(SimFlavor::Vllm, p, 1, 4.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { stream(&c, &url, unique_completion(i, 200, 300)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().tokens().0, 300);
    }
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    let preemptions = series(&text, "vllm:num_preemptions_total", "");
    assert!(preemptions >= 1.0, "{text}");
    assert_eq!(h.truth().totals.preemptions as f64, preemptions);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_decode_emits_several_tokens_per_chunk_and_counts_acceptance() {
    let _serial = serial().await;
    let mut p = tiny();
    p.spec = Some(SpecConfig {
        num_speculative_tokens: 3,
        acceptance_rate: 0.8,
    });
    let h = start(SimFlavor::Vllm, p, 1, 2.0).await;
    let c = client();
    let s = stream(
        &c,
        &format!("{}/v1/completions", h.base_url()),
        completion(32, 200),
    )
    .await;
    assert_eq!(s.tokens().0, 200);
    let chunks = s.token_arrivals().len();
    assert!(chunks < 120, "{chunks} chunks for 200 tokens");
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    let drafts = series(&text, "vllm:spec_decode_num_drafts_total", "");
    let accepted = series(&text, "vllm:spec_decode_num_accepted_tokens_total", "");
    // Every chunk after the first is one draft round: 1 + accepted tokens.
    assert_eq!(drafts, (chunks - 1) as f64);
    assert_eq!(drafts + accepted, 199.0);
    h.shutdown().await;
}

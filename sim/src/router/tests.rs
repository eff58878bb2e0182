//! Prefill/decode disaggregation end to end on 127.0.0.1: a decode server skips a transferred
//! prompt, a prefill server names where its KV is, and a 1P+1D pair behind the router serves a
//! stream whose work the two truths split as the roles say.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use crate::{
    Profile, RouterConfig, RouterHandle, SimConfig, SimFlavor, SimHandle, SimRole, start_router,
};

const TIME_SCALE: f64 = 10.0;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn sim(flavor: SimFlavor, role: SimRole) -> SimHandle {
    let mut cfg = SimConfig::new(Profile::builtin("tiny").unwrap());
    cfg.flavor = flavor;
    cfg.role = role;
    cfg.time_scale = TIME_SCALE;
    crate::start(cfg).await.unwrap()
}

/// A text prompt of `n` distinct words (one token each), distinct per `tag`.
fn prompt(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn post(base: &str, body: &Value) -> (u16, String) {
    let resp = client()
        .post(format!("{base}/v1/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn get_text(url: String) -> (u16, String) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn router_config(prefill: Vec<String>, decode: Vec<String>) -> RouterConfig {
    RouterConfig {
        prefill,
        decode,
        handoff_s: 0.002,
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
    }
}

/// A 1P+1D pair behind a router.
async fn pair() -> (SimHandle, SimHandle, RouterHandle) {
    let prefill = sim(SimFlavor::Vllm, SimRole::Prefill).await;
    let decode = sim(SimFlavor::Vllm, SimRole::Decode).await;
    let router = start_router(router_config(
        vec![prefill.base_url()],
        vec![decode.base_url()],
    ))
    .await
    .unwrap();
    (prefill, decode, router)
}

#[tokio::test]
async fn decode_server_computes_no_prefill_for_a_transferred_prompt() {
    let decode = sim(SimFlavor::Vllm, SimRole::Decode).await;
    let base = decode.base_url();
    let body = json!({"prompt": prompt("a", 1000), "max_tokens": 4, "ignore_eos": true,
        "kv_transfer_params": {"do_remote_prefill": true, "remote_engine_id": "x"}});
    let (status, text) = post(&base, &body).await;
    assert_eq!(status, 200, "{text}");
    let truth = decode.truth();
    assert_eq!(truth.totals.prefill_tokens_computed, 0);
    assert_eq!(
        (truth.totals.prompt_tokens, truth.totals.generation_tokens),
        (1000, 4)
    );
    assert!(truth.mixed_steps.is_empty(), "no step prefilled");
    let body = json!({"prompt": prompt("b", 1000), "max_tokens": 4, "ignore_eos": true});
    let (status, _) = post(&base, &body).await;
    assert_eq!(status, 200);
    let t = decode.truth().totals;
    assert_eq!(
        t.prefill_tokens_computed, 1000,
        "without the flag it prefills"
    );
    assert_eq!((t.prompt_tokens, t.requests_finished), (2000, 2));
    let bad = json!({"prompt": "x", "max_tokens": 1, "kv_transfer_params": [1]});
    let (status, text) = post(&base, &bad).await;
    assert_eq!(status, 400);
    assert!(text.contains("kv_transfer_params"), "{text}");
    decode.shutdown().await;
}

#[tokio::test]
async fn unified_server_ignores_kv_transfer_params() {
    let unified = sim(SimFlavor::Vllm, SimRole::Unified).await;
    let body = json!({"prompt": prompt("a", 300), "max_tokens": 2, "ignore_eos": true,
        "kv_transfer_params": {"do_remote_prefill": true, "do_remote_decode": true}});
    let (status, text) = post(&unified.base_url(), &body).await;
    assert_eq!(status, 200);
    assert!(!text.contains("kv_transfer_params"), "{text}");
    assert_eq!(unified.truth().totals.prefill_tokens_computed, 300);
    unified.shutdown().await;
}

#[tokio::test]
async fn prefill_server_answers_a_remote_decode_request_with_where_its_kv_is() {
    let prefill = sim(SimFlavor::Vllm, SimRole::Prefill).await;
    let port = prefill.addr().port();
    let body = json!({"prompt": "a b c", "max_tokens": 1,
        "kv_transfer_params": {"do_remote_decode": true}});
    let (status, text) = post(&prefill.base_url(), &body).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    let kv = &answer["kv_transfer_params"];
    assert_eq!(kv["do_remote_prefill"], json!(true));
    assert_eq!(kv["do_remote_decode"], json!(false));
    assert_eq!(kv["remote_port"], json!(port));
    assert_eq!(kv["remote_engine_id"], json!(format!("sim-prefill-{port}")));
    prefill.shutdown().await;
}

#[tokio::test]
async fn router_streams_the_pairs_answer_and_the_truths_split_the_work() {
    const N: usize = 8;
    let (prefill, decode, router) = pair().await;
    let body = json!({"prompt": prompt("w", 500), "max_tokens": N, "min_tokens": N,
        "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}});
    let (status, text) = post(&router.base_url(), &body).await;
    assert_eq!(status, 200, "{text}");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let tokens: usize = data
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["text"]
                .as_str()
                .map(|t| t.split_whitespace().count())
        })
        .sum();
    assert_eq!(tokens, N);
    let p = prefill.truth().totals;
    assert_eq!((p.requests_finished, p.generation_tokens), (1, 1));
    assert_eq!(p.prefill_tokens_computed, 500);
    let d = decode.truth().totals;
    assert_eq!((d.requests_finished, d.generation_tokens), (1, N as u64));
    assert_eq!((d.prefill_tokens_computed, d.prompt_tokens), (0, 500));
    let (status, models) = get_text(format!("{}/v1/models", router.base_url())).await;
    assert_eq!(status, 200);
    assert!(models.contains("sim-tiny"), "{models}");
    let (status, _) = get_text(format!("{}/health", router.base_url())).await;
    assert_eq!(status, 200);
    let (status, _) = get_text(format!("{}/metrics", router.base_url())).await;
    assert_eq!(status, 404, "the proxy has no /metrics");
    router.shutdown().await;
    prefill.shutdown().await;
    decode.shutdown().await;
}

#[tokio::test]
async fn router_passes_a_prefill_error_on_and_a_dead_side_is_a_502() {
    let (prefill, decode, router) = pair().await;
    let too_long = json!({"prompt": prompt("x", 5000), "max_tokens": 4});
    let (status, text) = post(&router.base_url(), &too_long).await;
    assert_eq!(status, 400);
    assert!(text.contains("maximum context length"), "{text}");
    assert_eq!(
        decode.truth().totals.steps,
        0,
        "nothing reached the decode side"
    );
    router.shutdown().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let router = start_router(router_config(vec![prefill.base_url()], vec![dead]))
        .await
        .unwrap();
    let body = json!({"prompt": "a", "max_tokens": 2});
    let (status, text) = post(&router.base_url(), &body).await;
    assert_eq!(status, 502);
    assert!(text.contains("the decode server"), "{text}");
    router.shutdown().await;
    let err = start_router(router_config(vec![], vec![decode.base_url()])).await;
    assert!(matches!(err, Err(crate::SimError::NoUpstream("prefill"))));
    prefill.shutdown().await;
    decode.shutdown().await;
}

#[tokio::test]
async fn sglang_labels_schedulers_by_role_and_shows_that_roles_queues() {
    for (role, present, absent) in [
        (
            SimRole::Prefill,
            "sglang:num_prefill_bootstrap_queue_reqs{",
            "num_decode_prealloc_queue_reqs",
        ),
        (
            SimRole::Decode,
            "sglang:num_decode_prealloc_queue_reqs{",
            "num_prefill_inflight_queue_reqs",
        ),
        (
            SimRole::Unified,
            "sglang:num_running_reqs{",
            "prealloc_queue_reqs",
        ),
    ] {
        let s = sim(SimFlavor::Sglang, role).await;
        let (_, text) = get_text(format!("{}/metrics", s.base_url())).await;
        let label = format!("engine_type=\"{}\"", role.as_str());
        assert!(text.contains(&label), "{label} missing:\n{text}");
        assert!(text.contains(present), "{present} missing:\n{text}");
        assert!(!text.contains(absent), "{absent} present:\n{text}");
        s.shutdown().await;
    }
}

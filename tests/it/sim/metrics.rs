//! `/metrics` in each flavor: counters equal what clients received, the names and types of the
//! real captures, and the engines' quirks (SGLang's interval gauges, llama.cpp's counters at
//! request end and its reset-on-scrape window, `/props`, `/slots`).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use ceiling_sim::SimFlavor;
use serde_json::{Value, json};

use super::{
    client, completion, get_text, samples, serial, series, start, stream, tiny, types,
    unique_completion,
};

/// Sends `n` mixed requests (some ending at EOS) and returns Σ prompt, Σ completion tokens.
async fn send_batch(c: &reqwest::Client, base: &str, n: u32) -> (u64, u64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, url) = (c.clone(), format!("{base}/v1/completions"));
            let mut body = unique_completion(i, 20 + i as usize, 10 + i);
            body["ignore_eos"] = json!(i % 3 != 0);
            tokio::spawn(async move { stream(&c, &url, body).await })
        })
        .collect();
    let (mut p, mut g) = (0, 0);
    for t in tasks {
        let s = t.await.unwrap();
        assert!(s.done, "{s:?}");
        let u = s.usage().unwrap();
        assert_eq!(u["completion_tokens"], s.tokens().0 as u64);
        p += u["prompt_tokens"].as_u64().unwrap();
        g += u["completion_tokens"].as_u64().unwrap();
    }
    (p, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_counters_equal_what_clients_received_in_every_flavor() {
    let _serial = serial().await;
    let c = client();
    for flavor in [SimFlavor::Vllm, SimFlavor::Sglang, SimFlavor::Llamacpp] {
        let h = start(flavor, tiny(), 2, 4.0).await;
        let (prompt, generated) = send_batch(&c, &h.base_url(), 24).await;
        let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
        let s = samples(&text);
        let (p, g, n) = match flavor {
            SimFlavor::Vllm => (
                s["vllm:prompt_tokens_total"],
                s["vllm:generation_tokens_total"],
                s["vllm:request_success_total"],
            ),
            SimFlavor::Sglang => (
                s["sglang:prompt_tokens_total"],
                s["sglang:generation_tokens_total"],
                s["sglang:num_requests_total"],
            ),
            SimFlavor::Llamacpp => (
                s["llamacpp:prompt_tokens_total"] + s["llamacpp:prompt_tokens_cached_total"],
                s["llamacpp:tokens_predicted_total"],
                24.0,
            ),
        };
        assert_eq!(
            (p, g, n),
            (prompt as f64, generated as f64, 24.0),
            "{flavor:?}\n{text}"
        );
        let truth = h.truth();
        assert_eq!(truth.totals.generation_tokens, generated);
        assert_eq!(truth.totals.requests_finished, 24);
        if flavor == SimFlavor::Vllm {
            // DP ranks carry their own `engine` label and share the work.
            assert!(series(&text, "vllm:generation_tokens_total", "engine=\"1\"") > 0.0);
            assert!(series(&text, "vllm:generation_tokens_total", "engine=\"0\"") > 0.0);
            let itl = s["vllm:inter_token_latency_seconds_count"];
            assert_eq!(
                itl,
                (generated - 24) as f64,
                "one ITL observation per later output"
            );
        }
        h.shutdown().await;
    }
}

/// Core metric families every flavor must expose, each present in a real capture.
const CORE: &[(&str, &[&str])] = &[
    (
        "vllm",
        &[
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total",
            "vllm:request_success_total",
            "vllm:iteration_tokens_total",
            "vllm:time_to_first_token_seconds",
            "vllm:inter_token_latency_seconds",
            "vllm:num_preemptions_total",
            "vllm:request_prompt_tokens",
            "vllm:cache_config_info",
        ],
    ),
    (
        "sglang",
        &[
            "sglang:num_running_reqs",
            "sglang:num_queue_reqs",
            "sglang:num_used_tokens",
            "sglang:token_usage",
            "sglang:gen_throughput",
            "sglang:cache_hit_rate",
            "sglang:prompt_tokens_total",
            "sglang:generation_tokens_total",
            "sglang:cached_tokens_total",
            "sglang:num_requests_total",
            "sglang:time_to_first_token_seconds",
            "sglang:e2e_request_latency_seconds",
        ],
    ),
    (
        "llamacpp",
        &[
            "llamacpp:prompt_tokens_total",
            "llamacpp:prompt_tokens_cached_total",
            "llamacpp:prompt_seconds_total",
            "llamacpp:tokens_predicted_total",
            "llamacpp:tokens_predicted_seconds_total",
            "llamacpp:n_decode_total",
            "llamacpp:n_tokens_max",
            "llamacpp:prompt_tokens_seconds",
            "llamacpp:predicted_tokens_seconds",
            "llamacpp:requests_processing",
            "llamacpp:requests_deferred",
            "llamacpp:n_busy_slots_per_decode",
        ],
    ),
];

fn capture_types(prefix: &str) -> BTreeMap<String, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expositions");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file.starts_with(prefix) && file.ends_with(".prom") {
            out.extend(types(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_flavor_exposition_parses_with_the_names_and_types_of_real_captures() {
    let _serial = serial().await;
    let c = client();
    for (flavor, (prefix, core)) in [SimFlavor::Vllm, SimFlavor::Sglang, SimFlavor::Llamacpp]
        .into_iter()
        .zip(CORE)
    {
        let h = start(flavor, tiny(), 1, 4.0).await;
        send_batch(&c, &h.base_url(), 4).await;
        let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
        let ours = types(&text);
        let real = capture_types(prefix);
        for name in *core {
            assert!(
                real.contains_key(*name),
                "{name} is not in a {prefix} capture"
            );
            assert_eq!(ours.get(*name), real.get(*name), "{name} type in {prefix}");
        }
        // Every family we share with a capture has the capture's type.
        for (name, kind) in &ours {
            if let Some(real_kind) = real.get(name) {
                assert_eq!(kind, real_kind, "{name}");
            }
        }
        // Every sample line is `name{labels} number`, labels sorted as prometheus_client does.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
            if let Some(labels) = series.split_once('{').map(|(_, l)| l.trim_end_matches('}')) {
                let keys: Vec<&str> = labels
                    .split("\",")
                    .map(|kv| kv.split('=').next().unwrap())
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(keys, sorted, "{line}");
            }
        }
        h.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_flavor_serves_props_and_slots_and_counts_at_request_end() {
    let _serial = serial().await;
    let h = start(SimFlavor::Llamacpp, tiny(), 1, 1.0).await;
    let c = client();
    let props: Value = c
        .get(format!("{}/props", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(props["total_slots"], 4096);
    assert_eq!(props["default_generation_settings"]["n_ctx"], 4096);
    let url = format!("{}/v1/completions", h.base_url());
    let (c2, u2) = (c.clone(), url.clone());
    let running = tokio::spawn(async move { stream(&c2, &u2, completion(16, 150)).await });
    // Mid-request: a slot is busy and no token has been counted yet.
    let mut seen_busy = false;
    for _ in 0..200 {
        let slots: Value = c
            .get(format!("{}/slots", h.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if slots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["is_processing"] == true)
        {
            let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
            assert_eq!(series(&text, "llamacpp:tokens_predicted_total", ""), 0.0);
            seen_busy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_busy);
    let s = running.await.unwrap();
    assert_eq!(s.usage().unwrap()["completion_tokens"], 150);
    assert!(
        s.chunks[0].1["id"]
            .as_str()
            .unwrap()
            .starts_with("chatcmpl-")
    );
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    assert_eq!(series(&text, "llamacpp:tokens_predicted_total", ""), 150.0);
    assert!(series(&text, "llamacpp:predicted_tokens_seconds", "") > 0.0);
    // Each scrape resets the throughput window: nothing finished since, so it reads 0.
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    assert_eq!(series(&text, "llamacpp:predicted_tokens_seconds", ""), 0.0);
    assert_eq!(series(&text, "llamacpp:n_busy_slots_per_decode", ""), 1.0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_gauges_refresh_only_at_prefill_and_every_interval_decode_steps() {
    let _serial = serial().await;
    let mut p = tiny();
    p.sglang_gauge_interval_steps = 10;
    let h = start(SimFlavor::Sglang, p, 1, 2.0).await;
    let c = client();
    // One prefill step (which emits the first token), then 24 decode steps.
    let s = stream(
        &c,
        &format!("{}/v1/completions", h.base_url()),
        completion(16, 25),
    )
    .await;
    assert_eq!(s.tokens().0, 25);
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    assert_eq!(
        series(&text, "sglang:cuda_graph_passes_total", "decode_cuda_graph"),
        24.0
    );
    assert_eq!(
        series(&text, "sglang:realtime_tokens_total", "mode=\"decode\""),
        24.0
    );
    assert_eq!(
        series(
            &text,
            "sglang:realtime_tokens_total",
            "mode=\"prefill_compute\""
        ),
        16.0
    );
    // Last refreshed at decode step 20, while the request still ran: stale, as in SGLang.
    assert_eq!(series(&text, "sglang:num_running_reqs", ""), 1.0);
    assert!(series(&text, "sglang:gen_throughput", "") > 0.0);
    // Tokenizer-side counters moved when the request finished.
    assert_eq!(series(&text, "sglang:generation_tokens_total", ""), 25.0);
    assert_eq!(h.truth().ranks[0].running, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcgm_endpoint_follows_the_busy_fraction_with_real_field_names() {
    let _serial = serial().await;
    let h = start(SimFlavor::Vllm, tiny(), 2, 1.0).await;
    let c = client();
    let url = format!("{}/dcgm", h.base_url());
    let _ = get_text(&c, &url).await; // opens the window
    let s = stream(
        &c,
        &format!("{}/v1/completions", h.base_url()),
        completion(16, 60),
    )
    .await;
    assert_eq!(s.tokens().0, 60);
    let text = get_text(&c, &url).await;
    let capture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/expositions/dcgm-exporter-3.3.8-3.6.0-h100-digitalocean.prom"),
    )
    .unwrap();
    for name in ["DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK"] {
        assert!(capture.contains(&format!("# TYPE {name} gauge")));
        assert!(text.contains(&format!("# TYPE {name} gauge")), "{text}");
    }
    let active = |gpu: &str| {
        text.lines()
            .find(|l| l.starts_with("DCGM_FI_PROF_GR_ENGINE_ACTIVE{") && l.contains(gpu))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .unwrap()
    };
    // The request went to rank 0 (round robin): its GPU was busy, rank 1's idle.
    assert!(active("gpu=\"0\"") > 0.2, "{text}");
    assert_eq!(active("gpu=\"1\""), 0.0);
    assert!(text.contains("simulated=\"true\""));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcgm_endpoint_serves_a_mig_layout_and_a_slow_energy_counter() {
    let _serial = serial().await;
    let mut cfg = ceiling_sim::SimConfig::new(tiny());
    cfg.gpu = ceiling_sim::SimGpu {
        energy_every_s: 3600.0,
        mig_instances: 3,
    };
    let h = ceiling_sim::start(cfg).await.unwrap();
    let c = client();
    let url = format!("{}/dcgm", h.base_url());
    let a = get_text(&c, &url).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = get_text(&c, &url).await;
    let readings = |t: &str| {
        ceiling_collectors::gpu::dcgm::samples_from_exposition(
            &ceiling_collectors::prometheus::parse(t).samples,
            0.0,
        )
    };
    let (ra, rb) = (readings(&a), readings(&b));
    // One whole-GPU reading and three instance readings; no GPU_UTIL in MIG mode.
    assert_eq!(ra.len(), 4, "{a}");
    assert_eq!(
        ra.iter().map(|r| r.mig_instance).collect::<Vec<_>>(),
        [None, Some(1), Some(2), Some(3)]
    );
    assert!(ra[0].power_w.is_some() && ra[0].util_gpu_pct.is_none());
    assert!(ra[1].gr_engine_active.is_some() && ra[1].mem_total_bytes.is_some());
    // Not refreshed within the hour: the counter holds.
    assert_eq!(ra[0].energy_j, rb[0].energy_j);
    h.shutdown().await;
}

//! Characterization of the adapters: for every capture in `fixtures/expositions/` and for
//! synthetic expositions that reach every row (newest names, the renamed fallbacks, the DP and
//! label-filter cases), the whole canonical [`Signals`] and the unmapped families, compared
//! field by field with `characterization.json`. That file was written by the hand-coded adapters
//! before they became tables; any change in what a scrape maps to fails here, field by field.

use serde_json::{Map, Value};

use super::*;
use crate::prometheus::parse;
use crate::prometheus::tests::all_fixtures;

/// vLLM V1 with DP=2 and every current name (0.11+).
const VLLM_NEWEST: &str = "\
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3
vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 4
vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2
vllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 1
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.5
vllm:cache_config_info{block_size=\"16\",engine=\"0\",kv_cache_size_tokens=\"40000\",num_gpu_blocks=\"5000\"} 1
vllm:cache_config_info{block_size=\"16\",engine=\"1\",kv_cache_size_tokens=\"40000\",num_gpu_blocks=\"5000\"} 1
vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 1000
vllm:prompt_tokens_total{engine=\"1\",model_name=\"m\"} 1100
vllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} 5000
vllm:generation_tokens_total{engine=\"1\",model_name=\"m\"} 5100
vllm:iteration_tokens_total_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 600
vllm:iteration_tokens_total_sum{engine=\"0\",model_name=\"m\"} 6000
vllm:iteration_tokens_total_bucket{engine=\"1\",le=\"+Inf\",model_name=\"m\"} 610
vllm:iteration_tokens_total_sum{engine=\"1\",model_name=\"m\"} 6100
vllm:num_preemptions_total{engine=\"0\",model_name=\"m\"} 2
vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 900
vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 300
vllm:gpu_prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 1
vllm:gpu_prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 1
vllm:spec_decode_num_drafts_total{engine=\"0\",model_name=\"m\"} 70
vllm:spec_decode_num_draft_tokens_total{engine=\"0\",model_name=\"m\"} 210
vllm:spec_decode_num_accepted_tokens_total{engine=\"0\",model_name=\"m\"} 150
vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"m\"} 12.5
vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"m\"} 50
vllm:inter_token_latency_seconds_sum{engine=\"0\",model_name=\"m\"} 40
vllm:inter_token_latency_seconds_count{engine=\"0\",model_name=\"m\"} 2000
vllm:time_per_output_token_seconds_sum{engine=\"0\",model_name=\"m\"} 99
vllm:time_per_output_token_seconds_count{engine=\"0\",model_name=\"m\"} 99
vllm:request_time_per_output_token_seconds_sum{engine=\"0\",model_name=\"m\"} 1.1
vllm:request_time_per_output_token_seconds_count{engine=\"0\",model_name=\"m\"} 48
vllm:e2e_request_latency_seconds_sum{engine=\"0\",model_name=\"m\"} 300
vllm:e2e_request_latency_seconds_count{engine=\"0\",model_name=\"m\"} 48
vllm:request_queue_time_seconds_sum{engine=\"0\",model_name=\"m\"} 4.5
vllm:request_queue_time_seconds_count{engine=\"0\",model_name=\"m\"} 48
vllm:request_prefill_time_seconds_sum{engine=\"0\",model_name=\"m\"} 2.4
vllm:request_prefill_time_seconds_count{engine=\"0\",model_name=\"m\"} 48
vllm:request_success_total{engine=\"0\",finished_reason=\"stop\",model_name=\"m\"} 40
vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"m\"} 8
";

/// vLLM with only the older names (V0 and V1 up to 0.10): every fallback row.
const VLLM_OLDEST: &str = "\
vllm:num_requests_swapped{model_name=\"m\"} 0
vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.125
vllm:cache_config_info{block_size=\"32\",num_gpu_blocks=\"1000\"} 1
vllm:gpu_prefix_cache_queries_total{model_name=\"m\"} 64
vllm:gpu_prefix_cache_hits_total{model_name=\"m\"} 16
vllm:time_per_output_token_seconds_sum{model_name=\"m\"} 3.5
vllm:time_per_output_token_seconds_count{model_name=\"m\"} 70
vllm:iteration_tokens_total_count{model_name=\"m\"} 80
";

/// SGLang 0.5.16+ names with DP=2, other TP ranks and the `cache_source` split.
const SGLANG_NEWEST: &str = "\
sglang:num_running_reqs{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 5
sglang:num_running_reqs{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 7
sglang:num_running_reqs{dp_rank=\"1\",model_name=\"m\",pp_rank=\"1\",tp_rank=\"0\"} 100
sglang:num_queue_reqs{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1
sglang:token_usage{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 0.25
sglang:token_usage{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 0.75
sglang:kv_used_tokens{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 250
sglang:num_used_tokens{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 9
sglang:max_total_num_tokens{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1000
sglang:max_total_num_tokens{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1000
sglang:prompt_tokens_total{model_name=\"m\"} 4000
sglang:generation_tokens_total{model_name=\"m\"} 9000
sglang:realtime_tokens_total{dp_rank=\"0\",mode=\"decode\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 9500
sglang:realtime_tokens_total{dp_rank=\"0\",mode=\"prefill_cache\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 300
sglang:forward_execution_seconds_total{category=\"decode\",dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 20.5
sglang:forward_execution_seconds_total{category=\"target_verify\",dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 3
sglang:gpu_execution_seconds_total{category=\"decode\",dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1
sglang:cuda_graph_passes_total{dp_rank=\"0\",mode=\"decode_cuda_graph\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 800
sglang:cuda_graph_passes_total{dp_rank=\"0\",mode=\"prefill_cuda_graph\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 20
sglang:num_retracted_requests_total{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 4
sglang:total_retracted_reqs{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1
sglang:cached_tokens_total{cache_source=\"device\",model_name=\"m\"} 100
sglang:cached_tokens_total{cache_source=\"total\",model_name=\"m\"} 120
sglang:spec_verify_calls_total{model_name=\"m\"} 3000
sglang:spec_accept_length{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 2
sglang:spec_accept_length{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 3
sglang:time_to_first_token_seconds_sum{model_name=\"m\"} 8
sglang:time_to_first_token_seconds_count{model_name=\"m\"} 40
sglang:inter_token_latency_seconds_sum{model_name=\"m\"} 45
sglang:inter_token_latency_seconds_count{model_name=\"m\"} 9000
sglang:request_time_per_output_token_seconds_sum{model_name=\"m\"} 0.2
sglang:request_time_per_output_token_seconds_count{model_name=\"m\"} 40
sglang:e2e_request_latency_seconds_sum{model_name=\"m\"} 90
sglang:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 40
sglang:queue_time_seconds_sum{engine_type=\"decode\",model_name=\"m\"} 1.5
sglang:queue_time_seconds_count{engine_type=\"decode\",model_name=\"m\"} 40
sglang:num_prefill_bootstrap_queue_reqs{engine_type=\"prefill\",model_name=\"m\"} 3
sglang:num_decode_prealloc_queue_reqs{engine_type=\"decode\",model_name=\"m\"} 2
sglang:num_decode_transfer_queue_reqs{engine_type=\"decode\",model_name=\"m\"} 1
sglang:num_requests_total{model_name=\"m\"} 40
";

/// SGLang with only the older names: every fallback, and KV usage from used / capacity.
const SGLANG_OLDEST: &str = "\
sglang:num_used_tokens{model_name=\"m\"} 300
sglang:max_total_num_tokens{model_name=\"m\"} 1200
sglang:gpu_execution_seconds_total{category=\"decode\",model_name=\"m\"} 7.5
sglang:gpu_execution_seconds_total{category=\"extend\",model_name=\"m\"} 1
sglang:total_retracted_reqs{model_name=\"m\"} 6
sglang:cached_tokens_total{model_name=\"m\"} 77
sglang:time_per_output_token_seconds_sum{model_name=\"m\"} 2
sglang:time_per_output_token_seconds_count{model_name=\"m\"} 100
";

/// llama.cpp before May 2025: the KV gauges, and prefix-cache hits without prompt tokens.
const LLAMACPP_OLDEST: &str = "\
llamacpp:requests_processing 2
llamacpp:requests_deferred 0
llamacpp:kv_cache_usage_ratio 0.375
llamacpp:kv_cache_tokens 1536
llamacpp:prompt_tokens_cached_total 64
llamacpp:n_decode_total 400
llamacpp:n_busy_slots_per_decode 1.5
";

fn inputs() -> Vec<(String, String)> {
    let mut out = all_fixtures();
    for (name, text) in [
        ("synthetic:vllm-newest", VLLM_NEWEST),
        ("synthetic:vllm-oldest", VLLM_OLDEST),
        ("synthetic:sglang-newest", SGLANG_NEWEST),
        ("synthetic:sglang-oldest", SGLANG_OLDEST),
        ("synthetic:llamacpp-oldest", LLAMACPP_OLDEST),
    ] {
        out.push((name.to_string(), text.to_string()));
    }
    out
}

/// What the adapters make of one exposition, as JSON: the signals and the unmapped families.
fn observed(text: &str) -> Value {
    // Some captures are cut mid-line: what parses is what an adapter sees.
    let e = parse(text);
    serde_json::json!({
        "signals": signals(&e.samples, None),
        "unmapped": unmapped(&e.samples),
    })
}

fn expected() -> Map<String, Value> {
    let text = include_str!("characterization.json");
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        other => panic!("characterization.json is not an object: {other:?}"),
    }
}

/// Every field of `want` equals the same field of `got`, and `got` has no field `want` lacks.
fn assert_fields(input: &str, path: &str, want: &Value, got: &Value) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or(&Value::Null);
                assert_fields(input, &format!("{path}.{k}"), wv, gv);
            }
            if let Some(k) = g.keys().find(|k| !w.contains_key(*k)) {
                panic!("{input}: {path}.{k} is new: {}", g[k]);
            }
        }
        _ => assert_eq!(want, got, "{input}: {path}"),
    }
}

#[test]
fn every_capture_maps_to_the_recorded_signals_field_by_field() {
    let want = expected();
    let inputs = inputs();
    for (name, text) in &inputs {
        let w = want
            .get(name)
            .unwrap_or_else(|| panic!("{name}: no expected signals in characterization.json"));
        assert_fields(name, "", w, &observed(text));
    }
    let recorded = want.keys().filter(|k| !k.starts_with("used:")).count();
    assert_eq!(recorded, inputs.len(), "an expected input is gone");
}

#[test]
#[ignore = "writes characterization.json: run with --ignored after a deliberate change"]
fn regenerate() {
    let mut all = Map::new();
    for (name, text) in inputs() {
        all.insert(name, observed(&text));
    }
    for flavor in [Flavor::Vllm, Flavor::Sglang, Flavor::Llamacpp] {
        let mut got: Vec<&str> = used_names(flavor).to_vec();
        got.sort_unstable();
        all.insert(format!("used:{}", flavor.as_str()), serde_json::json!(got));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/engines/characterization.json"
    );
    let text = serde_json::to_string_pretty(&Value::Object(all)).expect("JSON");
    std::fs::write(path, text + "\n").expect("write");
}

#[test]
fn every_flavor_reads_the_recorded_families() {
    let want = expected();
    for flavor in [Flavor::Vllm, Flavor::Sglang, Flavor::Llamacpp] {
        let mut got: Vec<&str> = used_names(flavor).to_vec();
        got.sort_unstable();
        let key = format!("used:{}", flavor.as_str());
        assert_eq!(want[&key], serde_json::json!(got), "{key}");
    }
}

#[test]
fn the_synthetic_inputs_reach_the_fallback_names() {
    let s = |text: &str| observed(text)["signals"]["sources"].clone();
    assert_eq!(
        s(VLLM_OLDEST)["itl_s"],
        "vllm:time_per_output_token_seconds"
    );
    assert_eq!(s(VLLM_NEWEST)["itl_s"], "vllm:inter_token_latency_seconds");
    assert_eq!(
        s(SGLANG_OLDEST)["preemptions_total"],
        "sglang:total_retracted_reqs"
    );
    assert_eq!(
        s(SGLANG_OLDEST)["decode_forward_seconds_total"],
        "sglang:gpu_execution_seconds_total"
    );
    assert_eq!(
        s(LLAMACPP_OLDEST)["kv_usage_frac"],
        "llamacpp:kv_cache_usage_ratio"
    );
}

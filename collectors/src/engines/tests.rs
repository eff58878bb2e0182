use super::*;
use crate::prometheus::parse;

fn from_fixture(name: &str) -> (Signals, Vec<String>) {
    let text = crate::prometheus::tests::fixture(name);
    let samples = parse(&text).samples;
    (signals(&samples, None), unmapped(&samples))
}

fn from_text(text: &str) -> Signals {
    let e = parse(text);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    signals(&e.samples, None)
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

#[test]
fn vllm_v0_aibrix_capture() {
    let (s, un) = from_fixture("vllm-v0-0.7.x-aibrix-runtime-docs.prom");
    assert_eq!(s.flavor, Some(Flavor::Vllm));
    assert_eq!(s.generation, Some("v0"));
    assert_eq!(s.model.as_deref(), Some("Qwen/Qwen2.5-Coder-1.5B-Instruct"));
    assert_eq!(s.dp_ranks, 1);
    assert_eq!(s.running, Some(0.0));
    assert_eq!(s.waiting, Some(0.0));
    assert_eq!(s.kv_usage_frac, Some(0.0));
    assert_eq!(s.sources["kv_usage_frac"], "vllm:gpu_cache_usage_perc");
    // cache_config_info: num_gpu_blocks 81767 x block_size 16.
    assert_eq!(s.kv_capacity_tokens, Some(1_308_272.0));
    assert_eq!(s.prompt_tokens_total, Some(148.0));
    assert_eq!(s.generation_tokens_total, Some(955.0));
    assert_eq!(s.preemptions_total, Some(0.0));
    assert_eq!(s.requests_finished_total, Some(4.0));
    // The capture is cut at le=96: no _count, no +Inf bucket, so no step count.
    assert_eq!(s.steps_total, None);
    assert!(un.contains(&"vllm:num_requests_swapped".to_string()));
    assert!(un.contains(&"vllm:lora_requests_info".to_string()));
    assert!(!un.contains(&"vllm:iteration_tokens_total".to_string()));
}

#[test]
fn vllm_v0_issue6337_has_model_and_no_complete_histogram() {
    let (s, _) = from_fixture("vllm-v0-0.5.1-issue6337.prom");
    assert_eq!(s.flavor, Some(Flavor::Vllm));
    assert_eq!(
        s.model.as_deref(),
        Some("/secondary/thies/Hermes-2-Theta-Llama-3-70B/")
    );
    assert_eq!(s.ttft_s, None);
    assert_eq!(s.running, None);
}

#[test]
fn vllm_v1_design_doc_capture() {
    let (s, _) = from_fixture("vllm-v1-0.7-0.8-docs-design-metrics.prom");
    assert_eq!(s.running, Some(8.0));
    assert_eq!(s.generation_tokens_total, Some(27453.0));
    // stop 1 + length 131 + abort 0.
    assert_eq!(s.requests_finished_total, Some(132.0));
    assert_eq!(s.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
    // TTFT has _count but its _sum was elided.
    assert_eq!(s.ttft_s, None);
}

#[test]
fn vllm_v1_usage_doc_capture() {
    let (s, un) = from_fixture("vllm-v1-0.7-0.8.0-docs-usage-metrics.prom");
    assert_eq!(s.flavor, Some(Flavor::Vllm));
    assert_eq!(s.model.as_deref(), Some("unsloth/Llama-3.2-1B-Instruct"));
    assert_eq!(s.steps_total, None);
    assert!(un.is_empty(), "{un:?}");
}

#[test]
fn vllm_v1_prodstack_captures() {
    let (a, un) = from_fixture("vllm-v1-0.8.0-prodstack318-a.prom");
    assert_eq!(a.running, Some(0.0));
    assert_eq!(a.waiting, Some(0.0));
    assert_eq!(a.kv_usage_frac, Some(0.0));
    assert_eq!(a.model.as_deref(), Some("Qwen/Qwen2.5-Coder-32B-Instruct"));
    assert!(un.is_empty(), "process_* is not an engine family: {un:?}");

    let (b, un) = from_fixture("vllm-v1-0.8.0-prodstack318-b.prom");
    assert_eq!(b.flavor, Some(Flavor::Vllm));
    assert_eq!(un, vec!["vllm:request_prompt_tokens".to_string()]);

    let (c, un) = from_fixture("vllm-v1-0.10.0-prodstack617-b.prom");
    assert_eq!(c.generation, Some("v1"));
    assert_eq!(c.model.as_deref(), Some("zai-org/GLM-4.5"));
    assert_eq!(c.dp_ranks, 1);
    assert_eq!(
        un,
        vec![
            "vllm:request_max_num_generation_tokens".to_string(),
            "vllm:request_params_n".to_string()
        ]
    );
}

#[test]
fn vllm_dp2_capture_counts_two_engines() {
    let (s, _) = from_fixture("vllm-v1-0.10.2dev-dp2-apiserver-pr22227.prom");
    assert_eq!(s.dp_ranks, 2);
    assert_eq!(s.generation, Some("v1"));
    assert_eq!(s.model.as_deref(), Some("/home/jovyan/qwen3-8b"));
    // ITL has sums but its counts were cut off; TPOT has engine 1's count but no sum.
    assert_eq!(s.itl_s, None);
}

#[test]
fn vllm_dp_engines_are_summed_and_fractions_averaged() {
    let s = from_text(
        "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3\n\
         vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 5\n\
         vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 1\n\
         vllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 0\n\
         vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.2\n\
         vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.4\n\
         vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.9\n\
         vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"2000\"} 1\n\
         vllm:cache_config_info{block_size=\"16\",engine=\"1\",num_gpu_blocks=\"2000\"} 1\n\
         vllm:iteration_tokens_total_count{engine=\"0\",model_name=\"m\"} 100\n\
         vllm:iteration_tokens_total_sum{engine=\"0\",model_name=\"m\"} 700\n\
         vllm:iteration_tokens_total_count{engine=\"1\",model_name=\"m\"} 50\n\
         vllm:iteration_tokens_total_sum{engine=\"1\",model_name=\"m\"} 300\n\
         vllm:inter_token_latency_seconds_sum{engine=\"0\",model_name=\"m\"} 1.5\n\
         vllm:inter_token_latency_seconds_count{engine=\"0\",model_name=\"m\"} 100\n\
         vllm:time_per_output_token_seconds_sum{engine=\"0\",model_name=\"m\"} 9\n\
         vllm:time_per_output_token_seconds_count{engine=\"0\",model_name=\"m\"} 9\n\
         vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 10\n\
         vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 4\n\
         vllm:spec_decode_num_drafts_total{engine=\"0\",model_name=\"m\"} 7\n",
    );
    assert_eq!(s.dp_ranks, 2);
    assert_eq!(s.running, Some(8.0));
    assert_eq!(s.waiting, Some(1.0));
    assert!(close(s.kv_usage_frac, 0.3));
    assert_eq!(s.sources["kv_usage_frac"], "vllm:kv_cache_usage_perc");
    // num_gpu_blocks is already the DP total, repeated per engine: taken once.
    assert_eq!(s.kv_capacity_tokens, Some(32_000.0));
    assert_eq!(s.kv_capacity_tokens_per_rank, Some(16_000.0));
    assert_eq!(s.steps_total, Some(150.0));
    assert_eq!(
        s.sources["steps_total"],
        "vllm:iteration_tokens_total_count"
    );
    assert_eq!(
        s.itl_s,
        Some(SumCount {
            sum: 1.5,
            count: 100.0
        })
    );
    assert_eq!(s.sources["itl_s"], "vllm:inter_token_latency_seconds");
    assert_eq!(s.prefix_cache_hits_total, Some(4.0));
    assert_eq!(s.spec_drafts_total, Some(7.0));
    assert_eq!(s.generation, Some("v1"));
}

#[test]
fn vllm_033_kv_size_tokens_label_and_none_blocks() {
    let s = from_text(
        "vllm:cache_config_info{block_size=\"16\",engine=\"0\",kv_cache_size_tokens=\"50000\",num_gpu_blocks=\"6000\"} 1\n\
         vllm:cache_config_info{block_size=\"16\",engine=\"1\",kv_cache_size_tokens=\"50000\",num_gpu_blocks=\"6000\"} 1\n",
    );
    assert_eq!(s.kv_capacity_tokens, Some(100_000.0));
    let s = from_text("vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1\n");
    assert_eq!(s.kv_capacity_tokens, None);
    assert!(!s.sources.contains_key("kv_capacity_tokens"));
}

#[test]
fn sglang_03_docs_capture() {
    let (s, un) = from_fixture("sglang-0.3.x-docs-production-metrics.prom");
    assert_eq!(s.flavor, Some(Flavor::Sglang));
    assert_eq!(s.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
    assert_eq!(s.running, Some(162.0));
    assert_eq!(s.waiting, Some(2826.0));
    assert_eq!(s.kv_usage_frac, Some(0.28));
    assert_eq!(s.kv_used_tokens, Some(123_859.0));
    assert_eq!(s.kv_capacity_tokens, None);
    assert_eq!(s.prompt_tokens_total, Some(8_128_902.0));
    assert_eq!(s.generation_tokens_total, Some(7_557_572.0));
    assert_eq!(
        s.ttft_s,
        Some(SumCount {
            sum: 2.3518979474117756e6,
            count: 11008.0
        })
    );
    // 0.3.x's per-token latency histogram had the old name.
    assert_eq!(s.sources["itl_s"], "sglang:time_per_output_token_seconds");
    assert_eq!(s.itl_s.map(|h| h.count), Some(7_400_757.0));
    assert_eq!(s.e2e_s.map(|h| h.count), Some(11228.0));
    assert_eq!(
        un,
        vec![
            "sglang:cache_hit_rate".to_string(),
            "sglang:func_latency_seconds".to_string(),
            "sglang:gen_throughput".to_string()
        ]
    );
}

#[test]
fn sglang_04_and_05_captures() {
    let (s, _) = from_fixture("sglang-0.4.4-pr4412-gauges.prom");
    assert_eq!(s.running, Some(0.0));
    assert_eq!(s.kv_usage_frac, Some(0.0));
    assert_eq!(
        s.model.as_deref(),
        Some("/shared/public/models/Meta-Llama-3-8B-Instruct")
    );

    let (s, _) = from_fixture("sglang-0.4.4-pr4444-e2e-buckets.prom");
    assert_eq!(s.flavor, Some(Flavor::Sglang));
    assert_eq!(s.e2e_s, None);

    let (s, un) = from_fixture("sglang-0.4.9-pd-pr7944.prom");
    assert_eq!(s.requests_finished_total, Some(217.0));
    assert_eq!(s.prefix_cache_hits_total, Some(2688.0));
    assert_eq!(s.running, Some(0.0));
    assert!(un.contains(&"sglang:num_aborted_requests_total".to_string()));

    let (s, _) = from_fixture("sglang-0.5.1-issue13485.prom");
    assert_eq!(s.model.as_deref(), Some("Qwen-32B"));
    assert_eq!(s.running, Some(1.0));
    assert_eq!(s.kv_used_tokens, Some(1.0));
    assert_eq!(s.kv_usage_frac, Some(0.0));
    assert_eq!(s.dp_ranks, 1);
}

#[test]
fn sglang_dp_ranks_sum_and_other_tp_ranks_are_ignored() {
    let s = from_text(
        "sglang:num_running_reqs{dp_rank=\"0\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 4\n\
         sglang:num_running_reqs{dp_rank=\"1\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 6\n\
         sglang:num_running_reqs{dp_rank=\"1\",engine_type=\"unified\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"1\"} 6\n\
         sglang:num_queue_reqs{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 2\n\
         sglang:max_total_num_tokens{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1000\n\
         sglang:max_total_num_tokens{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1000\n\
         sglang:num_used_tokens{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 100\n\
         sglang:num_used_tokens{dp_rank=\"1\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 300\n\
         sglang:cuda_graph_passes_total{dp_rank=\"0\",mode=\"decode_cuda_graph\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 90\n\
         sglang:cuda_graph_passes_total{dp_rank=\"0\",mode=\"decode_none\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 10\n\
         sglang:cuda_graph_passes_total{dp_rank=\"0\",mode=\"prefill_none\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 5\n\
         sglang:cached_tokens_total{cache_source=\"device\",model_name=\"m\"} 30\n\
         sglang:cached_tokens_total{cache_source=\"host\",model_name=\"m\"} 20\n\
         sglang:cached_tokens_total{cache_source=\"total\",model_name=\"m\"} 50\n\
         sglang:prompt_tokens_total{is_streaming=\"true\",model_name=\"m\"} 400\n\
         sglang:prompt_tokens_total{is_streaming=\"false\",model_name=\"m\"} 100\n\
         sglang:num_retracted_requests_total{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 3\n\
         sglang:spec_accept_length{dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 2.5\n\
         sglang:realtime_tokens_total{dp_rank=\"0\",mode=\"decode\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 700\n\
         sglang:realtime_tokens_total{dp_rank=\"1\",mode=\"decode\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 300\n\
         sglang:realtime_tokens_total{dp_rank=\"0\",mode=\"prefill_compute\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 64\n\
         sglang:forward_execution_seconds_total{category=\"decode\",dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 1.25\n\
         sglang:forward_execution_seconds_total{category=\"extend\",dp_rank=\"0\",model_name=\"m\",pp_rank=\"0\",tp_rank=\"0\"} 0.5\n",
    );
    assert_eq!(s.live_generation_tokens_total, Some(1000.0));
    assert_eq!(s.decode_forward_seconds_total, Some(1.25));
    assert_eq!(s.dp_ranks, 2);
    assert_eq!(s.running, Some(10.0));
    assert_eq!(s.waiting, Some(2.0));
    assert_eq!(s.kv_capacity_tokens, Some(2000.0));
    assert_eq!(s.kv_capacity_tokens_per_rank, Some(1000.0));
    assert_eq!(s.kv_used_tokens, Some(400.0));
    // No token_usage gauge: used / capacity.
    assert!(close(s.kv_usage_frac, 0.2));
    assert_eq!(s.steps_total, Some(100.0));
    assert_eq!(s.prefix_cache_hits_total, Some(50.0));
    assert_eq!(s.prefix_cache_queries_total, Some(500.0));
    assert_eq!(s.preemptions_total, Some(3.0));
    assert_eq!(s.spec_accept_length, Some(2.5));
}

#[test]
fn llamacpp_local_capture() {
    let (s, un) = from_fixture("llamacpp-local.prom");
    assert_eq!(s.flavor, Some(Flavor::Llamacpp));
    assert_eq!(s.model, None);
    assert_eq!(s.running, Some(8.0));
    assert_eq!(s.waiting, Some(4.0));
    assert_eq!(s.prompt_tokens_total, Some(2716.0));
    assert_eq!(s.generation_tokens_total, Some(53504.0));
    assert_eq!(s.steps_total, Some(10805.0));
    assert_eq!(s.busy_slots_per_decode, Some(5.33484));
    assert_eq!(s.prefix_cache_hits_total, Some(1254.0));
    assert_eq!(s.prefix_cache_queries_total, Some(3970.0));
    assert_eq!(s.spec_drafts_total, Some(0.0));
    assert_eq!(s.kv_usage_frac, None);
    assert_eq!(s.kv_capacity_tokens, None);
    assert_eq!(s.ttft_s, None);
    assert_eq!(
        s.sources["generation_tokens_total"],
        "llamacpp:tokens_predicted_total"
    );
    assert_eq!(
        un,
        vec![
            "llamacpp:n_tokens_max".to_string(),
            "llamacpp:predicted_tokens_seconds".to_string(),
            "llamacpp:prompt_seconds_total".to_string(),
            "llamacpp:prompt_tokens_seconds".to_string(),
        ]
    );
    assert_eq!(s.generation_seconds_total, Some(118.73));
    // Only added when a request finishes: never a live counter.
    assert_eq!(s.live_generation_tokens_total, None);
    assert_eq!(s.spec_accepted_tokens_total, Some(0.0));
}

#[test]
fn llamacpp_busy_slots_are_windowed_from_the_running_average() {
    // 1,000 calls at 2 busy slots on average, then 500 more at 8: the running average reads
    // (2·1000 + 8·500) / 1500 = 4, and the window recovers (4·1500 − 2·1000) / 500 = 8.
    let a = from_text("llamacpp:n_decode_total 1000\nllamacpp:n_busy_slots_per_decode 2\n");
    let b = from_text("llamacpp:n_decode_total 1500\nllamacpp:n_busy_slots_per_decode 4\n");
    let w = busy_slots_between(&a, &b).unwrap();
    assert!((w - 8.0).abs() < 1e-12, "{w}");
    assert_eq!(busy_slots_between(&b, &b), None, "no decode call between");
    assert_eq!(busy_slots_between(&b, &a), None, "a restart");
    assert_eq!(
        busy_slots_between(&Signals::default(), &b),
        None,
        "not exposed"
    );
}

#[test]
fn llamacpp_props_give_slots_context_and_build() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/llamacpp/props-b11434.json"
    ))
    .unwrap();
    let c = props_capacity(&serde_json::from_str(&text).unwrap());
    assert_eq!(c.total_slots, Some(8));
    assert_eq!(c.n_ctx_per_slot, Some(1024));
    assert_eq!(c.kv_capacity_tokens(), Some(8192));
    assert_eq!(c.build_info.as_deref(), Some("b11434-unknown"));
    assert!(c.model_path.is_some_and(|p| p.ends_with(".gguf")));
    let empty = props_capacity(&serde_json::json!({"total_slots": -1}));
    assert_eq!(empty, SlotCapacity::default(), "unreadable is None, not 0");
}

#[test]
fn llamacpp_2025_06_capture() {
    let (s, _) = from_fixture("llamacpp-2025-06-pr13196.prom");
    assert_eq!(s.prompt_tokens_total, Some(143.0));
    assert_eq!(s.generation_tokens_total, Some(673.0));
    assert_eq!(s.running, None);
}

#[test]
fn dcgm_capture_is_no_engine() {
    let (s, un) = from_fixture("dcgm-exporter-3.x-v100-issue250.prom");
    assert_eq!(s.flavor, None);
    assert!(un.is_empty());
}

#[test]
fn every_source_name_is_a_used_family() {
    for (flavor, text) in [
        (Flavor::Llamacpp, "llamacpp-local.prom"),
        (Flavor::Vllm, "vllm-v0-0.7.x-aibrix-runtime-docs.prom"),
        (Flavor::Sglang, "sglang-0.3.x-docs-production-metrics.prom"),
    ] {
        let (s, _) = from_fixture(text);
        for raw in s.sources.values() {
            for part in raw.split([' ', '+', '/']).filter(|p| p.contains(':')) {
                assert!(
                    used_names(flavor).contains(&base_name(part)),
                    "{part} not in USED"
                );
            }
        }
    }
}

#[test]
fn rates_between_two_scrapes() {
    let a = from_text(
        "vllm:generation_tokens_total 100\nvllm:num_preemptions_total 5\n\
         vllm:inter_token_latency_seconds_sum 1\nvllm:inter_token_latency_seconds_count 10\n",
    );
    let b = from_text(
        "vllm:generation_tokens_total 300\nvllm:num_preemptions_total 2\n\
         vllm:inter_token_latency_seconds_sum 3\nvllm:inter_token_latency_seconds_count 30\n",
    );
    let r = rates(&a, &b, 2.0);
    assert_eq!(r["generation_tokens_per_s"], 100.0);
    assert!(
        !r.contains_key("preemptions_per_s"),
        "a counter reset is left out"
    );
    assert!((r["itl_s_mean"] - 0.1).abs() < 1e-12);
    assert!(rates(&a, &b, 0.0).is_empty());
}

#[test]
fn sglang_dp_attention_over_8_ranks_reads_one_scheduler_per_rank() {
    let (s, un) = from_fixture("sglang-0.5.x-dp8-attention-reconstructed.prom");
    assert_eq!(s.flavor, Some(Flavor::Sglang));
    // Every scheduler has `tp_rank="r"` (the global TP rank): all 8 count, not only tp_rank 0.
    assert_eq!(s.dp_ranks, 8);
    assert_eq!(s.running, Some(85.0));
    assert_eq!(s.waiting, Some(1.0));
    assert_eq!(s.ranks.len(), 8);
    assert_eq!(s.ranks["6"].running, Some(0.0));
    assert_eq!(s.ranks["4"].running, Some(13.0));
    // Retractions: the per-process gauge (`pid` label), summed over ranks.
    assert_eq!(s.preemptions_recent, Some(2.0));
    assert_eq!(s.sources["preemptions_recent"], "sglang:num_retracted_reqs");
    assert!(
        !un.contains(&"sglang:num_retracted_reqs".to_string()),
        "{un:?}"
    );
    // The tokenizer's histogram counts tokens.
    assert!(s.itl_per_token);
    // The idle rank's accept length reads 0: left out of the mean.
    assert!(
        close(s.spec_accept_length, 2.7),
        "{:?}",
        s.spec_accept_length
    );
}

#[test]
fn sglang_keeps_the_lowest_tp_rank_of_each_dp_group_when_all_schedulers_report() {
    // TP 4 × DP 2 with --enable-metrics-for-all-schedulers: dp_rank 0 holds tp 0-1, 1 holds 2-3.
    let text = "\
sglang:num_running_reqs{dp_rank=\"0\",pp_rank=\"0\",tp_rank=\"0\"} 5
sglang:num_running_reqs{dp_rank=\"0\",pp_rank=\"0\",tp_rank=\"1\"} 5
sglang:num_running_reqs{dp_rank=\"1\",pp_rank=\"0\",tp_rank=\"2\"} 7
sglang:num_running_reqs{dp_rank=\"1\",pp_rank=\"0\",tp_rank=\"3\"} 7
sglang:num_running_reqs{dp_rank=\"1\",pp_rank=\"1\",tp_rank=\"2\"} 100
";
    let s = from_text(text);
    assert_eq!(s.dp_ranks, 2);
    assert_eq!(s.running, Some(12.0));
    assert_eq!(s.ranks["0"].running, Some(5.0));
    assert_eq!(s.ranks["1"].running, Some(7.0));
}

#[test]
fn vllm_keeps_each_dp_engines_series_apart() {
    let text = "\
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 8
vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 0
vllm:inter_token_latency_seconds_sum{engine=\"0\",model_name=\"m\"} 4
vllm:inter_token_latency_seconds_count{engine=\"0\",model_name=\"m\"} 400
vllm:inter_token_latency_seconds_sum{engine=\"1\",model_name=\"m\"} 1
vllm:inter_token_latency_seconds_count{engine=\"1\",model_name=\"m\"} 50
";
    let s = from_text(text);
    assert_eq!(s.running, Some(8.0));
    assert_eq!(s.ranks["0"].running, Some(8.0));
    assert_eq!(s.ranks["1"].running, Some(0.0));
    assert_eq!(
        s.ranks["1"].itl_s,
        Some(SumCount {
            sum: 1.0,
            count: 50.0
        })
    );
    assert!(!s.itl_per_token);
}

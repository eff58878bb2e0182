//! Every fixture in `fixtures/peer-results` and `fixtures/peer-formats` read with the figures
//! its tool printed (completed, req/s, output tok/s, TTFT mean and p99, within the printed
//! rounding) and, where the file has per-request data, our TPOT and ITL recomputed and held
//! against the fake engine's truth (10.0 ms between tokens).

use std::path::{Path, PathBuf};

use super::{PeerPoint, Tool, parse};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// A fixture under `fixtures/` read as `forced` (or detected), its side files beside it.
pub(crate) fn read(rel: &str, forced: Option<Tool>) -> Result<Vec<PeerPoint>, super::PeerError> {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let siblings = move |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&text, &name, forced, &siblings)
}

fn one(rel: &str) -> PeerPoint {
    let mut points = read(rel, None).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(points.len(), 1, "{rel}");
    points.remove(0)
}

/// `got` printed with `digits` decimals is `printed`.
#[track_caller]
fn printed(got: Option<f64>, printed: f64, digits: i32) {
    let got = got.expect("a figure");
    let half = 0.5 * 10f64.powi(-digits) + 1e-9;
    assert!(
        (got - printed).abs() <= half,
        "{got} does not print as {printed}"
    );
}

#[track_caller]
fn near(got: Option<f64>, want: f64, tol: f64) {
    let got = got.expect("a figure");
    assert!(
        (got - want).abs() <= tol,
        "{got} not within {tol} of {want}"
    );
}

#[test]
fn sglang_python_bench_serving_with_output_details() {
    let p = one("peer-results/sglang_py/result.jsonl");
    assert_eq!(p.tool, Tool::Sglang);
    assert_eq!(p.completed, Some(64));
    printed(p.req_per_s, 11.67, 2);
    printed(p.output_tok_per_s, 746.97, 2);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 53.17, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 57.05, 2);
    assert_eq!(p.request_rate, None, "a bare Infinity is an unlimited rate");
    assert_eq!(p.concurrency, Some(8.0));
    assert_eq!(p.requests.len(), 64);
    // Ours from the per-request gaps: the engine writes a token every 10.0 ms.
    near(p.tpot.mean_s.map(|s| s * 1e3), 10.0, 0.02);
    near(p.itl.mean_s.map(|s| s * 1e3), 10.0, 0.02);
    printed(p.itl.p99_s.map(|s| s * 1e3), 11.04, 2);
}

#[test]
fn sglang_rust_client() {
    let p = one("peer-results/sglang_rust/result.jsonl");
    assert_eq!(p.tool, Tool::Sglang);
    assert_eq!(p.completed, Some(64));
    printed(p.req_per_s, 11.72, 2);
    printed(p.output_tok_per_s, 750.11, 2);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 51.57, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 56.75, 2);
    near(p.tpot.mean_s.map(|s| s * 1e3), 10.0, 0.02);
    printed(p.itl.p99_s.map(|s| s * 1e3), 10.99, 2);
}

#[test]
fn guidellm_0_8_benchmarks_json() {
    let p = one("peer-results/guidellm/benchmarks.json");
    assert_eq!(p.tool, Tool::Guidellm);
    assert_eq!(p.tool_version.as_deref(), Some("0.8.1"));
    assert_eq!(p.completed, Some(64));
    assert_eq!(p.failed, Some(0));
    printed(p.req_per_s, 11.6, 1);
    printed(p.output_tok_per_s, 741.0, 1);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 52.6, 1);
    printed(p.ttft.p95_s.map(|s| s * 1e3), 59.4, 1);
    near(p.ttft.p99_s.map(|s| s * 1e3), 61.61, 0.01);
    assert_eq!(p.concurrency, Some(8.0));
    assert_eq!(p.label.as_deref(), Some("concurrent@8"));
    assert_eq!(p.ignore_eos, Some(true));
    assert_eq!(p.output_len_requested, Some(64.0));
    // guidellm prints TPOT 10.7 (TTFT included); ours is the decode time over n − 1.
    near(p.tpot.mean_s.map(|s| s * 1e3), 10.0, 0.05);
    near(
        p.tool_figures["time_per_output_token_ms"].as_f64(),
        10.67,
        0.01,
    );
    assert_eq!(p.itl.mean_s, None, "guidellm records no chunk gaps");
}

#[test]
fn guidellm_0_5_synchronous_on_intel_xpu() {
    let p = one(
        "peer-formats/guidellm/danielkorat_guidellm-0.5.0dev_IntelXPU_gpt-oss-20b_tp4_synchronous_benchmarks.json",
    );
    assert_eq!(p.tool_version.as_deref(), Some("0.5.0.dev0"));
    assert_eq!(p.completed, Some(25));
    assert_eq!(p.concurrency, Some(1.0));
    near(p.output_tok_per_s, 33.417, 0.001);
    near(p.ttft.mean_s.map(|s| s * 1e3), 48.84, 0.01);
    assert_eq!(p.model.as_deref(), Some("openai/gpt-oss-20b"));
}

#[test]
fn aiperf_summary_with_its_per_request_records() {
    let p = one("peer-results/aiperf/artifacts/profile_export_aiperf.json");
    assert_eq!(p.tool, Tool::Aiperf);
    assert_eq!(p.completed, Some(64));
    printed(p.req_per_s, 11.44, 2);
    printed(p.output_tok_per_s, 732.22, 2);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 55.23, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 62.96, 2);
    assert_eq!(p.concurrency, Some(8.0));
    assert_eq!(p.ignore_eos, Some(true));
    assert_eq!(
        p.requests.len(),
        64,
        "profile_export.jsonl read beside the summary"
    );
    near(p.tpot.mean_s.map(|s| s * 1e3), 10.03, 0.01);
    near(p.itl.mean_s.map(|s| s * 1e3), 10.03, 0.01);
}

#[test]
fn aiperf_records_alone() {
    let p = one("peer-results/aiperf/artifacts/profile_export.jsonl");
    assert_eq!(p.completed, Some(64));
    printed(p.ttft.mean_s.map(|s| s * 1e3), 55.23, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 62.96, 2);
}

#[test]
fn aiperf_0_10_and_early_files() {
    let p = one(
        "peer-formats/aiperf/anud18_aiperf-0.10.0_RTX5090_Qwen3.6-35B-A3B-NVFP4_sharegpt_c8_profile_export_aiperf.json",
    );
    assert_eq!(p.tool_version.as_deref(), Some("0.10.0"));
    assert_eq!(p.completed, Some(96));
    assert_eq!(p.warmup_requests, Some(16));
    near(p.ttft.mean_s.map(|s| s * 1e3), 118.058, 0.001);
    let early = one(
        "peer-formats/aiperf/wellflat_aiperf-early_A100-SXM4-80GB_gpt-oss-20b_c1_profile_export_aiperf.json",
    );
    assert_eq!(early.concurrency, Some(1.0));
    assert_eq!(early.warmup_requests, Some(10));
    assert_eq!(early.completed, Some(100));
    near(early.duration_s, 519.598, 0.001);
}

#[test]
fn genai_perf_summary() {
    let p = one(
        "peer-formats/genai-perf/wellflat_genai-perf_vllm-gptoss_gpt-oss-20b_c1_profile_export_genai_perf.json",
    );
    assert_eq!(p.tool, Tool::GenaiPerf);
    assert_eq!(p.completed, Some(35));
    assert_eq!(p.concurrency, Some(1.0));
    near(p.ttft.mean_s.map(|s| s * 1e3), 1524.627, 0.001);
    printed(p.req_per_s, 0.47, 2);
    printed(p.output_tok_per_s, 12.10, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 2342.05, 2);
}

#[test]
fn evalscope_summary_and_percentiles() {
    let p =
        one("peer-results/evalscope/out/fake-model/parallel_8_number_64/benchmark_summary.json");
    assert_eq!(p.tool, Tool::Evalscope);
    assert_eq!(p.completed, Some(64));
    printed(p.req_per_s, 11.64, 2);
    printed(p.output_tok_per_s, 745.07, 2);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 54.97, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 63.71, 2);
    assert_eq!(p.concurrency, Some(8.0));
}

#[test]
fn vllm_0_25_bench_serve_and_sweep() {
    let p = one("peer-formats/vllm/er0080_vllm-0.25.1_2xRTX3090_opt-125m_bench_serve.json");
    assert_eq!(p.tool, Tool::Vllm);
    assert_eq!(p.concurrency, Some(2.0));
    assert_eq!(p.completed, Some(8));
    printed(p.req_per_s, 5.18, 2);
    printed(p.output_tok_per_s, 82.89, 2);
    printed(p.ttft.mean_s.map(|s| s * 1e3), 215.54, 2);
    printed(p.ttft.p99_s.map(|s| s * 1e3), 734.40, 2);
    printed(p.tpot.mean_s.map(|s| s * 1e3), 11.27, 2);
    let sweep = read(
        "peer-formats/vllm/er0080_vllm-0.25.1_sweep_max_num_seqs4_c2_summary.json",
        None,
    )
    .expect("a list");
    assert_eq!(sweep.len(), 2);
    assert!(
        sweep.iter().all(|p| p.e2e.mean_s.is_some()),
        "the sweep adds e2el"
    );
}

#[test]
fn vllm_all_failed_run_has_no_latencies() {
    let p = one("peer-formats/vllm/er0080_vllm-0.25.1_2xRTX3090_opt-125m_all_requests_failed.json");
    assert_eq!((p.completed, p.failed), (Some(0), Some(8)));
    assert_eq!(
        p.ttft.mean_s, None,
        "zeros of an all-failed run are not measurements"
    );
    assert_eq!(p.req_per_s, None);
}

#[test]
fn vllm_0_9_jsonl_with_key_typos() {
    let points = read(
        "peer-formats/vllm/nerdalert_vllm-bench-automation_results_4xL40S_llama3.2-3b.jsonl",
        None,
    )
    .expect("jsonl");
    assert_eq!(points.len(), 9);
    let first = &points[0];
    assert_eq!(first.completed, Some(300));
    printed(first.req_per_s, 8.37, 2);
    printed(first.output_tok_per_s, 2258.21, 2);
    printed(first.ttft.mean_s.map(|s| s * 1e3), 54.60, 2);
    printed(first.ttft.p99_s.map(|s| s * 1e3), 98.70, 2);
    assert!(points.iter().all(|p| p.tool == Tool::Vllm));
    assert!(points.iter().any(|p| p.request_rate == Some(10.0)));
    assert!(
        points.iter().any(|p| p.request_rate.is_none()),
        "\"inf\" is unlimited"
    );
    assert!(
        points[0].tool_figures["request_goodput"].is_null()
            || points[0].tool_figures["request_goodput"].is_number()
    );
}

#[test]
fn sglang_pd_file() {
    let p = one("peer-formats/sglang/TonyLi15_sglang-bench_serving_pd_inter_node_gh200_a100.jsonl");
    assert_eq!(p.tool, Tool::Sglang);
    assert_eq!(p.concurrency, Some(8.0));
    assert_eq!(p.tool_version.as_deref(), None);
}

#[test]
fn llmperf_summary_with_individual_responses() {
    let p =
        one("peer-formats/llmperf/HongxuanZhang_llmperf_sglang_llama2-7b_550_150_c24_summary.json");
    assert_eq!(p.tool, Tool::Llmperf);
    assert_eq!(p.completed, Some(96));
    near(p.output_tok_per_s, 692.688, 0.001);
    near(p.ttft.mean_s, 0.70924, 0.00001);
    assert_eq!(p.requests.len(), 96);
    // Ours: (E2E − TTFT)/(n − 1), not llmperf's 31.0 ms that folds TTFT in.
    let tpot = p.tpot.mean_s.expect("tpot") * 1e3;
    assert!(tpot < 29.0 && tpot > 20.0, "{tpot}");
}

#[test]
fn forcing_another_tool_is_refused_naming_what_it_looks_like() {
    let err = read("peer-results/sglang_py/result.jsonl", Some(Tool::Guidellm))
        .expect_err("not guidellm");
    assert!(err.problem.contains("--tool guidellm"), "{err}");
    assert_eq!(err.maybe, vec!["sglang".to_string()]);
}

#[test]
fn locust_stats_csv_with_crlf_line_ends() {
    let p = one("peer-formats/locust/BerriAI_proxy_load_tester_load_test_stats.csv");
    assert_eq!(p.tool, Tool::Locust);
    assert_eq!(p.label.as_deref(), Some("/chat/completions"));
    assert_eq!((p.completed, p.failed), (Some(1002), Some(0)));
    near(p.req_per_s, 111.182, 0.001);
    near(p.e2e.mean_s, 0.189472, 1e-6);
    near(p.e2e.p99_s, 1.2, 1e-9);
    // The POST row, not the GETs that `Aggregated` mixes in.
    let q = one("peer-formats/locust/instarwxp_llm-gateway_results_stats.csv");
    assert_eq!(q.completed, Some(57));
    near(q.e2e.mean_s, 0.370579, 1e-6);
}

#[test]
fn locust_llm_metric_rows() {
    let csv = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\r\n\
        POST,/v1/completions,100,2,700,710.5,600,900,64,4.0,0.08,700,710,720,730,760,800,850,880,900,900,900\r\n\
        METRIC,time_to_first_token,98,0,50,52.5,40,90,0,3.9,0,50,51,52,53,60,70,80,90,90,90,90\r\n\
        METRIC,num_tokens,98,0,64,64.0,64,64,0,3.9,0,64,64,64,64,64,64,64,64,64,64,64\r\n\
        METRIC,latency_per_token,98,0,10,10.3,9,12,0,3.9,0,10,10,10,10,11,11,12,12,12,12,12\r\n\
        ,Aggregated,394,2,64,209.3,9,900,16,15.7,0.08,64,64,64,64,700,710,800,850,900,900,900\r\n";
    let p = parse(csv, "llm_stats.csv", None, &|_: &str| None)
        .expect("locust")
        .remove(0);
    assert_eq!((p.completed, p.failed), (Some(98), Some(2)));
    near(p.ttft.mean_s, 0.0525, 1e-12);
    near(p.output_tok_per_s, 256.0, 1e-9);
    assert_eq!(p.tpot.mean_s, None, "latency_per_token is not TPOT");
    near(p.tool_figures["latency_per_token_ms"].as_f64(), 10.3, 1e-12);
}

#[test]
fn locust_reads_its_columns_from_a_header_with_thousands_more() {
    let extra: String = (0..5000).map(|i| format!(",x{i}")).collect();
    let blank = ",".repeat(5000);
    let csv = format!(
        "Type,Name,Request Count,Failure Count,Average Response Time,Requests/s,99%{extra}\r\n\
         POST,/v1/completions,100,2,710.5,4.0,880{blank}\r\n\
         METRIC,time_to_first_token,98,0,52.5,3.9,90{blank}\r\n"
    );
    let p = parse(&csv, "wide_stats.csv", None, &|_: &str| None)
        .expect("locust")
        .remove(0);
    assert_eq!((p.completed, p.failed), (Some(98), Some(2)));
    near(p.req_per_s, 4.0, 1e-12);
    near(p.e2e.p99_s, 0.88, 1e-12);
    near(p.ttft.mean_s, 0.0525, 1e-12);
    assert_eq!(p.e2e.p50_s, None, "no 50% column");
}

#[test]
fn locust_header_after_a_line_of_blanks_is_an_error_not_a_panic() {
    // Found by fuzzing (peer_import): detection trims the blank line, polars does not, and no
    // column was left to project.
    let err = parse(
        "  \t\t\n   Type,Name,Request Count\0\0\x0074\n  }\n}",
        "x_stats.csv",
        None,
        &|_: &str| None,
    )
    .expect_err("not a stats CSV");
    assert!(err.problem.contains("locust's stats header"), "{err}");
}

#[test]
fn gpustack_old_json_mixed_units() {
    let p = one("peer-formats/synthetic/gpustack-benchmark_serving.json");
    assert_eq!(p.tool, Tool::Gpustack);
    assert_eq!((p.completed, p.failed), (Some(98), Some(2)));
    near(p.e2e.mean_s, 5.21, 1e-12);
    near(p.ttft.mean_s, 0.14852, 1e-12);
    assert_eq!(p.tpot.mean_s, None, "GPUStack writes no TPOT");
}

#[test]
fn inference_benchmarker_steps_without_the_warmup() {
    let points = read(
        "peer-formats/synthetic/inference-benchmarker-results.json",
        None,
    )
    .expect("parses");
    assert_eq!(points.len(), 2);
    assert!(
        points
            .iter()
            .all(|p| p.tool == Tool::InferenceBenchmarker && p.warmup_requests == Some(3))
    );
    let (closed, rate) = (&points[0], &points[1]);
    assert_eq!(closed.label.as_deref(), Some("throughput"));
    assert_eq!(
        (closed.concurrency, closed.completed, closed.failed),
        (Some(8.0), Some(47), Some(1))
    );
    near(closed.tpot.mean_s, 0.01275, 1e-12);
    near(closed.output_len_mean, 800.0, 1e-9);
    assert_eq!(rate.request_rate, Some(0.5));
}

#[test]
fn sglang_range_ratio_makes_the_asked_length_a_mean() {
    // random 128/64 with random_range_ratio 0: uniform [1, N], a mean of N / 2.
    let p = one("peer-formats/sglang/TonyLi15_sglang-bench_serving_pd_inter_node_gh200_a100.jsonl");
    assert_eq!(p.output_len_requested, Some(32.0));
    assert_eq!(p.input_len_requested, Some(64.0));
}

//! vLLM `benchmark_serving.py` / `vllm bench serve` (and its sweep's `run=N.json` and
//! `summary.json`), and SGLang `bench_serving` / `sglang-bench`, which write the same record:
//! one JSON object per run, `*_ms` statistics, per-request arrays with `--save-detailed` /
//! `--output-details` (TTFTs and chunk gaps in seconds). Their TPOT and ITL are ours.
//!
//! Quirks handled: vLLM's `request_inthroughput` and `"request_goodput:"` typos, `"inf"` and a
//! bare `Infinity` for an unlimited rate, no `failed` before vLLM 0.10 (then `num_prompts −
//! completed`), an all-failed run written as zeros (read as no measurement).

use serde_json::json;

use super::json::Node;
use super::{LoadMode, PeerError, PeerPoint, PeerRequest, Stats, Tool};

/// `{mean,median,p90,p95,p99,std}_{metric}_ms` in seconds.
fn ms_stats(n: &Node, metric: &str) -> Result<Stats, PeerError> {
    let g = |fig: &str| n.f64(&format!("{fig}_{metric}_ms"));
    Ok(Stats {
        mean_s: g("mean")?,
        p50_s: g("median")?,
        p90_s: g("p90")?,
        p95_s: g("p95")?,
        p99_s: g("p99")?,
        std_s: g("std")?,
    }
    .scaled(1e-3))
}

/// Whether an object is a vLLM or SGLang serving record.
pub fn looks_like(n: &Node) -> bool {
    n.has("completed") && n.has("duration") && (n.has("mean_ttft_ms") || n.has("backend"))
}

/// SGLang's record has fields vLLM's never had.
pub fn is_sglang(n: &Node) -> bool {
    n.has("total_output_tokens_retokenized")
        || n.has("accept_length")
        || n.has("random_range_ratio")
}

/// One run's record.
pub fn point(n: &Node, tool: Tool, index: usize) -> Result<PeerPoint, PeerError> {
    let mut p = PeerPoint::new(tool);
    p.label = n
        .str("label")
        .or_else(|| n.str("tag"))
        .or_else(|| n.str("run_number").map(|r| format!("run {r}")))
        .or_else(|| Some(format!("#{index}")));
    p.model = n.str("model_id");
    p.endpoint = n.str("endpoint_type").or_else(|| n.str("backend"));
    p.dataset = n.str("dataset_name");
    p.tool_version = n.get("server_info").and_then(|s| s.node().str("version"));
    p.concurrency = n.f64("max_concurrency")?;
    let rate = n.f64("request_rate")?;
    p.request_rate = rate.filter(|r| r.is_finite() && *r > 0.0);
    p.burstiness = n.f64("burstiness")?;
    p.mode = if n.has("run_number") {
        LoadMode::SweepPoint
    } else if p.request_rate.is_some() {
        LoadMode::Rate
    } else if p.concurrency.is_some() {
        LoadMode::ClosedLoop
    } else {
        LoadMode::Unknown
    };
    // SGLang draws random lengths uniformly from [max(1, r × N), N]: the mean asked is
    // N × (1 + r) / 2 (N itself at r = 1).
    let ratio = n.f64("random_range_ratio")?.unwrap_or(1.0).clamp(0.0, 1.0);
    let asked = |key: &str| -> Result<Option<f64>, PeerError> {
        Ok(n.f64(key)?.map(|len| len * (1.0 + ratio) / 2.0))
    };
    p.input_len_requested = asked("random_input_len")?;
    p.output_len_requested = asked("random_output_len")?;
    let completed = n.u64("completed")?;
    p.completed = completed;
    p.failed = match n.u64("failed")? {
        Some(f) => Some(f),
        None => n
            .u64("num_prompts")?
            .zip(completed)
            .map(|(all, ok)| all.saturating_sub(ok)),
    };
    p.duration_s = n.f64("duration")?;
    let measured = completed.is_some_and(|c| c > 0);
    if measured {
        p.req_per_s = n
            .f64("request_throughput")?
            .or(n.f64("request_inthroughput")?);
        p.output_tok_per_s = n.f64("output_throughput")?;
        p.total_tok_per_s = n
            .f64("total_token_throughput")?
            .or(n.f64("total_throughput")?);
        let per_request = |key: &str| -> Result<Option<f64>, PeerError> {
            Ok(n.f64(key)?.zip(completed).map(|(t, c)| t / c as f64))
        };
        p.input_len_mean = per_request("total_input_tokens")?;
        p.output_len_mean = per_request("total_output_tokens")?;
        p.ttft = ms_stats(n, "ttft")?;
        p.tpot = ms_stats(n, "tpot")?;
        p.itl = ms_stats(n, "itl")?;
        p.e2e = ms_stats(n, "e2e_latency")?.or(ms_stats(n, "e2el")?);
    }
    p.tool_figures = json!({
        "convention": "TPOT = (E2E − TTFT)/(n − 1) per request, request-weighted; ITL = chunk gaps pooled (ours)",
        "mean_tpot_ms": n.f64("mean_tpot_ms")?,
        "mean_itl_ms": n.f64("mean_itl_ms")?,
        "request_rate": rate.map(|r| if r.is_finite() { json!(r) } else { json!("inf") }),
        "concurrency_measured": n.f64("concurrency")?,
        "max_concurrent_requests": n.f64("max_concurrent_requests")?,
        "total_output_tokens": n.f64("total_output_tokens")?,
        "total_output_tokens_retokenized": n.f64("total_output_tokens_retokenized")?,
        "accept_length": n.f64("accept_length")?,
        "request_goodput": n.f64("request_goodput")?.or(n.f64("request_goodput:")?),
    });
    p.requests = requests(n)?;
    p.complete_from_requests()?;
    Ok(p)
}

/// The per-request arrays, when written.
fn requests(n: &Node) -> Result<Vec<PeerRequest>, PeerError> {
    let Some(ttfts) = n.f64s("ttfts")? else {
        return Ok(Vec::new());
    };
    let outs = n.f64s("output_lens")?.unwrap_or_default();
    let ins = n.f64s("input_lens")?.unwrap_or_default();
    let starts = n.f64s("start_times")?.unwrap_or_default();
    let latencies = n.f64s("latencies")?.unwrap_or_default();
    let first = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let errors: Vec<String> = n
        .list("errors")?
        .unwrap_or_default()
        .iter()
        .map(|c| c.v.as_str().unwrap_or_default().to_string())
        .collect();
    let gaps = match n.list("itls")? {
        Some(lists) => lists
            .iter()
            .map(|c| c.node().f64s_here())
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(ttfts
        .iter()
        .enumerate()
        .map(|(i, &ttft)| {
            let itl_s = gaps.get(i).cloned().unwrap_or_default();
            let error = errors.get(i).filter(|e| !e.is_empty()).cloned();
            let output_tokens = outs.get(i).copied();
            let ok = error.is_none() && output_tokens.is_some_and(|o| o > 0.0);
            // The last token's arrival: TTFT plus every chunk gap after it.
            let e2e = latencies
                .get(i)
                .copied()
                .or_else(|| (!itl_s.is_empty()).then(|| ttft + itl_s.iter().sum::<f64>()));
            PeerRequest {
                start_s: starts.get(i).map(|s| s - first),
                ttft_s: ok.then_some(ttft),
                e2e_s: if ok { e2e } else { None },
                input_tokens: ins.get(i).copied(),
                output_tokens,
                ok,
                error,
                itl_s,
            }
        })
        .collect())
}

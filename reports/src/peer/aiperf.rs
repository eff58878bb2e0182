//! NVIDIA AIPerf `profile_export_aiperf.json` and its predecessor GenAI-Perf's
//! `profile_export_genai_perf.json`: one point; each metric an object `{unit, avg, p50, p90,
//! p95, p99, std, ...}` in the unit it names (`ms`, `sec`). AIPerf's per-request
//! `profile_export.jsonl` is read by [`requests_from_jsonl`].
//!
//! Conventions: `inter_token_latency` = (request latency − TTFT)/(OSL − 1) per request = our
//! TPOT; AIPerf's `inter_chunk_latency` = our ITL (pooled chunk gaps). Output lengths are the
//! client tokenizer's.

use serde_json::json;

use super::json::{Node, parse_documents};
use super::{LoadMode, PeerError, PeerPoint, PeerRequest, Stats, Tool};

pub fn looks_like(n: &Node) -> bool {
    n.get("time_to_first_token")
        .is_some_and(|t| t.node().has("unit") && t.node().has("avg"))
        && n.has("request_throughput")
}

/// GenAI-Perf's input config has a `perf_analyzer` section.
pub fn is_genai_perf(n: &Node) -> bool {
    n.get("input_config")
        .is_some_and(|c| c.node().has("perf_analyzer"))
}

/// Seconds per unit of a time metric.
fn seconds_per(unit: &str) -> Option<f64> {
    match unit {
        "ns" => Some(1e-9),
        "us" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" | "sec" | "seconds" => Some(1.0),
        _ => None,
    }
}

fn stats(n: &Node, name: &str) -> Result<Stats, PeerError> {
    let Some(m) = n.get(name) else {
        return Ok(Stats::default());
    };
    let m = m.node();
    let unit = m.str("unit").unwrap_or_default();
    let k = seconds_per(&unit).ok_or_else(|| {
        PeerError::new(
            format!("key `{name}.unit`"),
            format!("expected a time unit (ns, us, ms, sec), found {unit:?}"),
        )
    })?;
    Ok(Stats {
        mean_s: m.f64("avg")?,
        p50_s: m.f64("p50")?,
        p90_s: m.f64("p90")?,
        p95_s: m.f64("p95")?,
        p99_s: m.f64("p99")?,
        std_s: m.f64("std")?,
    }
    .scaled(k))
}

fn avg(n: &Node, name: &str) -> Result<Option<f64>, PeerError> {
    match n.get(name) {
        Some(m) => m.node().f64("avg"),
        None => Ok(None),
    }
}

pub fn point(n: &Node) -> Result<PeerPoint, PeerError> {
    let tool = if is_genai_perf(n) {
        Tool::GenaiPerf
    } else {
        Tool::Aiperf
    };
    let mut p = PeerPoint::new(tool);
    p.tool_version = n.str("aiperf_version");
    p.completed = avg(n, "request_count")?.map(|c| c.round() as u64);
    // No `error_request_count` and an empty `error_summary`: no request failed.
    let no_errors =
        n.v.get("error_summary")
            .and_then(|e| e.as_array())
            .is_some_and(Vec::is_empty);
    p.failed = avg(n, "error_request_count")?
        .map(|c| c.round() as u64)
        .or(no_errors.then_some(0));
    p.duration_s = stats(n, "benchmark_duration")?.mean_s;
    p.req_per_s = avg(n, "request_throughput")?;
    p.output_tok_per_s = avg(n, "output_token_throughput")?;
    p.total_tok_per_s = avg(n, "total_token_throughput")?;
    p.input_len_mean = avg(n, "input_sequence_length")?;
    p.output_len_mean = avg(n, "output_sequence_length")?;
    p.ttft = stats(n, "time_to_first_token")?;
    p.e2e = stats(n, "request_latency")?;
    p.tpot = stats(n, "inter_token_latency")?;
    p.itl = stats(n, "inter_chunk_latency")?;
    if let Some(c) = n.get("input_config") {
        config(&c.node(), &mut p)?;
    }
    p.label = p.concurrency.map(|c| format!("concurrency {c}"));
    p.tool_figures = json!({
        "convention": "inter_token_latency = (latency − TTFT)/(OSL − 1) per request (our TPOT); inter_chunk_latency = chunk gaps pooled (our ITL)",
        "inter_token_latency_ms": avg(n, "inter_token_latency")?,
        "inter_chunk_latency_ms": avg(n, "inter_chunk_latency")?,
        "output_token_throughput_per_user": avg(n, "output_token_throughput_per_user")?,
        "effective_concurrency": avg(n, "effective_concurrency")?,
        "osl_mismatch_count": avg(n, "osl_mismatch_count")?,
    });
    Ok(p)
}

/// Concurrency, model, warm-up, lengths asked and `ignore_eos` from `input_config`, whichever
/// generation of it the file has.
fn config(c: &Node, p: &mut PeerPoint) -> Result<(), PeerError> {
    let phases = c.list("phases")?.unwrap_or_default();
    for ph in &phases {
        let ph = ph.node();
        let name = ph.str("name").unwrap_or_default();
        if name == "warmup" || ph.bool("exclude_from_results") == Some(true) {
            p.warmup_requests = ph.u64("requests")?;
        } else {
            p.concurrency = p.concurrency.or(ph.f64("concurrency")?);
            p.request_rate = p.request_rate.or(ph.f64("request_rate")?);
        }
    }
    if let Some(l) = c.get("loadgen") {
        let l = l.node();
        p.concurrency = p.concurrency.or(l.f64("concurrency")?);
        p.request_rate = p.request_rate.or(l.f64("request_rate")?);
        p.warmup_requests = p.warmup_requests.or(l.u64("warmup_request_count")?);
    }
    if let Some(pa) = c.get("perf_analyzer") {
        let pa = pa.node();
        if let Some(s) = pa.get("stimulus") {
            p.concurrency = p.concurrency.or(s.node().f64("concurrency")?);
            p.request_rate = p.request_rate.or(s.node().f64("request_rate")?);
        }
        p.warmup_requests = p.warmup_requests.or(pa.u64("warmup_request_count")?);
    }
    p.mode = match (p.concurrency, p.request_rate) {
        (_, Some(_)) => LoadMode::Rate,
        (Some(_), None) => LoadMode::ClosedLoop,
        _ => LoadMode::Unknown,
    };
    let ptr = |path: &str| c.v.pointer(path);
    p.model = ptr("/models/items/0/name")
        .or_else(|| ptr("/endpoint/model_names/0"))
        .or_else(|| ptr("/model_names/0"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    p.endpoint = ptr("/endpoint/type")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    p.ignore_eos = ptr("/endpoint/extra/ignore_eos").and_then(|v| v.as_bool());
    let num = |paths: &[&str]| paths.iter().find_map(|q| ptr(q).and_then(|v| v.as_f64()));
    p.output_len_requested = num(&[
        "/datasets/0/prompts/osl/mean",
        "/input/prompt/output_tokens/mean",
        "/input/output_tokens/mean",
    ]);
    p.input_len_requested = num(&[
        "/datasets/0/prompts/isl/mean",
        "/input/prompt/input_tokens/mean",
        "/input/synthetic_tokens/mean",
    ]);
    p.dataset = ptr("/datasets/0/dataset")
        .or_else(|| ptr("/datasets/0/type"))
        .or_else(|| ptr("/input/prompt_source"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok(())
}

/// Whether a JSON Lines record is one of AIPerf's per-request records.
pub fn is_record(n: &Node) -> bool {
    n.get("metadata")
        .is_some_and(|m| m.node().has("request_start_ns"))
        && n.has("metrics")
}

/// The profiling-phase requests of `profile_export.jsonl` (warm-up records left out).
pub fn requests_from_jsonl(text: &str) -> Result<Vec<PeerRequest>, PeerError> {
    let docs = parse_documents(text)?;
    let mut starts = Vec::new();
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let n = Node::root(d);
        let at = |e: PeerError| PeerError::new(format!("line {}: {}", i + 1, e.at), e.problem);
        let meta = n.get("metadata").ok_or_else(|| {
            PeerError::new(
                format!("line {}", i + 1),
                "expected an AIPerf record with `metadata`",
            )
        })?;
        let meta = meta.node();
        if meta
            .str("benchmark_phase")
            .is_some_and(|p| p != "profiling")
        {
            continue;
        }
        let metrics = n.get("metrics");
        let value = |k: &str| -> Result<Option<f64>, PeerError> {
            match metrics.as_ref().and_then(|m| m.node().get(k)) {
                Some(v) => v.node().f64("value").map_err(at),
                None => Ok(None),
            }
        };
        let gaps = match metrics
            .as_ref()
            .and_then(|m| m.node().get("inter_chunk_latency"))
        {
            Some(v) => v.node().f64s("value").map_err(at)?.unwrap_or_default(),
            None => Vec::new(),
        };
        let error = n.get("error").map(|e| e.v.to_string());
        starts.push(meta.f64("request_start_ns").map_err(at)?);
        out.push(PeerRequest {
            start_s: None,
            ttft_s: value("time_to_first_token")?.map(|x| x * 1e-3),
            e2e_s: value("request_latency")?.map(|x| x * 1e-3),
            input_tokens: value("input_sequence_length")?,
            output_tokens: value("output_sequence_length")?,
            ok: error.is_none() && meta.bool("was_cancelled") != Some(true),
            error,
            itl_s: gaps.iter().map(|g| g * 1e-3).collect(),
        });
    }
    let first = starts
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    for (r, s) in out.iter_mut().zip(&starts) {
        r.start_s = s.map(|s| (s - first) * 1e-9);
    }
    Ok(out)
}

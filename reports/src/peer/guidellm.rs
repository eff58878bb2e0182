//! guidellm `benchmarks.json` (0.2 – 0.8: `{"benchmarks": [...]}`, with `metadata` from 0.4):
//! one point per benchmark (strategy). Statistics are `metrics.<name>.successful.{mean, median,
//! std_dev, percentiles.pNN}`; `request_latency` is in seconds, the `*_ms` metrics in ms.
//!
//! Conventions: guidellm's `inter_token_latency_ms` is our TPOT (token-weighted); its
//! `time_per_output_token_ms` is `(last token − start) / n`, TTFT included, and is kept only
//! beside. There is no per-chunk ITL. Throughputs are the means of its rate distributions over
//! the measurement window (count / window).

use serde_json::json;

use super::json::{Child, Node};
use super::{LoadMode, PeerError, PeerPoint, PeerRequest, Stats, Tool};

pub fn looks_like(n: &Node) -> bool {
    n.list("benchmarks").ok().flatten().is_some_and(|b| {
        b.first()
            .is_some_and(|b| b.node().has("metrics") && b.node().has("requests"))
    })
}

/// `metrics.<name>.successful` as [`Stats`], multiplied by `k` to make seconds.
fn stats(metrics: &Node, name: &str, k: f64) -> Result<Stats, PeerError> {
    let Some(m) = metrics.get(name) else {
        return Ok(Stats::default());
    };
    let Some(s) = m.node().get("successful") else {
        return Ok(Stats::default());
    };
    let s = s.node();
    let pct = s.get("percentiles");
    let p = |key: &str| match &pct {
        Some(c) => c.node().f64(key),
        None => Ok(None),
    };
    Ok(Stats {
        mean_s: s.f64("mean")?,
        p50_s: s.f64("median")?,
        p90_s: p("p90")?,
        p95_s: p("p95")?,
        p99_s: p("p99")?,
        std_s: s.f64("std_dev")?,
    }
    .scaled(k))
}

fn mean(metrics: &Node, name: &str) -> Result<Option<f64>, PeerError> {
    Ok(stats(metrics, name, 1.0)?.mean_s)
}

/// Every benchmark in the file.
pub fn points(root: &Node) -> Result<Vec<PeerPoint>, PeerError> {
    let version = root
        .get("metadata")
        .and_then(|m| m.node().str("guidellm_version"));
    let model = root
        .get("args")
        .and_then(|a| a.node().str("model"))
        .filter(|m| !m.is_empty());
    let benchmarks = root.list("benchmarks")?.unwrap_or_default();
    benchmarks
        .iter()
        .map(|b| point(b, version.clone(), model.clone()))
        .collect()
}

fn point(
    b: &Child,
    version: Option<String>,
    model: Option<String>,
) -> Result<PeerPoint, PeerError> {
    let n = b.node();
    let mut p = PeerPoint::new(Tool::Guidellm);
    p.tool_version = version;
    let metrics = n.get("metrics").ok_or_else(|| {
        PeerError::new(
            format!("key `{}.metrics`", b.path),
            "expected the benchmark's metrics",
        )
    })?;
    let m = metrics.node();
    let config = n.get("config").or_else(|| n.get("args"));
    let strategy = config.as_ref().and_then(|c| c.node().get("strategy"));
    if let Some(s) = &strategy {
        let s = s.node();
        let kind = s.str("type_").unwrap_or_default();
        let streams = s.f64("streams")?.or(s.f64("max_concurrency")?);
        p.request_rate = s.f64("rate")?;
        (p.mode, p.concurrency) = match kind.as_str() {
            "synchronous" => (LoadMode::ClosedLoop, Some(1.0)),
            "concurrent" => (LoadMode::ClosedLoop, streams),
            "constant" | "poisson" => (LoadMode::Rate, None),
            _ => (LoadMode::Unknown, None),
        };
        p.label = Some(match (kind.as_str(), streams, p.request_rate) {
            ("concurrent", Some(c), _) => format!("concurrent@{c}"),
            (k, _, Some(r)) => format!("{k}@{r}"),
            (k, _, _) => k.to_string(),
        });
    }
    p.model = config
        .as_ref()
        .and_then(|c| c.node().get("backend"))
        .and_then(|b| b.node().str("model"))
        .or(model);
    if let Some(totals) = m.get("request_totals") {
        let t = totals.node();
        p.completed = t.u64("successful")?;
        p.failed = t.u64("errored")?;
    }
    p.duration_s = n.f64("duration")?;
    p.req_per_s = mean(&m, "requests_per_second")?;
    p.output_tok_per_s = mean(&m, "output_tokens_per_second")?;
    p.total_tok_per_s = mean(&m, "tokens_per_second")?;
    p.input_len_mean = mean(&m, "prompt_token_count")?;
    p.output_len_mean = mean(&m, "output_token_count")?;
    p.ttft = stats(&m, "time_to_first_token_ms", 1e-3)?;
    p.e2e = stats(&m, "request_latency", 1.0)?;
    // guidellm's inter_token_latency is our TPOT; replaced by the per-request figure below.
    p.tpot = stats(&m, "inter_token_latency_ms", 1e-3)?;
    let warmup_s = n.f64("warmup_duration")?;
    p.tool_figures = json!({
        "convention": "inter_token_latency_ms = (last − first token)/(n − 1), token-weighted (our TPOT); time_per_output_token_ms = (last token − start)/n, TTFT included; no per-chunk ITL",
        "inter_token_latency_ms": mean(&m, "inter_token_latency_ms")?,
        "time_per_output_token_ms": mean(&m, "time_per_output_token_ms")?,
        "request_concurrency_mean": mean(&m, "request_concurrency")?,
        "output_tokens_per_iteration": mean(&m, "output_tokens_per_iteration")?,
        "incomplete": m.get("request_totals").and_then(|t| t.node().u64("incomplete").ok().flatten()),
        "warmup_duration_s": warmup_s,
    });
    let ok = n
        .get("requests")
        .and_then(|r| r.node().get("successful"))
        .map(|s| s.node().list_here())
        .transpose()?
        .unwrap_or_default();
    if let Some(first) = ok.first() {
        let args = first.node().str("request_args").unwrap_or_default();
        if args.contains("\"ignore_eos\":true") || args.contains("\"ignore_eos\": true") {
            p.ignore_eos = Some(true);
        }
        p.output_len_requested = serde_json::from_str::<serde_json::Value>(&args)
            .ok()
            .and_then(|v| v.pointer("/body/max_tokens").and_then(|x| x.as_f64()));
    }
    let start0 = ok
        .iter()
        .filter_map(|r| r.node().f64("request_start_time").ok().flatten())
        .fold(f64::INFINITY, f64::min);
    p.requests = ok
        .iter()
        .map(|r| request(&r.node(), start0))
        .collect::<Result<_, _>>()?;
    p.complete_from_requests()?;
    Ok(p)
}

fn request(r: &Node, start0: f64) -> Result<PeerRequest, PeerError> {
    let start = r.f64("request_start_time")?;
    let last_token = r
        .get("info")
        .and_then(|i| i.node().get("timings"))
        .and_then(|t| t.node().f64("last_token_iteration").ok().flatten());
    // Our E2E ends at the last token (vLLM's), not at the end of the response.
    let e2e = match (start, last_token) {
        (Some(s), Some(l)) if l >= s => Some(l - s),
        _ => r.f64("request_latency")?,
    };
    Ok(PeerRequest {
        start_s: start.map(|s| s - start0),
        ttft_s: r.f64("time_to_first_token_ms")?.map(|t| t * 1e-3),
        e2e_s: e2e,
        input_tokens: r.f64("prompt_tokens")?,
        output_tokens: r.f64("output_tokens")?,
        ok: true,
        error: None,
        itl_s: Vec::new(),
    })
}

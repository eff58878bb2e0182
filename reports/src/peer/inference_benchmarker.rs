//! huggingface/inference-benchmarker's results JSON: `config` (the run) and `results[]`, one per
//! step: the `warmup` (left out: its request count becomes each point's warm-up), `throughput`
//! (ConstantVUs at `max_vus`), and `constant@Rreq/s` (ConstantArrivalRate). Latencies are
//! `{p50, …, p99, avg}` in ms; its `inter_token_latency_ms` is our TPOT (request-weighted);
//! `token_throughput_secs` counts output tokens only; `request_rate` is the achieved rate.

use serde_json::json;

use super::json::Node;
use super::{LoadMode, PeerError, PeerPoint, Stats, Tool};

pub fn looks_like(n: &Node) -> bool {
    n.list("results").ok().flatten().is_some_and(|r| {
        r.first()
            .is_some_and(|r| r.has("executor_type") || r.has("token_throughput_secs"))
    })
}

fn ms_stats(n: &Node, key: &str) -> Result<Stats, PeerError> {
    let Some(s) = n.get(key) else {
        return Ok(Stats::default());
    };
    Ok(Stats {
        mean_s: s.f64("avg")?,
        p50_s: s.f64("p50")?,
        p90_s: s.f64("p90")?,
        p95_s: s.f64("p95")?,
        p99_s: s.f64("p99")?,
        std_s: None,
    }
    .scaled(1e-3))
}

pub fn points(root: &Node) -> Result<Vec<PeerPoint>, PeerError> {
    let config = root.get("config");
    let cfg = |path: &str| config.as_ref().and_then(|c| c.v.pointer(path));
    let model = cfg("/model_name")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let out_asked = cfg("/decode_options/num_tokens").and_then(|v| v.as_f64());
    let in_asked = cfg("/prompt_options/num_tokens").and_then(|v| v.as_f64());
    let results = root.list("results")?.unwrap_or_default();
    let warmup = results
        .iter()
        .find(|r| r.str("id").as_deref() == Some("warmup"))
        .map(|r| r.u64("total_requests"))
        .transpose()?
        .flatten();
    results
        .iter()
        .filter(|r| r.str("id").as_deref() != Some("warmup"))
        .map(|r| {
            let mut p = PeerPoint::new(Tool::InferenceBenchmarker);
            p.label = r.str("id");
            p.model = model.clone();
            p.output_len_requested = out_asked;
            p.input_len_requested = in_asked;
            p.warmup_requests = warmup;
            let step = r.get("config");
            p.concurrency = step.as_ref().map(|c| c.f64("max_vus")).transpose()?.flatten();
            p.request_rate = step.as_ref().map(|c| c.f64("rate")).transpose()?.flatten();
            p.mode = match r.str("executor_type").as_deref() {
                Some("ConstantVUs") => LoadMode::ClosedLoop,
                Some("ConstantArrivalRate") => LoadMode::Rate,
                _ => LoadMode::Unknown,
            };
            p.completed = r.u64("successful_requests")?;
            p.failed = r.u64("failed_requests")?;
            p.duration_s = r.f64("duration_ms")?.map(|d| d * 1e-3);
            p.req_per_s = r.f64("request_rate")?;
            p.output_tok_per_s = r.f64("token_throughput_secs")?;
            let (out, sent) = (r.f64("total_tokens")?, r.f64("total_tokens_sent")?);
            let per = |t: Option<f64>| t.zip(p.completed).filter(|(_, c)| *c > 0).map(|(t, c)| t / c as f64);
            p.output_len_mean = per(out);
            p.input_len_mean = per(sent);
            p.total_tok_per_s = match (out, sent, p.duration_s) {
                (Some(o), Some(s), Some(d)) if d > 0.0 => Some((o + s) / d),
                _ => None,
            };
            p.ttft = ms_stats(r, "time_to_first_token_ms")?;
            p.tpot = ms_stats(r, "inter_token_latency_ms")?;
            p.e2e = ms_stats(r, "e2e_latency_ms")?;
            p.tool_figures = json!({
                "convention": "inter_token_latency_ms = (last − first token)/(n − 1) per request, request-weighted (our TPOT); no per-chunk ITL; E2E ends at [DONE]",
                "inter_token_latency_ms": p.tpot.mean_s.map(|t| t * 1e3),
                "total_requests": r.u64("total_requests")?,
            });
            Ok(p)
        })
        .collect()
}

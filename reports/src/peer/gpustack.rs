//! GPUStack's own (since removed) `benchmark_serving.py --json`: one object, every float rounded
//! to 2 decimals; `latency.*` in seconds but `time_to_first_token.*` in ms; no TPOT or ITL (its
//! per-request `completion_tokens_per_second` is n / E2E, TTFT included, and its "p99" is the
//! 1st percentile). GPUStack ≥ 2 writes guidellm files, read as guidellm.

use serde_json::json;

use super::json::Node;
use super::{LoadMode, PeerError, PeerPoint, Stats, Tool};

pub fn looks_like(n: &Node) -> bool {
    n.has("successful_requests") && n.has("total_time") && n.has("time_to_first_token")
}

fn stats(n: &Node, key: &str, k: f64) -> Result<Stats, PeerError> {
    let Some(s) = n.get(key) else {
        return Ok(Stats::default());
    };
    Ok(Stats {
        mean_s: s.f64("average")?,
        p50_s: s.f64("p50")?,
        p90_s: None,
        p95_s: s.f64("p95")?,
        p99_s: s.f64("p99")?,
        std_s: None,
    }
    .scaled(k))
}

pub fn point(n: &Node) -> Result<PeerPoint, PeerError> {
    let mut p = PeerPoint::new(Tool::Gpustack);
    p.model = n.str("model");
    p.concurrency = n.f64("concurrency")?;
    p.mode = LoadMode::ClosedLoop;
    p.output_len_requested = n.f64("max_completion_tokens")?;
    p.completed = n.u64("successful_requests")?;
    p.failed = n
        .u64("total_requests")?
        .zip(p.completed)
        .map(|(all, ok)| all.saturating_sub(ok));
    p.duration_s = n.f64("total_time")?;
    p.req_per_s = n.f64("requests_per_second")?;
    p.output_tok_per_s = n.f64("total_completion_tokens_per_second")?;
    p.total_tok_per_s = n.f64("total_tokens_per_second")?;
    let per = |key: &str| -> Result<Option<f64>, PeerError> {
        Ok(n.f64(key)?
            .zip(p.completed)
            .filter(|(_, c)| *c > 0)
            .map(|(t, c)| t / c as f64))
    };
    p.output_len_mean = per("total_completion_tokens")?;
    p.input_len_mean = per("total_prompt_tokens")?;
    p.e2e = stats(n, "latency", 1.0)?;
    p.ttft = stats(n, "time_to_first_token", 1e-3)?;
    p.tool_figures = json!({
        "convention": "no TPOT or ITL; completion_tokens_per_second = n / E2E per request (TTFT included), its p99 is the 1st percentile; TTFT includes a role-only first chunk",
        "completion_tokens_per_second_average": n.get("completion_tokens_per_second").map(|c| c.f64("average")).transpose()?.flatten(),
    });
    Ok(p)
}

//! ray-project llmperf: `*_summary.json` (flattened `results_{metric}_{stat}` keys, seconds;
//! min/max of token counts sometimes strings) and `*_individual_responses.json` (a list of
//! requests), which the binary reads beside the summary.
//!
//! llmperf's `inter_token_latency_s` is ≈ (last − send)/chunks, TTFT included: it is kept
//! beside and never read as TPOT; our TPOT is recomputed from the individual responses. There
//! is no duration in the file: it is `completed / (completed per minute / 60)`.

use serde_json::json;

use super::json::{Child, Node};
use super::{LoadMode, PeerError, PeerPoint, PeerRequest, Stats, Tool};

pub fn looks_like_summary(n: &Node) -> bool {
    n.has("results_ttft_s_mean") || n.has("results_num_completed_requests")
}

pub fn looks_like_individual(items: &[Child]) -> bool {
    items
        .first()
        .is_some_and(|r| r.node().has("ttft_s") && r.node().has("end_to_end_latency_s"))
}

fn stats(n: &Node, metric: &str) -> Result<Stats, PeerError> {
    let g = |s: &str| n.f64(&format!("results_{metric}_{s}"));
    Ok(Stats {
        mean_s: g("mean")?,
        p50_s: g("quantiles_p50")?,
        p90_s: g("quantiles_p90")?,
        p95_s: g("quantiles_p95")?,
        p99_s: g("quantiles_p99")?,
        std_s: g("stddev")?,
    })
}

pub fn point(n: &Node) -> Result<PeerPoint, PeerError> {
    let mut p = PeerPoint::new(Tool::Llmperf);
    p.tool_version = n.str("version");
    p.label = n.str("name");
    p.model = n.str("model");
    p.concurrency = n.f64("num_concurrent_requests")?;
    p.mode = LoadMode::ClosedLoop;
    p.input_len_requested = n.f64("mean_input_tokens")?;
    p.output_len_requested = n.f64("mean_output_tokens")?;
    p.completed = n.u64("results_num_completed_requests")?;
    p.failed = n.u64("results_number_errors")?;
    p.req_per_s = n
        .f64("results_num_completed_requests_per_min")?
        .map(|m| m / 60.0);
    p.duration_s = match (p.completed, p.req_per_s) {
        (Some(c), Some(r)) if r > 0.0 => Some(c as f64 / r),
        _ => None,
    };
    p.output_tok_per_s = n.f64("results_mean_output_throughput_token_per_s")?;
    p.input_len_mean = n.f64("results_number_input_tokens_mean")?;
    p.output_len_mean = n.f64("results_number_output_tokens_mean")?;
    p.total_tok_per_s = match (p.req_per_s, p.input_len_mean, p.output_tok_per_s) {
        (Some(r), Some(i), Some(o)) => Some(o + r * i),
        _ => None,
    };
    p.ttft = stats(n, "ttft_s")?;
    p.e2e = stats(n, "end_to_end_latency_s")?;
    p.tool_figures = json!({
        "convention": "inter_token_latency_s ≈ (last chunk − send)/chunks, TTFT included: not TPOT; output tokens counted with the Llama-2 tokenizer",
        "inter_token_latency_s": n.f64("results_inter_token_latency_s_mean")?,
        "request_output_throughput_token_per_s": n.f64("results_request_output_throughput_token_per_s_mean")?,
        "error_rate": n.f64("results_error_rate")?,
    });
    Ok(p)
}

/// The individual responses.
pub fn requests(items: &[Child]) -> Result<Vec<PeerRequest>, PeerError> {
    items
        .iter()
        .map(|c| {
            let r = c.node();
            let error = match r.get("error_code") {
                Some(code) => Some(format!(
                    "{} {}",
                    code.v,
                    r.str("error_msg").unwrap_or_default()
                )),
                None => None,
            };
            Ok(PeerRequest {
                start_s: None,
                ttft_s: r.f64("ttft_s")?,
                e2e_s: r.f64("end_to_end_latency_s")?,
                input_tokens: r.f64("number_input_tokens")?,
                output_tokens: r.f64("number_output_tokens")?,
                ok: error.is_none(),
                error,
                itl_s: Vec::new(),
            })
        })
        .collect()
}

/// A point from the individual responses alone (no summary beside them).
pub fn point_from_individual(items: &[Child]) -> Result<PeerPoint, PeerError> {
    let mut p = PeerPoint::new(Tool::Llmperf);
    p.requests = requests(items)?;
    let ok = p.requests.iter().filter(|r| r.ok).count() as u64;
    p.completed = Some(ok);
    p.failed = Some(p.requests.len() as u64 - ok);
    p.complete_from_requests()?;
    Ok(p)
}

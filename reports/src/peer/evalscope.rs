//! EvalScope perf's `benchmark_summary.json` (key names changed in 1.7: `Avg TTFT (ms)` for
//! `Average time to first token (s)`), with `benchmark_percentile.json` beside it (rows
//! `{"Percentiles": "99%", "TTFT (ms)": …}`) and the requests of `benchmark_data.db`, which the
//! binary reads (SQLite, seconds). TPOT and ITL are ours (ITL pooled per chunk).

use serde_json::{Value, json};

use super::json::Node;
use super::{LoadMode, PeerError, PeerPoint, Stats, Tool};

pub fn looks_like(n: &Node) -> bool {
    n.has("Test Duration (s)") || n.has("Time taken for tests (s)")
}

/// The first of `keys` present.
fn first(n: &Node, keys: &[&str]) -> Result<Option<f64>, PeerError> {
    for k in keys {
        if let Some(v) = n.f64(k)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// A time: the `(ms)` key in milliseconds (≥ 1.7), else the `(s)` one (≤ 1.6).
fn time(n: &Node, ms_key: &str, s_key: &str) -> Result<Option<f64>, PeerError> {
    Ok(n.f64(ms_key)?.map(|x| x * 1e-3).or(n.f64(s_key)?))
}

/// What `benchmark_args.json` says was asked: model, endpoint, dataset, lengths, `ignore_eos`.
pub fn apply_args(p: &mut PeerPoint, args: &Value) -> Result<(), PeerError> {
    let a = Node::root(args);
    p.model = a.str("model");
    p.endpoint = a.str("api");
    p.dataset = a.str("dataset");
    p.output_len_requested = a.f64("max_tokens")?;
    let (lo, hi) = (a.f64("min_prompt_length")?, a.f64("max_prompt_length")?);
    p.input_len_requested = match (lo, hi) {
        (Some(lo), Some(hi)) if lo == hi => Some(hi),
        _ => None,
    };
    p.ignore_eos = args
        .pointer("/extra_args/ignore_eos")
        .and_then(Value::as_bool);
    Ok(())
}

pub fn point(n: &Node, percentiles: Option<&Value>) -> Result<PeerPoint, PeerError> {
    let mut p = PeerPoint::new(Tool::Evalscope);
    p.tool_version = Some(
        if n.has("Test Duration (s)") {
            ">=1.7"
        } else {
            "<=1.6"
        }
        .into(),
    );
    p.duration_s = first(n, &["Test Duration (s)", "Time taken for tests (s)"])?;
    p.concurrency = first(n, &["Concurrency", "Number of concurrency"])?;
    p.request_rate =
        first(n, &["Request Rate (req/s)", "Request rate (req/s)"])?.filter(|r| *r > 0.0);
    p.mode = if p.request_rate.is_some() {
        LoadMode::Rate
    } else {
        LoadMode::ClosedLoop
    };
    p.label = p.concurrency.map(|c| format!("parallel {c}"));
    p.completed = first(n, &["Success Requests", "Succeed requests"])?.map(|x| x as u64);
    p.failed = first(n, &["Failed Requests", "Failed requests"])?.map(|x| x as u64);
    p.req_per_s = first(n, &["Req Throughput (req/s)", "Request throughput (req/s)"])?;
    p.output_tok_per_s = first(
        n,
        &[
            "Output Throughput (tok/s)",
            "Output token throughput (tok/s)",
        ],
    )?;
    p.total_tok_per_s = first(
        n,
        &["Total Throughput (tok/s)", "Total token throughput (tok/s)"],
    )?;
    p.input_len_mean = first(n, &["Avg Input Tokens", "Average input tokens per request"])?;
    p.output_len_mean = first(
        n,
        &["Avg Output Tokens", "Average output tokens per request"],
    )?;
    p.ttft.mean_s = time(n, "Avg TTFT (ms)", "Average time to first token (s)")?;
    p.tpot.mean_s = time(n, "Avg TPOT (ms)", "Average time per output token (s)")?;
    p.itl.mean_s = time(n, "Avg ITL (ms)", "Average inter-token latency (s)")?;
    p.e2e.mean_s = first(n, &["Avg Latency (s)", "Average latency (s)"])?;
    if let Some(rows) = percentiles {
        p.ttft = p.ttft.or(percentile_stats(rows, "TTFT")?);
        p.tpot = p.tpot.or(percentile_stats(rows, "TPOT")?);
        p.itl = p.itl.or(percentile_stats(rows, "ITL")?);
        p.e2e = p.e2e.or(percentile_stats(rows, "Latency")?);
    }
    p.tool_figures = json!({
        "convention": "TPOT = (latency − TTFT)/(n − 1) per request; ITL = chunk gaps pooled (ours); milliseconds from 1.7, seconds before",
        "avg_tpot_s": p.tpot.mean_s,
        "avg_itl_s": p.itl.mean_s,
    });
    Ok(p)
}

/// `{metric} (ms)` or `{metric} (s)` at the 50, 90, 95 and 99 % rows.
fn percentile_stats(rows: &Value, metric: &str) -> Result<Stats, PeerError> {
    let Some(rows) = rows.as_array() else {
        return Err(PeerError::new(
            "benchmark_percentile.json",
            "expected a list of rows with `Percentiles`",
        ));
    };
    let at = |pct: &str| -> Result<Option<f64>, PeerError> {
        let Some(row) = rows
            .iter()
            .find(|r| r.get("Percentiles").and_then(Value::as_str) == Some(pct))
        else {
            return Ok(None);
        };
        time(
            &Node::root(row),
            &format!("{metric} (ms)"),
            &format!("{metric} (s)"),
        )
    };
    Ok(Stats {
        mean_s: None,
        p50_s: at("50%")?,
        p90_s: at("90%")?,
        p95_s: at("95%")?,
        p99_s: at("99%")?,
        std_s: None,
    })
}

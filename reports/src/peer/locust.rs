//! locust's `PREFIX_stats.csv` (CRLF line ends; `N/A` where a row has no request), read with
//! polars. The request row is the POST row with the most requests (else `Aggregated`): its
//! count, failures, `Requests/s`, and response times in ms (average exact; the percentile
//! columns rounded to locust's buckets). LLM locustfiles (fw-ai `llm_bench`) add `METRIC` rows
//! whose "Average Response Time" is the metric's mean: `time_to_first_token` and
//! `total_latency` in ms, `num_tokens` / `completion_tokens` and `prompt_tokens` as counts;
//! `latency_per_token` is `(end − first token) / n` (no − 1) and is kept only beside.

use std::io::Cursor;

use polars::prelude::*;
use polars_io::prelude::{CsvReadOptions, SerReader};
use serde_json::json;

use super::{LoadMode, PeerError, PeerPoint, Stats, Tool};

pub fn looks_like(header: &str) -> bool {
    header.starts_with("Type,Name,Request Count")
}

fn located(e: PolarsError) -> PeerError {
    PeerError::new("the CSV", format!("expected locust's stats columns: {e}"))
}

/// The value of `column` in the first row of `df`, as a number (`N/A` and blanks: `None`).
fn first(df: &DataFrame, column: &str) -> Result<Option<f64>, PeerError> {
    let Ok(c) = df.column(column) else {
        return Ok(None);
    };
    if df.height() == 0 {
        return Ok(None);
    }
    let s = c.cast(&DataType::Float64).map_err(located)?;
    Ok(s.f64().map_err(located)?.get(0))
}

/// The columns read; the others (locust's other percentiles, whatever a file adds) are skipped
/// unparsed, so a header mangled into thousands of columns costs no more than these.
const USED: [&str; 10] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Requests/s",
    "Average Response Time",
    "50%",
    "90%",
    "95%",
    "99%",
];

pub fn points(text: &str) -> Result<Vec<PeerPoint>, PeerError> {
    let header = text.lines().next().unwrap_or_default();
    let present: Vec<&str> = header
        .split(',')
        .map(|h| h.trim().trim_matches('"'))
        .collect();
    let columns: Arc<[PlSmallStr]> = USED
        .iter()
        .filter(|c| present.contains(c))
        .map(|c| PlSmallStr::from_static(c))
        .collect();
    // polars panics on an empty projection (found by fuzzing: a first line of blanks before
    // locust's header, which detection skips and polars reads as the header).
    if columns.is_empty() {
        return Err(PeerError::new(
            "line 1",
            "expected locust's stats header (Type,Name,Request Count,…) on the first line",
        ));
    }
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .with_columns(Some(columns))
        .into_reader_with_file_handle(Cursor::new(text.as_bytes().to_vec()))
        .finish()
        .map_err(located)?;
    if df.height() == 0 {
        return Err(PeerError::new("line 2", "a locust stats CSV with no rows"));
    }
    let typ = col("Type").cast(DataType::String);
    let name = col("Name").cast(DataType::String);
    let request = |filter: Expr| -> Result<DataFrame, PeerError> {
        df.clone()
            .lazy()
            .filter(filter)
            .sort(
                ["Request Count"],
                SortMultipleOptions::default().with_order_descending(true),
            )
            .limit(1)
            .collect()
            .map_err(located)
    };
    let mut row = request(typ.clone().eq(lit("POST")))?;
    if row.height() == 0 {
        row = request(name.clone().eq(lit("Aggregated")))?;
    }
    let metric = |m: &str| -> Result<Option<f64>, PeerError> {
        let r = request(typ.clone().eq(lit("METRIC")).and(name.clone().eq(lit(m))))?;
        first(&r, "Average Response Time")
    };
    let mut p = PeerPoint::new(Tool::Locust);
    p.label = row
        .column("Name")
        .ok()
        .filter(|c| !c.is_empty())
        .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)));
    p.mode = LoadMode::ClosedLoop;
    let count = first(&row, "Request Count")?;
    let failures = first(&row, "Failure Count")?;
    p.failed = failures.map(|f| f as u64);
    p.completed = count.map(|c| (c - failures.unwrap_or(0.0)).max(0.0) as u64);
    p.req_per_s = first(&row, "Requests/s")?;
    let ms = |c: &str| -> Result<Option<f64>, PeerError> { Ok(first(&row, c)?.map(|x| x * 1e-3)) };
    p.e2e = Stats {
        mean_s: ms("Average Response Time")?,
        p50_s: ms("50%")?,
        p90_s: ms("90%")?,
        p95_s: ms("95%")?,
        p99_s: ms("99%")?,
        std_s: None,
    };
    if let Some(total) = metric("total_latency")? {
        p.e2e = Stats {
            mean_s: Some(total * 1e-3),
            ..Stats::default()
        };
    }
    p.ttft.mean_s = metric("time_to_first_token")?.map(|t| t * 1e-3);
    p.output_len_mean = match metric("num_tokens")? {
        Some(n) => Some(n),
        None => metric("completion_tokens")?,
    };
    p.input_len_mean = metric("prompt_tokens")?;
    p.output_tok_per_s = p.output_len_mean.zip(p.req_per_s).map(|(n, r)| n * r);
    p.duration_s = count
        .zip(p.req_per_s)
        .filter(|(_, r)| *r > 0.0)
        .map(|(c, r)| c / r);
    p.tool_figures = json!({
        "convention": "response times in ms; percentiles rounded to locust's buckets; latency_per_token = (end − first token)/n, not TPOT",
        "latency_per_token_ms": metric("latency_per_token")?,
        "overall_latency_per_token_ms": metric("overall_latency_per_token")?,
    });
    Ok(vec![p])
}

//! A run's rate steps in the JSON shape vLLM's `bench serve --save-result` writes (the keys of
//! vLLM 0.25's result, `fixtures/peer-formats/vllm/*bench_serve.json`), one document per rate
//! step, so people who read that format can read our run and an importer's tests have a writer
//! with a known truth. Latencies in milliseconds, throughputs per second of the step's span
//! (first request sent to last done, vLLM's "benchmark duration"); TPOT as vLLM defines it,
//! `(E2E − TTFT) / (output − 1)`; `std_*` is the population standard deviation, as numpy's.
//! Pure: figures from the recording's frames; the caller writes the files.

use polars::prelude::*;
use serde_json::{Value, json};

use crate::analysis::Analysis;
use crate::frames::{self, Rows};
use crate::recording::Recording;

const MS: f64 = 1e3;

/// Mean, median, p99 and standard deviation of a column, per step, over its measured
/// successful requests (or chunk gaps).
fn stats(col_name: &str, out: &str) -> Vec<Expr> {
    let c = col(col_name);
    vec![
        c.clone().mean().alias(format!("mean_{out}")),
        c.clone().median().alias(format!("median_{out}")),
        c.clone()
            .quantile(lit(0.99), QuantileMethod::Linear)
            .alias(format!("p99_{out}")),
        c.std(0).alias(format!("std_{out}")),
    ]
}

/// One vLLM-shaped document per rate step of `a`, with the step index.
pub fn vllm_results(
    a: &Analysis,
    data: &Recording,
    model: Option<&str>,
    date: &str,
) -> PolarsResult<Vec<(u32, Value)>> {
    if a.rates.is_empty() {
        return Ok(Vec::new());
    }
    let figures = frames::request_figures(data)?;
    let ok = figures
        .clone()
        .lazy()
        .filter(col("measured_ok"))
        .group_by([col("step_idx")])
        .agg(
            [
                stats("ttft_s", "ttft"),
                stats("tpot_s", "tpot"),
                stats("e2e_s", "e2el"),
            ]
            .concat()
            .into_iter()
            .chain([
                col("prompt_tokens_requested").sum().alias("in_tokens"),
                col("output_tokens").sum().alias("out_tokens"),
            ])
            .collect::<Vec<_>>(),
        )
        .collect()?;
    let ok = Rows::new(ok, "step_idx")?;
    let gaps = frames::chunk_gaps(data, &figures)?
        .lazy()
        .filter(col("measured_ok").and(col("gap_s").is_not_null()))
        .group_by([col("step_idx")])
        .agg(stats("gap_s", "itl"))
        .collect()?;
    let gaps = Rows::new(gaps, "step_idx")?;
    let mut out = Vec::new();
    for r in &a.rates {
        let k = r.step_idx;
        let Some(s) = a.steps.iter().find(|s| s.step_idx == k) else {
            continue;
        };
        let ms = |rows: &Rows, name: &str| -> PolarsResult<Option<f64>> {
            Ok(rows.f64(k, name)?.map(|v| v * MS))
        };
        let mut doc = json!({
            "date": date,
            "backend": "openai",
            "endpoint_type": "openai",
            "label": Value::Null,
            "model_id": model,
            "tokenizer_id": model,
            "num_prompts": r.requests,
            "request_rate": r.rate_asked_rps.map_or(json!("inf"), |v| json!(v)),
            "burstiness": r.burstiness,
            "max_concurrency": r.max_concurrency,
            "duration": s.span_s,
            "completed": s.requests_ok,
            "failed": s.requests_failed,
            "total_input_tokens": rows_u64(&ok, k, "in_tokens")?,
            "total_output_tokens": rows_u64(&ok, k, "out_tokens")?,
            "request_throughput": s.requests_per_s,
            "request_goodput": r.goodput_rps,
            "output_throughput": s.output_tokens_per_s,
            "total_token_throughput": total_tokens_per_s(&ok, k, s.span_s)?,
        });
        if let Some(o) = doc.as_object_mut() {
            for (rows, m) in [(&ok, "ttft"), (&ok, "tpot"), (&gaps, "itl"), (&ok, "e2el")] {
                for stat in ["mean", "median", "p99", "std"] {
                    let key = format!("{stat}_{m}");
                    o.insert(format!("{key}_ms"), json!(ms(rows, &key)?));
                }
            }
        }
        out.push((k, doc));
    }
    Ok(out)
}

fn rows_u64(rows: &Rows, k: u32, name: &str) -> PolarsResult<u64> {
    Ok(rows.u64(k, name)?.unwrap_or(0))
}

fn total_tokens_per_s(rows: &Rows, k: u32, span: Option<f64>) -> PolarsResult<Option<f64>> {
    let tokens = rows_u64(rows, k, "in_tokens")? + rows_u64(rows, k, "out_tokens")?;
    Ok(span.filter(|s| *s > 0.0).map(|s| tokens as f64 / s))
}

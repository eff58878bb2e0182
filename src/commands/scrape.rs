//! `ceiling scrape URL|--file F [--delta]`: one look at an engine's `/metrics` through the
//! adapters — the canonical signals, the raw metric each came from, what was not mapped, and
//! with `--delta` the rates between two scrapes.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use ceiling_collectors::engines::{self, Flavor, Signals};
use ceiling_collectors::prometheus::{ParseError, Scraper, parse};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::Exit;
use crate::cli::{FlavorArg, ScrapeArgs};
use crate::exit::Failure;

/// What `scrape` prints, as JSON with `--json`.
#[derive(Debug, Serialize)]
pub struct ScrapeReport {
    pub source: String,
    pub signals: Signals,
    pub unmapped: Vec<String>,
    pub parse_errors: Vec<ParseError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<BTreeMap<&'static str, f64>>,
}

pub async fn run(args: ScrapeArgs) -> anyhow::Result<Exit> {
    let flavor = args.flavor.map(|f| match f {
        FlavorArg::Vllm => Flavor::Vllm,
        FlavorArg::Sglang => Flavor::Sglang,
        FlavorArg::Llamacpp => Flavor::Llamacpp,
    });
    let report = match (&args.file, &args.url) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            report_of(path.display().to_string(), &text, flavor)
        }
        (None, Some(url)) => {
            let scraper = Scraper::new(super::http_client()?, url.as_str(), args.timeout);
            let first_at = Instant::now();
            let first = fetch(&scraper).await?;
            if !args.delta {
                report_of(url.clone(), &first, flavor)
            } else {
                let before = report_of(url.clone(), &first, flavor);
                tokio::time::sleep(args.interval).await;
                let second_at = Instant::now();
                let second = fetch(&scraper).await?;
                let mut after = report_of(url.clone(), &second, flavor);
                let dt = second_at.duration_since(first_at).as_secs_f64();
                after.rates = Some(engines::rates(&before.signals, &after.signals, dt));
                after.interval_s = Some(dt);
                after
            }
        }
        (None, None) => {
            return Err(Failure::Usage("give a metrics URL or --file".into()).into());
        }
    };
    if args.output.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        super::emit(&render(&report));
    }
    Ok(Exit::Success)
}

async fn fetch(scraper: &Scraper) -> anyhow::Result<String> {
    let (_, text) = scraper
        .fetch()
        .await
        .map_err(|(_, message)| Failure::Unreachable(message))
        .context("scraping the engine's metrics")?;
    Ok(text)
}

/// Parses an exposition and maps it through the adapters.
pub fn report_of(source: String, text: &str, flavor: Option<Flavor>) -> ScrapeReport {
    let exposition = parse(text);
    let signals = engines::signals(&exposition.samples, flavor);
    let unmapped = engines::unmapped(&exposition.samples);
    ScrapeReport {
        source,
        signals,
        unmapped,
        parse_errors: exposition.errors,
        interval_s: None,
        rates: None,
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The signals the adapter found, one row each, by name.
fn signal_rows(s: &Signals) -> Vec<(String, String, String)> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(s) else {
        return Vec::new();
    };
    let skip = ["flavor", "model", "dp_ranks", "generation", "sources"];
    let mut rows = Vec::new();
    for (key, value) in fields {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let shown = match &value {
            serde_json::Value::Number(n) => n.as_f64().map(fmt_num),
            serde_json::Value::Object(h) => {
                let sum = h.get("sum").and_then(serde_json::Value::as_f64);
                let count = h.get("count").and_then(serde_json::Value::as_f64);
                match (sum, count) {
                    (Some(sum), Some(count)) if count > 0.0 => Some(format!(
                        "sum {} / count {} = mean {}",
                        fmt_num(sum),
                        fmt_num(count),
                        fmt_num(sum / count)
                    )),
                    (Some(sum), Some(count)) => {
                        Some(format!("sum {} / count {}", fmt_num(sum), fmt_num(count)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(shown) = shown {
            let from = s.sources.get(key.as_str()).cloned().unwrap_or_default();
            rows.push((key, shown, from));
        }
    }
    rows
}

/// The terminal rendering of a report.
pub fn render(r: &ScrapeReport) -> String {
    let s = &r.signals;
    let mut out = String::new();
    let Some(flavor) = s.flavor else {
        out.push_str(&format!(
            "{}: no vllm:, sglang: or llamacpp: metrics found; is this an engine's /metrics with metrics enabled (SGLang --enable-metrics, llama.cpp --metrics)?\n",
            r.source
        ));
        push_errors(&mut out, r);
        return out;
    };
    out.push_str(&format!(
        "engine {}{}  model {}  DP ranks {}  ({})\n",
        flavor.as_str(),
        s.generation.map(|g| format!(" {g}")).unwrap_or_default(),
        s.model.as_deref().unwrap_or("-"),
        s.dp_ranks,
        r.source
    ));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["signal", "value", "from"]);
    for (k, v, from) in signal_rows(s) {
        table.add_row([k, v, from]);
    }
    out.push_str(&format!("{table}\n"));
    if let (Some(rates), Some(dt)) = (&r.rates, r.interval_s) {
        out.push_str(&format!("over {dt:.3} s between two scrapes:\n"));
        if rates.is_empty() {
            out.push_str("  no counter moved\n");
        }
        for (k, v) in rates {
            out.push_str(&format!("  {k:<28} {}\n", fmt_num(*v)));
        }
    }
    if r.unmapped.is_empty() {
        out.push_str("every engine metric was mapped\n");
    } else {
        out.push_str(&format!(
            "not mapped ({}): {}\n",
            r.unmapped.len(),
            r.unmapped.join(", ")
        ));
    }
    push_errors(&mut out, r);
    out
}

fn push_errors(out: &mut String, r: &ScrapeReport) {
    if r.parse_errors.is_empty() {
        return;
    }
    out.push_str(&format!(
        "{} line(s) could not be parsed (the rest was used):\n",
        r.parse_errors.len()
    ));
    for e in r.parse_errors.iter().take(10) {
        out.push_str(&format!("  {e}\n"));
    }
}

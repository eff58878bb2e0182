//! The report of one analysed run: the verdict (ceiling, efficiency against the roofline,
//! trust), the step table, the charts and the environment as a [`ReportDoc`] for the HTML and
//! Markdown renderers, and the machine-readable `result.json` ([`result_json`], schema
//! [`RESULT_SCHEMA_VERSION`]). Formats figures the analysis computed; computes none of its own.

pub mod charts;
pub mod length_chart;
pub mod length_table;
pub mod pd_table;
pub mod rate_chart;
pub mod rate_table;
pub mod results;
pub mod step_table;
pub mod vllm_json;

use serde_json::json;

use crate::analysis::Analysis;
use crate::finding::Severity;
use crate::recording::Recording;
use crate::render::{DocChart, DocFinding, ReportDoc, Table};

pub use charts::{ReportChart, report_charts};

/// The version of `result.json`'s layout; bumped on any change that removes or retypes a field.
/// `schema/result.schema.json` describes it.
/// Version 2: each ceiling carries `seq_len_tokens` and `length_bucket`, and the fit carries
/// `context_term` with the context term's standard error and interval.
pub const RESULT_SCHEMA_VERSION: u32 = 2;

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{:.2}", s * 1e3))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// The headline figures, label then value, in the order the report shows them.
pub fn verdict(a: &Analysis) -> Vec<(String, String)> {
    let mut v = Vec::new();
    match a.headline() {
        Some(c) => {
            let ci = c.throughput_ci95_tok_s.map_or(String::new(), |[lo, hi]| {
                format!(" (95 % CI {lo:.0}–{hi:.0})")
            });
            let extra = if c.extrapolated {
                format!(
                    ", extrapolated beyond the measured bs {}",
                    c.max_measured_bs_per_rank
                )
            } else {
                String::new()
            };
            v.push((
                "Ceiling".into(),
                format!(
                    "{:.0} output tok/s{ci} at bs {} ({} per rank × DP {} × MTP {:.2}), t_fwd \
                     {:.2} ms, {:.1} tok/s per sequence; limited by {}{extra} ({}/{} tokens)",
                    c.throughput_tok_s,
                    c.bs_per_rank * c.dp,
                    c.bs_per_rank,
                    c.dp,
                    c.mtp,
                    c.t_fwd_s * 1e3,
                    c.otps_per_seq,
                    c.limited_by,
                    c.input_len,
                    c.output_len,
                ),
            ));
            if let Some(q) = c.qps_max {
                v.push((
                    "Request rate at the ceiling".into(),
                    format!("{q:.2} req/s"),
                ));
            }
        }
        None => v.push((
            "Ceiling".into(),
            "none: no batch size met the SLA and limits, or no step had a step time".into(),
        )),
    }
    if let Some(best) = a
        .timings
        .iter()
        .filter_map(|t| t.throughput_window_tok_s.map(|x| (t, x)))
        .max_by(|x, y| x.1.total_cmp(&y.1))
    {
        v.push((
            "Best measured".into(),
            format!(
                "{:.0} output tok/s at bs {} (step {})",
                best.1, best.0.batch_size, best.0.step_idx
            ),
        ));
    }
    if let Some(f) = &a.fit {
        v.push(("Step-time fit".into(), fit_line(f)));
    }
    if let Some(line) = lengths_line(a) {
        v.push(("Ceiling over lengths".into(), line));
    }
    let macro_lines = rate_table::macro_lines(a);
    if let Some((first, rest)) = macro_lines.split_first() {
        v.push((
            "Macro ceiling".into(),
            first.trim_start_matches("macro ceiling: ").to_string(),
        ));
        if !rest.is_empty() {
            v.push(("Macro vs micro".into(), rest.join(" ")));
        }
    }
    if let Some(line) = pd_table::verdict_line(a) {
        v.push(("Prefill/decode".into(), line));
    }
    v.push(("Efficiency vs roofline".into(), roofline_line(a)));
    v.push(("Client vs engine".into(), agreement_line(a)));
    v.push(("Trust".into(), trust_line(a)));
    v
}

fn fit_line(f: &crate::fit::StepTimeFit) -> String {
    use crate::fit::ContextTerm;
    let context = match (f.c_s_per_seq_token, f.context_term) {
        (Some(c), _) => {
            let ci = f.c_ci95_s_per_seq_token.map_or(String::new(), |[lo, hi]| {
                format!(" (95 % CI {:.2}–{:.2})", lo * 1e9, hi * 1e9)
            });
            format!(" + {:.2} ns{ci} × bs × context", c * 1e9)
        }
        (None, ContextTerm::OneContext) => String::new(),
        (None, why) => format!("; context term {}", why.describe()),
    };
    format!(
        "t_fwd = {:.3} ms + {:.4} ms × bs per rank{context} ({} points, R² {})",
        f.a_s * 1e3,
        f.b_s_per_seq * 1e3,
        f.points,
        num(f.r_squared, 4)
    )
}

/// The spread of the ceiling over the run's length pairs, when it measured several.
fn lengths_line(a: &Analysis) -> Option<String> {
    let rows = length_table::rows(a);
    let lo = rows
        .iter()
        .min_by(|x, y| x.throughput_tok_s.total_cmp(&y.throughput_tok_s))?;
    let hi = rows
        .iter()
        .max_by(|x, y| x.throughput_tok_s.total_cmp(&y.throughput_tok_s))?;
    let at = |c: &crate::ceiling::Ceiling| {
        format!(
            "{:.0} tok/s at {}/{} tokens ({}, bs {})",
            c.throughput_tok_s, c.input_len, c.output_len, c.length_bucket, c.bs_per_rank
        )
    };
    Some(format!(
        "{} length pairs, from {} to {}; see the table by length",
        rows.len(),
        at(lo),
        at(hi)
    ))
}

fn roofline_line(a: &Analysis) -> String {
    let best = a
        .timings
        .iter()
        .filter_map(|t| Some((t, t.roofline_efficiency?)))
        .max_by_key(|(t, _)| t.batch_size);
    match best {
        Some((t, e)) => format!(
            "{:.0} % at the largest batch (bs {}): the roofline's least step time {} ms against \
             the measured {} ms",
            e * 100.0,
            t.batch_size,
            ms(t.roofline_t_min_s),
            ms(t.t_fwd_s)
        ),
        None => "not computed: give --model-config and --gpu".into(),
    }
}

fn agreement_line(a: &Analysis) -> String {
    let diffs: Vec<f64> = a
        .timings
        .iter()
        .filter_map(|t| t.client_engine_rel_diff)
        .collect();
    match diffs.iter().map(|d| d.abs()).max_by(f64::total_cmp) {
        Some(worst) => format!(
            "client and engine step times agree within {:.1} % over {} steps",
            worst * 100.0,
            diffs.len()
        ),
        None => "no engine step time to compare with (no usable /metrics)".into(),
    }
}

fn trust_line(a: &Analysis) -> String {
    let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    let (e, w) = (count(Severity::Error), count(Severity::Warn));
    match (e, w) {
        (0, 0) => "no errors or warnings: the numbers hold".into(),
        (0, w) => format!("{w} warning(s): read them before quoting the numbers"),
        (e, w) => format!("{e} error(s), {w} warning(s): do not quote these numbers as they are"),
    }
}

/// The per-step table, formatted, units in the headers ([`mod@step_table`]'s rows and columns).
pub fn step_table(a: &Analysis) -> Table {
    let (headers, rows) = step_table::rendered(a, "–");
    Table { headers, rows }
}

/// The ceiling per length pair, formatted ([`mod@length_table`]); empty for a run of one pair.
pub fn length_table(a: &Analysis) -> Table {
    match length_table::rendered(a, "–") {
        Some((headers, rows)) => Table { headers, rows },
        None => Table::default(),
    }
}

/// The findings, most severe first, as the report shows them.
pub fn doc_findings(a: &Analysis) -> Vec<DocFinding> {
    let mut f: Vec<DocFinding> = a
        .findings
        .iter()
        .map(|f| DocFinding {
            severity: f.severity,
            code: f.code.clone(),
            message: match f.step_idx {
                Some(s) => format!("step {s}: {}", f.message),
                None => f.message.clone(),
            },
        })
        .collect();
    f.sort_by_key(|d| std::cmp::Reverse(d.severity));
    f
}

/// The page title: run, engine, model.
pub fn title(a: &Analysis) -> String {
    let parts: Vec<String> = [
        a.run_id.map(|id| format!("run {id}")),
        a.engine_kind.clone(),
        a.model.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("ceiling report — {}", parts.join(" · "))
}

/// The whole report document. `charts` pairs each chart with its rendered SVG;
/// `environment` is the run's manifest formatted by the caller (it owns the store's types).
pub fn report_doc(
    a: &Analysis,
    charts: &[(ReportChart, String)],
    environment: Vec<(String, String)>,
) -> ReportDoc {
    ReportDoc {
        title: title(a),
        verdict: verdict(a),
        findings: doc_findings(a),
        step_table: step_table(a),
        steps_note: crate::gpus_apart::apart_line(&a.gpus_apart),
        length_table: length_table(a),
        rate_table: match rate_table::rendered(a, "–") {
            Some((headers, rows)) => Table { headers, rows },
            None => Table::default(),
        },
        pd_table: match pd_table::rendered(a, "–") {
            Some((headers, rows)) => Table { headers, rows },
            None => Table::default(),
        },
        charts: charts
            .iter()
            .map(|(c, svg)| DocChart {
                caption: c.caption.clone(),
                file: format!("charts/{}.svg", c.name),
                svg: svg.clone(),
            })
            .collect(),
        environment,
        labels: crate::render::DocLabels::default(),
    }
}

/// `result.json`: the schema version, the tool, the run's manifest as the caller gives it, the
/// headline ceiling and the whole analysis.
pub fn result_json(a: &Analysis, data: &Recording, run: serde_json::Value) -> serde_json::Value {
    json!({
        "schema_version": RESULT_SCHEMA_VERSION,
        "tool": { "name": "ceiling", "version": env!("CARGO_PKG_VERSION") },
        "run": run,
        "headline": a.headline(),
        "has_errors": a.has_errors(),
        "counts": {
            "steps": data.steps.len(),
            "requests": data.request_count(),
            "gpu_samples": data.gpu.len(),
            "scrapes": data.scrapes,
        },
        "analysis": a,
    })
}

#[cfg(test)]
pub(crate) mod schema_check;
#[cfg(test)]
mod tests;

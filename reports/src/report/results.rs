//! The report of imported results (`ceiling report --result ID,…`): a table of the points, the
//! checks that did not pass as its findings, and the two charts load-testing practice keeps for
//! a sweep or a multi-rate file — output throughput against p99 latency, and request rate
//! against error rate — with a run's measured ceiling drawn across the throughput chart when a
//! run is given (the micro view beside the macro one). One series per imported file, so a sweep
//! reads as a curve. Formats what the imports and the checks give; computes no figure of its own
//! but the error rate, `failed / (completed + failed)`.

use std::collections::BTreeMap;

use crate::peer::PeerPoint;
use crate::render::{
    ChartSpec, DocFinding, LegendPosition, RefLine, ReportDoc, Series, SeriesStyle, Table,
};
use crate::result_check::{Check, Verdict};

use super::ReportChart;

/// One imported point as the report shows it: the store's id, the file it came from and the
/// checks `check result` gave it.
#[derive(Debug, Clone)]
pub struct ImportedPoint {
    pub id: i64,
    pub file: String,
    pub point: PeerPoint,
    pub checks: Vec<Check>,
}

/// A run's headline ceiling, drawn across the throughput chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunCeiling {
    pub run_id: i64,
    pub throughput_tok_s: f64,
    pub batch_size: u32,
}

const MS: f64 = 1e3;

/// `failed / (completed + failed)` in percent; `None` when neither is known or both are 0.
fn error_pct(p: &PeerPoint) -> Option<f64> {
    let (ok, failed) = (p.completed?, p.failed.unwrap_or(0));
    let all = ok + failed;
    (all > 0).then(|| failed as f64 / all as f64 * 100.0)
}

/// The rate a point was driven at: the rate asked, else the one achieved.
fn offered_rate(p: &PeerPoint) -> Option<f64> {
    p.request_rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .or(p.req_per_s)
}

/// The points grouped by file, in the order first seen: one series each.
fn by_file(points: &[ImportedPoint]) -> Vec<(String, Vec<&ImportedPoint>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&ImportedPoint>> = BTreeMap::new();
    for p in points {
        let name = std::path::Path::new(&p.file)
            .file_name()
            .map_or(p.file.clone(), |n| n.to_string_lossy().to_string());
        let key = format!("{} {name}", p.point.tool.as_str());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(p);
    }
    order
        .into_iter()
        .map(|k| {
            let v = groups.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect()
}

fn series(name: String, mut points: Vec<(f64, f64)>) -> Series {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series {
        name,
        points,
        style: SeriesStyle::LineAndPoints,
    }
}

/// The two charts; a chart with no point to draw is left out.
pub fn results_charts(points: &[ImportedPoint], ceiling: Option<RunCeiling>) -> Vec<ReportChart> {
    let groups = by_file(points);
    let mut lat = Vec::new();
    let mut err = Vec::new();
    for (name, ps) in &groups {
        let pts = |lat: fn(&PeerPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            ps.iter()
                .filter_map(|p| Some((lat(&p.point)? * MS, p.point.output_tok_per_s?)))
                .collect()
        };
        lat.push(series(format!("{name}: p99 TTFT"), pts(|p| p.ttft.p99_s)));
        lat.push(series(format!("{name}: p99 TPOT"), pts(|p| p.tpot.p99_s)));
        err.push(series(
            name.clone(),
            ps.iter()
                .filter_map(|p| Some((offered_rate(&p.point)?, error_pct(&p.point)?)))
                .collect(),
        ));
    }
    lat.retain(|s| !s.points.is_empty());
    err.retain(|s| !s.points.is_empty());
    let mut out = Vec::new();
    if !lat.is_empty() {
        out.push(ReportChart {
            name: "results_throughput_vs_p99".into(),
            caption: match ceiling {
                Some(c) => format!(
                    "Output throughput against p99 latency, one point per imported result; the dashed line is run {}'s measured ceiling ({:.0} tok/s at bs {}): a point above it claims more than this node gave.",
                    c.run_id, c.throughput_tok_s, c.batch_size
                ),
                None => "Output throughput against p99 latency, one point per imported result: what each gain in throughput costs in tail latency.".into(),
            },
            spec: ChartSpec {
                title: "Throughput vs p99 latency".into(),
                x_label: "p99 latency (ms)".into(),
                y_label: "output throughput (tok/s)".into(),
                series: lat,
                hlines: ceiling
                    .map(|c| RefLine {
                        label: format!("run {} ceiling", c.run_id),
                        y: c.throughput_tok_s,
                    })
                    .into_iter()
                    .collect(),
                log_x: true,
                y_from_zero: true,
                legend: LegendPosition::UpperLeft,
                ..ChartSpec::default()
            },
        });
    }
    if !err.is_empty() {
        out.push(ReportChart {
            name: "results_error_rate".into(),
            caption: "Failed requests against the request rate (the rate asked, else the rate achieved), one point per imported result: where the engine or the tool started to fail.".into(),
            spec: ChartSpec {
                title: "Request rate vs error rate".into(),
                x_label: "request rate (req/s)".into(),
                y_label: "failed requests (%)".into(),
                series: err,
                y_from_zero: true,
                ..ChartSpec::default()
            },
        });
    }
    out
}

fn fig(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{:.digits$}", x * scale))
}

/// The points' table: one row per result.
fn table(points: &[ImportedPoint]) -> Table {
    let headers = [
        "result",
        "tool",
        "point",
        "mode",
        "concurrency",
        "rate (req/s)",
        "req/s",
        "output tok/s",
        "TTFT p99 (ms)",
        "TPOT p99 (ms)",
        "failed (%)",
    ];
    Table {
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows: points
            .iter()
            .map(|p| {
                let q = &p.point;
                vec![
                    p.id.to_string(),
                    q.tool.as_str().to_string(),
                    q.label.clone().unwrap_or_else(|| "–".into()),
                    q.mode.as_str().to_string(),
                    fig(q.concurrency, 1.0, 0),
                    fig(q.request_rate.filter(|r| r.is_finite()), 1.0, 2),
                    fig(q.req_per_s, 1.0, 2),
                    fig(q.output_tok_per_s, 1.0, 0),
                    fig(q.ttft.p99_s, MS, 1),
                    fig(q.tpot.p99_s, MS, 2),
                    fig(error_pct(q), 1.0, 1),
                ]
            })
            .collect(),
    }
}

/// The checks that warned or failed, most severe first, each named by its result.
fn findings(points: &[ImportedPoint]) -> Vec<DocFinding> {
    let mut out: Vec<(Verdict, DocFinding)> = points
        .iter()
        .flat_map(|p| {
            p.checks
                .iter()
                .filter(|c| matches!(c.verdict, Verdict::Warn | Verdict::Fail))
                .map(move |c| {
                    let severity = if c.verdict == Verdict::Fail {
                        crate::finding::Severity::Error
                    } else {
                        crate::finding::Severity::Warn
                    };
                    (
                        c.verdict,
                        DocFinding {
                            severity,
                            code: c.code.to_string(),
                            message: format!("result {}: {}", p.id, c.message),
                        },
                    )
                })
        })
        .collect();
    out.sort_by_key(|(v, _)| std::cmp::Reverse(*v as u8));
    out.into_iter().map(|(_, f)| f).collect()
}

/// The whole document; `charts` pairs each chart with its rendered SVG.
pub fn results_doc(
    points: &[ImportedPoint],
    ceiling: Option<RunCeiling>,
    charts: &[(ReportChart, String)],
) -> ReportDoc {
    let ids: Vec<String> = points.iter().map(|p| p.id.to_string()).collect();
    let count = |v: Verdict| {
        points
            .iter()
            .flat_map(|p| &p.checks)
            .filter(|c| c.verdict == v)
            .count()
    };
    let mut verdict = vec![
        (
            "Results".to_string(),
            format!("{} ({})", points.len(), ids.join(", ")),
        ),
        (
            "Checks".to_string(),
            format!(
                "{} pass, {} warn, {} fail, {} cannot tell (ceiling check result ID says why)",
                count(Verdict::Pass),
                count(Verdict::Warn),
                count(Verdict::Fail),
                count(Verdict::CannotTell)
            ),
        ),
    ];
    if let Some(c) = ceiling {
        let above = points
            .iter()
            .filter(|p| {
                p.point
                    .output_tok_per_s
                    .is_some_and(|t| t > c.throughput_tok_s)
            })
            .count();
        verdict.push((
            "Against run".to_string(),
            format!(
                "run {}'s measured ceiling {:.0} tok/s at bs {}; {above} result(s) above it",
                c.run_id, c.throughput_tok_s, c.batch_size
            ),
        ));
    }
    let mut environment: Vec<(String, String)> = points
        .iter()
        .map(|p| {
            let q = &p.point;
            (
                format!("Result {}", p.id),
                format!(
                    "{} {} · {} · model {}",
                    q.tool.as_str(),
                    q.tool_version.clone().unwrap_or_default(),
                    p.file,
                    q.model.clone().unwrap_or_else(|| "unknown".into())
                ),
            )
        })
        .collect();
    environment.push((
        "Tool".into(),
        format!("ceiling {}", env!("CARGO_PKG_VERSION")),
    ));
    ReportDoc {
        title: format!("ceiling results report — results {}", ids.join(", ")),
        verdict,
        findings: findings(points),
        step_table: table(points),
        steps_note: None,
        length_table: Table::default(),
        rate_table: Table::default(),
        pd_table: Table::default(),
        charts: charts
            .iter()
            .map(|(c, svg)| crate::render::DocChart {
                caption: c.caption.clone(),
                file: format!("charts/{}.svg", c.name),
                svg: svg.clone(),
            })
            .collect(),
        environment,
        labels: crate::render::DocLabels {
            trust: "Checks that did not pass".into(),
            no_findings: "Every check passed or could not tell.".into(),
            steps: "Results".into(),
        },
    }
}

#[cfg(test)]
#[path = "results_tests.rs"]
mod tests;

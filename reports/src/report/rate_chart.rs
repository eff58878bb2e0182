//! The open loop's charts, one point per rate step against the rate the client sent at: the
//! throughput with the macro ceiling marked and the micro ceiling as a line, TTFT and TPOT
//! percentiles with the SLA, the error rate, and the queue the engine reported (its running
//! and waiting gauges). None for a run without rate steps. Selection and units only.

use crate::analysis::Analysis;
use crate::rate::RateStep;
use crate::render::{ChartSpec, Marker, RefLine, Series, SeriesStyle};

use super::charts::ReportChart;

const MS: f64 = 1e3;

fn points(a: &Analysis, y: impl Fn(&RateStep) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = a
        .rates
        .iter()
        .filter_map(|r| r.rate_rps().zip(y(r)))
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

fn line(name: &str, pts: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        points: pts,
        style: SeriesStyle::LineAndPoints,
    }
}

fn spec(title: &str, y_label: &str, series: Vec<Series>) -> ChartSpec {
    ChartSpec {
        title: title.into(),
        x_label: "request rate sent (req/s)".into(),
        y_label: y_label.into(),
        series,
        y_from_zero: true,
        ..ChartSpec::default()
    }
}

fn chart(name: &str, caption: &str, spec: ChartSpec) -> ReportChart {
    ReportChart {
        name: name.into(),
        caption: caption.into(),
        spec,
    }
}

/// The open loop's charts, in the order shown; empty without rate steps.
pub fn rate_charts(a: &Analysis) -> Vec<ReportChart> {
    if a.rates.is_empty() {
        return Vec::new();
    }
    vec![
        throughput_vs_rate(a),
        percentiles_vs_rate(
            a,
            "ttft",
            "TTFT",
            |r| r.ttft_s,
            a.macro_ceiling.as_ref().and_then(|m| m.sla.ttft_p99_s),
        ),
        percentiles_vs_rate(
            a,
            "tpot",
            "TPOT",
            |r| r.tpot_s,
            a.macro_ceiling.as_ref().and_then(|m| m.sla.tpot_p99_s),
        ),
        error_rate_vs_rate(a),
        queue_vs_rate(a),
    ]
}

fn throughput_vs_rate(a: &Analysis) -> ReportChart {
    let mut s = spec(
        "Throughput vs request rate",
        "output throughput (tok/s)",
        vec![line("output tok/s", points(a, |r| r.output_tokens_per_s))],
    );
    if let Some(m) = &a.macro_ceiling {
        if let (Some(x), Some(y)) = (
            m.rate_achieved_rps.or(m.rate_asked_rps),
            m.output_tokens_per_s,
        ) {
            s.markers.push(Marker {
                label: format!("macro ceiling: {x:.2} req/s"),
                x,
                y,
            });
        }
        if let Some(g) = &m.gap {
            s.hlines.push(RefLine {
                label: format!("micro ceiling {:.0} tok/s", g.micro_tok_s),
                y: g.micro_tok_s,
            });
        }
    }
    chart(
        "throughput_vs_rate",
        "Output throughput at each request rate, the macro ceiling (the highest rate meeting the SLA) marked, and the micro ceiling (bs × DP × MTP / t_fwd) where the run or --against has one.",
        s,
    )
}

fn percentiles_vs_rate(
    a: &Analysis,
    stem: &str,
    what: &str,
    get: impl Fn(&RateStep) -> Option<crate::metrics::Distribution>,
    sla_s: Option<f64>,
) -> ReportChart {
    let series = [("p50", 0usize), ("p90", 1), ("p99", 2)]
        .into_iter()
        .map(|(name, k)| {
            line(
                &format!("{what} {name}"),
                points(a, |r| get(r).map(|d| [d.p50, d.p90, d.p99][k] * MS)),
            )
        })
        .collect();
    let mut s = spec(
        &format!("{what} percentiles vs request rate"),
        &format!("{what} (ms)"),
        series,
    );
    if let Some(v) = sla_s {
        s.hlines.push(RefLine {
            label: format!("SLA p99 ≤ {:.0} ms", v * MS),
            y: v * MS,
        });
    }
    chart(
        &format!("{stem}_vs_rate"),
        &format!(
            "{what} p50, p90 and p99 at each request rate: where the tail leaves the SLA, the rate is past the macro ceiling."
        ),
        s,
    )
}

fn error_rate_vs_rate(a: &Analysis) -> ReportChart {
    let mut s = spec(
        "Error rate vs request rate",
        "failed requests (%)",
        vec![line(
            "failed",
            points(a, |r| r.error_rate.map(|e| e * 100.0)),
        )],
    );
    s.hlines.push(RefLine {
        label: "5 %".into(),
        y: crate::rate::ceiling::MAX_ERROR_RATE * 100.0,
    });
    chart(
        "error_rate_vs_rate",
        "Failed requests at each request rate; a rate with 5 % or more failed misses the macro ceiling whatever its latency.",
        s,
    )
}

fn queue_vs_rate(a: &Analysis) -> ReportChart {
    chart(
        "queue_vs_rate",
        "The engine's running batch and its queue (mean of its gauges over each step): the batch the open loop built, and where requests began to wait.",
        spec(
            "Engine batch and queue vs request rate",
            "requests",
            vec![
                line("running", points(a, |r| r.engine_running_mean)),
                line("waiting", points(a, |r| r.engine_waiting_mean)),
            ],
        ),
    )
}

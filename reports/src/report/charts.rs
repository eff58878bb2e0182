//! The report's charts as [`ChartSpec`]s, built from an [`Analysis`] and the recording it came
//! from: the ceiling over lengths ([`super::length_chart`], runs of several length pairs),
//! throughput and TPOT vs batch size (with the fit, the SLA and the ceiling), step time
//! three ways with the roofline, GPU telemetry vs time with the steps shaded, throughput vs p99
//! latency, error rate per step and the ITL distribution per step. Only selection and unit
//! conversion happen here; every figure comes from the analysis or the metric definitions.

use std::collections::BTreeMap;

use crate::analysis::Analysis;
use crate::ceiling::{Ceiling, DEFAULT_SLA_OTPS};
use crate::fit::decode_context;
use crate::recording::Recording;
use crate::render::histogram_spec;
use crate::render::{Band, ChartSpec, LegendPosition, Marker, RefLine, Series, SeriesStyle};

use super::length_chart::{lines, several_pairs};

/// One chart of the report: a file stem (`throughput_vs_bs`), a caption and the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportChart {
    pub name: String,
    pub caption: String,
    pub spec: ChartSpec,
}

const MS: f64 = 1e3;

fn chart(name: &str, caption: String, spec: ChartSpec) -> ReportChart {
    ReportChart {
        name: name.to_string(),
        caption,
        spec,
    }
}

fn series(name: &str, style: SeriesStyle, mut points: Vec<(f64, f64)>) -> Series {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series {
        name: name.to_string(),
        points,
        style,
    }
}

/// `(batch size, y)` for every step where `y` is known, batch size as the probe ran it.
fn per_bs(a: &Analysis, y: impl Fn(usize) -> Option<f64>) -> Vec<(f64, f64)> {
    (0..a.timings.len())
        .filter_map(|i| y(i).map(|v| (f64::from(a.timings[i].batch_size), v)))
        .collect()
}

/// Every chart of the report, in the order shown. Charts without data are left out (the GPU
/// charts of a run with no GPU source).
pub fn report_charts(a: &Analysis, data: &Recording) -> Vec<ReportChart> {
    let head = a.headline();
    let mut out: Vec<ReportChart> = super::length_chart::ceiling_vs_length(a)
        .into_iter()
        .collect();
    out.extend([
        throughput_vs_bs(a, head),
        tpot_vs_bs(a, head),
        step_time_vs_bs(a, head),
    ]);
    out.extend(gpu_charts(data));
    out.push(throughput_vs_p99(a));
    out.push(error_rate(a));
    out.push(itl_distribution(a, data));
    out.extend(super::rate_chart::rate_charts(a));
    out
}

/// Batch sizes from 1 to `hi` on a geometric grid, for drawing the fitted curves.
fn bs_grid(hi: f64) -> Vec<f64> {
    let n = 48;
    let hi = hi.max(1.0);
    (0..=n)
        .map(|i| hi.powf(f64::from(i) / f64::from(n)))
        .collect()
}

/// The largest total batch size the charts reach: the measured ones and the ceiling's.
fn bs_span(a: &Analysis, head: Option<&Ceiling>) -> f64 {
    let measured = a
        .timings
        .iter()
        .map(|t| f64::from(t.batch_size))
        .fold(1.0, f64::max);
    let ceiling = head.map_or(1.0, |c| f64::from(c.bs_per_rank * c.dp));
    measured.max(ceiling)
}

fn ceiling_marker(c: &Ceiling, y: f64) -> Marker {
    Marker {
        label: format!("ceiling: bs {}", c.bs_per_rank * c.dp),
        x: f64::from(c.bs_per_rank * c.dp),
        y,
    }
}

fn throughput_vs_bs(a: &Analysis, head: Option<&Ceiling>) -> ReportChart {
    let mut s = vec![series(
        "measured (window)",
        SeriesStyle::Points,
        per_bs(a, |i| a.timings[i].throughput_window_tok_s),
    )];
    s.extend(lines(
        a,
        "bs × DP × MTP / t_fwd",
        SeriesStyle::LineAndPoints,
        |i| a.timings[i].throughput_identity_tok_s,
    ));
    let mut markers = Vec::new();
    if let (Some(fit), Some(c)) = (&a.fit, head) {
        let ctx = decode_context(c.input_len, c.output_len);
        let dp = f64::from(c.dp);
        let pts = bs_grid(bs_span(a, head))
            .into_iter()
            .map(|bs| (bs, bs * c.mtp / fit.predict(bs / dp, ctx)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect();
        s.push(series("fit", SeriesStyle::Dashed, pts));
        markers.push(ceiling_marker(c, c.throughput_tok_s));
    }
    chart(
        "throughput_vs_bs",
        "Output throughput vs batch size: measured over the step's window, the identity \
         bs × DP × MTP / t_fwd, the fitted step time's curve and the ceiling."
            .into(),
        ChartSpec {
            title: "Output throughput vs batch size".into(),
            x_label: "batch size (sequences)".into(),
            y_label: "output throughput (tok/s)".into(),
            series: s,
            markers,
            log_x: true,
            y_from_zero: true,
            ..ChartSpec::default()
        },
    )
}

/// The SLA as a TPOT limit in seconds: `--sla-tpot`, else `1 / --sla-otps` (default 20 tok/s).
fn sla_tpot_limit_s(a: &Analysis) -> (f64, String) {
    let o = &a.ceiling_options;
    match (o.sla_tpot_s, o.sla_otps) {
        (Some(t), _) => (t, format!("SLA: TPOT ≤ {:.1} ms", t * MS)),
        (None, Some(otps)) => (1.0 / otps, format!("SLA: {otps} tok/s per sequence")),
        (None, None) => (
            1.0 / DEFAULT_SLA_OTPS,
            format!("SLA (default): {DEFAULT_SLA_OTPS} tok/s per sequence"),
        ),
    }
}

fn tpot_vs_bs(a: &Analysis, head: Option<&Ceiling>) -> ReportChart {
    let mut s = lines(a, "TPOT p50", SeriesStyle::LineAndPoints, |i| {
        a.steps[i].tpot_s.map(|d| d.p50 * MS)
    });
    s.push(series(
        "TPOT p99",
        SeriesStyle::Points,
        per_bs(a, |i| a.steps[i].tpot_s.map(|d| d.p99 * MS)),
    ));
    let mut markers = Vec::new();
    if let (Some(fit), Some(c)) = (&a.fit, head) {
        let ctx = decode_context(c.input_len, c.output_len);
        let dp = f64::from(c.dp);
        let pts = bs_grid(bs_span(a, head))
            .into_iter()
            .map(|bs| (bs, fit.predict(bs / dp, ctx) / c.mtp * MS))
            .collect();
        s.push(series("fit: t_fwd / MTP", SeriesStyle::Dashed, pts));
        markers.push(ceiling_marker(c, c.tpot_s * MS));
    }
    let (limit, label) = sla_tpot_limit_s(a);
    chart(
        "tpot_vs_bs",
        "Time per output token vs batch size, with the fitted step time and the SLA the \
         ceiling is held to."
            .into(),
        ChartSpec {
            title: "TPOT vs batch size".into(),
            x_label: "batch size (sequences)".into(),
            y_label: "time per output token (ms)".into(),
            series: s,
            hlines: vec![RefLine {
                label,
                y: limit * MS,
            }],
            markers,
            log_x: true,
            y_from_zero: true,
            ..ChartSpec::default()
        },
    )
}

fn step_time_vs_bs(a: &Analysis, head: Option<&Ceiling>) -> ReportChart {
    let ms = |v: Option<f64>| v.map(|x| x * MS);
    // Over several lengths the client's line is drawn per length pair; the other two views are
    // points, so the chart stays readable.
    let other = if several_pairs(a).is_empty() {
        SeriesStyle::LineAndPoints
    } else {
        SeriesStyle::Points
    };
    let mut s = lines(a, "client (chunk gaps)", SeriesStyle::LineAndPoints, |i| {
        ms(a.timings[i].t_fwd_client_s)
    });
    s.push(series(
        "identity (MTP × TPOT)",
        other,
        per_bs(a, |i| ms(a.timings[i].t_fwd_identity_s)),
    ));
    s.push(series(
        "engine (/metrics)",
        other,
        per_bs(a, |i| ms(a.timings[i].t_fwd_engine_s)),
    ));
    if let (Some(fit), Some(c)) = (&a.fit, head) {
        let dp = f64::from(c.dp);
        let hi = a
            .timings
            .iter()
            .map(|t| f64::from(t.batch_size))
            .fold(1.0, f64::max);
        let curve = |ctx: f64| -> Vec<(f64, f64)> {
            bs_grid(hi)
                .into_iter()
                .map(|bs| (bs, fit.predict(bs / dp, ctx) * MS))
                .collect()
        };
        let pairs = several_pairs(a);
        if pairs.is_empty() || fit.c_s_per_seq_token.is_none() {
            let ctx = decode_context(c.input_len, c.output_len);
            s.push(series("fit a + b·bs", SeriesStyle::Dashed, curve(ctx)));
        } else {
            for (i, o) in pairs {
                let name = format!("fit a + b·bs + c·bs·ctx {i}/{o}");
                s.push(series(
                    &name,
                    SeriesStyle::Dashed,
                    curve(decode_context(i, o)),
                ));
            }
        }
    }
    let roof = per_bs(a, |i| ms(a.timings[i].roofline_t_min_s));
    let caption = if roof.is_empty() {
        "Step time three ways: from the client's chunk gaps, from the identity MTP × TPOT and \
         from the engine's metrics (no roofline: give --model-config and --gpu)."
    } else {
        "Step time three ways: from the client's chunk gaps, from the identity MTP × TPOT and \
         from the engine's metrics, with the hardware roofline's minimum."
    };
    if !roof.is_empty() {
        s.push(series("roofline t_min", SeriesStyle::Dashed, roof));
    }
    chart(
        "step_time_vs_bs",
        caption.into(),
        ChartSpec {
            title: "Step time vs batch size".into(),
            x_label: "batch size (sequences)".into(),
            y_label: "step time t_fwd (ms)".into(),
            series: s,
            log_x: true,
            y_from_zero: true,
            ..ChartSpec::default()
        },
    )
}

fn step_bands(data: &Recording) -> Vec<Band> {
    data.steps
        .iter()
        .filter_map(|s| {
            s.end_t_s.map(|end| Band {
                label: format!("bs {}", s.batch_size),
                x_from: s.start_t_s,
                x_to: end,
            })
        })
        .collect()
}

type Get = fn(&ceiling_collectors::GpuSample) -> Option<f64>;
/// One GPU chart: file stem, title, y label, the quantities drawn, whether y starts at zero.
type Panel = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, Get)>,
    bool,
);

/// GPU utilisation and memory, power, SM clock vs time; none when no sample has the value.
pub fn gpu_charts(data: &Recording) -> Vec<ReportChart> {
    let panels: [Panel; 3] = [
        (
            "gpu_util_mem",
            "GPU utilisation and memory vs time",
            "share (%)",
            vec![
                ("util", |g| g.util_gpu_pct),
                ("memory used", |g| {
                    let (u, t) = (g.mem_used_bytes?, g.mem_total_bytes?);
                    (t > 0).then(|| u as f64 / t as f64 * 100.0)
                }),
            ],
            true,
        ),
        (
            "gpu_power",
            "GPU power vs time",
            "power (W)",
            vec![("power", |g| g.power_w)],
            true,
        ),
        (
            "gpu_sm_clock",
            "GPU SM clock vs time",
            "SM clock (MHz)",
            vec![("SM clock", |g| g.sm_clock_mhz.map(f64::from))],
            false,
        ),
    ];
    let mut by_gpu: BTreeMap<u32, Vec<&ceiling_collectors::GpuSample>> = BTreeMap::new();
    for g in &data.gpu {
        by_gpu.entry(g.gpu_index).or_default().push(g);
    }
    let mut out = Vec::new();
    for (name, title, y_label, gets, from_zero) in panels {
        let mut s = Vec::new();
        for (idx, samples) in &by_gpu {
            for (what, get) in &gets {
                let pts: Vec<(f64, f64)> = samples
                    .iter()
                    .filter_map(|g| get(g).map(|v| (g.t_s, v)))
                    .collect();
                if !pts.is_empty() {
                    s.push(series(&format!("GPU {idx} {what}"), SeriesStyle::Line, pts));
                }
            }
        }
        if s.is_empty() {
            continue;
        }
        out.push(chart(
            name,
            format!("{title}, the probe's steps shaded."),
            ChartSpec {
                title: title.into(),
                x_label: "time since the run started (s)".into(),
                y_label: y_label.into(),
                series: s,
                shaded: step_bands(data),
                y_from_zero: from_zero,
                legend: LegendPosition::LowerRight,
                ..ChartSpec::default()
            },
        ));
    }
    out
}

fn throughput_vs_p99(a: &Analysis) -> ReportChart {
    let pair = |lat: &dyn Fn(usize) -> Option<f64>| -> Vec<(f64, f64)> {
        (0..a.steps.len())
            .filter_map(|i| Some((lat(i)? * MS, a.steps[i].output_tokens_per_s?)))
            .collect()
    };
    let s = vec![
        series(
            "p99 TTFT",
            SeriesStyle::LineAndPoints,
            pair(&|i| a.steps[i].ttft_s.map(|d| d.p99)),
        ),
        series(
            "p99 TPOT",
            SeriesStyle::LineAndPoints,
            pair(&|i| a.steps[i].tpot_s.map(|d| d.p99)),
        ),
    ];
    chart(
        "throughput_vs_p99",
        "Output throughput against p99 latency, one point per step: what each gain in \
         throughput costs in tail latency."
            .into(),
        ChartSpec {
            title: "Throughput vs p99 latency".into(),
            x_label: "p99 latency (ms)".into(),
            y_label: "output throughput (tok/s)".into(),
            series: s,
            log_x: true,
            y_from_zero: true,
            ..ChartSpec::default()
        },
    )
}

fn error_rate(a: &Analysis) -> ReportChart {
    let pts = a
        .steps
        .iter()
        .filter(|s| s.requests > s.requests_warmup)
        .map(|s| {
            let counted = s.requests_ok + s.requests_failed;
            let rate = if counted == 0 {
                0.0
            } else {
                f64::from(s.requests_failed) / f64::from(counted) * 100.0
            };
            (f64::from(s.batch_size), rate)
        })
        .collect();
    chart(
        "error_rate",
        "Failed requests per step (HTTP errors, timeouts, cut streams, malformed SSE), as a \
         share of the step's measured requests."
            .into(),
        ChartSpec {
            title: "Error rate per step".into(),
            x_label: "batch size (sequences)".into(),
            y_label: "failed requests (%)".into(),
            series: vec![series("failed", SeriesStyle::LineAndPoints, pts)],
            log_x: true,
            y_from_zero: true,
            ..ChartSpec::default()
        },
    )
}

/// At most this many steps in the ITL chart, spread over the run.
const ITL_MAX_STEPS: usize = 8;

fn itl_distribution(a: &Analysis, data: &Recording) -> ReportChart {
    // The frames were analysed already; a query failing here would have failed there first.
    let itls = crate::frames::measured_itls(data).unwrap_or_default();
    let n = a.steps.len();
    let pick: Vec<usize> = if n <= ITL_MAX_STEPS {
        (0..n).collect()
    } else {
        (0..ITL_MAX_STEPS)
            .map(|k| k * (n - 1) / (ITL_MAX_STEPS - 1))
            .collect()
    };
    let samples: Vec<(String, Vec<f64>)> = pick
        .into_iter()
        .map(|i| {
            let s = &a.steps[i];
            let v = itls
                .get(&s.step_idx)
                .map(|g| g.iter().map(|x| x * MS).collect())
                .unwrap_or_default();
            (format!("bs {} (step {})", s.batch_size, s.step_idx), v)
        })
        .collect();
    let mut spec = histogram_spec(
        "Inter-token latency per step",
        "inter-token latency (ms)",
        &samples,
        40,
        true,
    );
    spec.legend = LegendPosition::UpperRight;
    chart(
        "itl_distribution",
        "Distribution of the gaps between streamed chunks, per step (share of each step's gaps \
         per bin): a second mode or a long tail is a stall the means hide."
            .into(),
        spec,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bs_grid_spans_one_to_hi_geometrically() {
        let g = bs_grid(64.0);
        assert_eq!(g.len(), 49);
        assert!((g[0] - 1.0).abs() < 1e-12);
        assert!((g[48] - 64.0).abs() < 1e-9);
        assert!((g[24] - 8.0).abs() < 1e-9);
    }
}

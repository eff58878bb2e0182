//! A small report used by the renderers' tests: two steps, two charts, one finding of each
//! severity.

use super::chart::{ChartSpec, LegendPosition, RefLine, Series, SeriesStyle, render_svg};
use super::{DocChart, DocFinding, ReportDoc, Table};
use crate::finding::Severity;

/// The two sample charts, rendered.
fn charts() -> Vec<DocChart> {
    let throughput = ChartSpec {
        title: "Throughput vs batch size".into(),
        x_label: "batch size (sequences)".into(),
        y_label: "throughput (output tok/s)".into(),
        series: vec![Series {
            name: "measured".into(),
            points: vec![(8.0, 610.0), (64.0, 2370.0)],
            style: SeriesStyle::LineAndPoints,
        }],
        log_x: true,
        y_from_zero: true,
        ..ChartSpec::default()
    };
    let tpot = ChartSpec {
        title: "TPOT vs batch size".into(),
        x_label: "batch size (sequences)".into(),
        y_label: "TPOT (ms)".into(),
        series: vec![Series {
            name: "p50".into(),
            points: vec![(8.0, 13.1), (64.0, 27.0)],
            style: SeriesStyle::LineAndPoints,
        }],
        hlines: vec![RefLine {
            label: "SLA 50 ms".into(),
            y: 50.0,
        }],
        log_x: true,
        y_from_zero: true,
        legend: LegendPosition::UpperLeft,
        ..ChartSpec::default()
    };
    let svg = |spec: &ChartSpec| render_svg(spec, 640, 360).expect("sample chart renders");
    vec![
        DocChart {
            caption: "Throughput vs batch size".into(),
            file: "charts/throughput.svg".into(),
            svg: svg(&throughput),
        },
        DocChart {
            caption: "TPOT vs batch size, SLA dashed".into(),
            file: "charts/tpot.svg".into(),
            svg: svg(&tpot),
        },
    ]
}

pub(crate) fn sample_doc() -> ReportDoc {
    ReportDoc {
        labels: super::DocLabels::default(),
        rate_table: Table::default(),
        pd_table: Table::default(),
        title: "ceiling report — run 3 (sim, tiny-llm, 1× H100)".into(),
        verdict: vec![
            (
                "Ceiling".into(),
                "2,370 tok/s at bs 64 (TPOT p50 27.0 ms ≤ 50 ms)".into(),
            ),
            ("Efficiency vs roofline".into(), "71 % at bs 64".into()),
            ("Trust".into(), "1 error, 1 warning, 1 note".into()),
        ],
        findings: findings(),
        steps_note: Some(
            "GPUs recorded but not counted (not the engine's, or left out by --gpus): GPU-5c1e (util 97 %, power 612 W)".into(),
        ),
        step_table: Table {
            headers: vec![
                "step".into(),
                "bs".into(),
                "pattern".into(),
                "TPOT p50 (ms)".into(),
                "throughput (tok/s)".into(),
                "note".into(),
            ],
            rows: vec![
                vec![
                    "1".into(),
                    "8".into(),
                    "wave".into(),
                    "13.1".into(),
                    "610".into(),
                    "".into(),
                ],
                vec![
                    "2".into(),
                    "64".into(),
                    "wave".into(),
                    "27.0".into(),
                    "2,370".into(),
                    "a|b".into(),
                ],
            ],
        },
        length_table: length_table(),
        charts: charts(),
        environment: vec![
            ("engine".into(), "sim 0.1.0".into()),
            ("model".into(), "tiny-llm".into()),
            ("GPUs".into(), "1× NVIDIA H100 80GB HBM3".into()),
            ("tool".into(), "ceiling 0.1.0 (abc1234)".into()),
        ],
    }
}

/// One finding of each severity, most severe first.
fn findings() -> Vec<DocFinding> {
    vec![
        DocFinding {
            severity: Severity::Error,
            code: "engine_batch_mismatch".into(),
            message: "engine ran 48 sequences at bs 64: raise --max-num-seqs to 64 or more".into(),
        },
        DocFinding {
            severity: Severity::Warn,
            code: "gpu_throttle".into(),
            message: "SM clock fell 8 % under a power cap during step 2 (bs 64)".into(),
        },
        DocFinding {
            severity: Severity::Info,
            code: "client_lateness".into(),
            message: "client woke at most 0.4 ms late: it did not set the pace".into(),
        },
    ]
}

/// Two length pairs of a multi-length run, as the report's table by length shows them.
fn length_table() -> Table {
    Table {
        headers: vec![
            "length bucket".into(),
            "in tok".into(),
            "out tok".into(),
            "ceiling tok/s".into(),
        ],
        rows: vec![
            vec!["0-4k".into(), "128".into(), "128".into(), "2,370".into()],
            vec!["4k-16k".into(), "8192".into(), "1024".into(), "610".into()],
        ],
    }
}

//! The HTML report in a real browser: rendered to a temp dir, opened in headless Chromium by
//! `scripts/check_html.sh`, which must see no console message and every chart laid out with a
//! size; its screenshot must have the window's size and not be blank. Chromium is required, not
//! optional: `.ci/run` installs it, and without it this test fails and says so.

use std::path::Path;
use std::process::Command;

use ceiling_reports::Severity;
use ceiling_reports::render::{
    ChartSpec, DocChart, DocFinding, Marker, RefLine, ReportDoc, Series, SeriesStyle, Table,
    histogram_spec, html_page, render_svg,
};

fn sample_report() -> ReportDoc {
    let bs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    let throughput = ChartSpec {
        title: "Throughput vs batch size".into(),
        x_label: "batch size (sequences)".into(),
        y_label: "throughput (output tok/s)".into(),
        series: vec![
            Series {
                name: "measured".into(),
                points: bs
                    .iter()
                    .map(|&b| (b, b / (0.012 + 0.0003 * b) * 0.97))
                    .collect(),
                style: SeriesStyle::LineAndPoints,
            },
            Series {
                name: "fit".into(),
                points: bs.iter().map(|&b| (b, b / (0.012 + 0.0003 * b))).collect(),
                style: SeriesStyle::Dashed,
            },
        ],
        hlines: vec![RefLine {
            label: "roofline limit".into(),
            y: 3000.0,
        }],
        markers: vec![Marker {
            label: "ceiling".into(),
            x: 64.0,
            y: 2050.0,
        }],
        log_x: true,
        y_from_zero: true,
        ..ChartSpec::default()
    };
    let itl = histogram_spec(
        "ITL distribution per step",
        "inter-token latency (ms)",
        &[
            (
                "bs 8".into(),
                (0..200).map(|i| 12.0 + (i % 17) as f64 * 0.2).collect(),
            ),
            (
                "bs 64".into(),
                (0..200).map(|i| 30.0 + (i % 23) as f64 * 0.5).collect(),
            ),
        ],
        30,
        false,
    );
    let chart = |caption: &str, file: &str, spec: &ChartSpec| DocChart {
        caption: caption.into(),
        file: file.into(),
        svg: render_svg(spec, 900, 500).expect("chart renders"),
    };
    ReportDoc {
        labels: Default::default(),
        rate_table: Table::default(),
        pd_table: Table {
            headers: vec!["step".into(), "P queue ms".into(), "limiting".into()],
            rows: vec![vec!["0".into(), "812.4".into(), "prefill".into()]],
        },
        title: "ceiling report — browser check".into(),
        verdict: vec![("Ceiling".into(), "2,050 tok/s at bs 64".into())],
        findings: vec![DocFinding {
            severity: Severity::Warn,
            code: "gpu_throttle".into(),
            message: "SM clock fell 8 % under a power cap".into(),
        }],
        steps_note: None,
        step_table: Table {
            headers: vec!["bs".into(), "throughput (tok/s)".into()],
            rows: bs
                .iter()
                .map(|b| vec![b.to_string(), format!("{:.0}", b / (0.012 + 0.0003 * b))])
                .collect(),
        },
        length_table: Table::default(),
        charts: vec![
            chart(
                "Throughput vs batch size",
                "charts/throughput.svg",
                &throughput,
            ),
            chart("ITL distribution", "charts/itl.svg", &itl),
        ],
        environment: vec![("engine".into(), "sim".into())],
    }
}

#[test]
fn html_report_renders_in_headless_chromium_with_visible_charts() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    std::fs::write(&report, html_page(&sample_report())).unwrap();
    check_in_chromium(&report, 2);
}

/// Opens `report` with `scripts/check_html.sh` and asserts what a person would see: no console
/// message, `charts` charts each laid out at a readable size, and a screenshot that is not blank.
#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure fails the test"
)]
pub fn check_in_chromium(report: &Path, charts: usize) {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("screenshot.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_html.sh");

    let out = Command::new("bash")
        .arg(&script)
        .arg(report)
        .arg(&shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check_html.sh failed ({}); it needs Debian's chromium, which .ci/run installs\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.lines().any(|l| l == "console: 0"), "{stdout}");

    let sizes: Vec<(u32, u32)> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("charts: "))
        .unwrap_or_else(|| panic!("no chart sizes in {stdout}"))
        .split_whitespace()
        .map(|s| {
            let (w, h) = s.split_once('x').unwrap();
            (w.parse().unwrap(), h.parse().unwrap())
        })
        .collect();
    assert_eq!(sizes.len(), charts, "{stdout}");
    for (w, h) in sizes {
        assert!(w >= 300 && h >= 150, "chart laid out too small: {w}x{h}");
    }

    // For a person to look at: CEILING_KEEP_HTML_CHECK=DIR keeps the page and its screenshot.
    if let Some(keep) = std::env::var_os("CEILING_KEEP_HTML_CHECK") {
        std::fs::copy(report, Path::new(&keep).join("report.html")).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("screenshot.png")).unwrap();
    }

    let bytes = std::fs::read(&shot).unwrap();
    let mut reader = png::Decoder::new(bytes.as_slice()).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000), "the window size");
    let channels = info.color_type.samples();
    let luma: Vec<f64> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| {
            if channels >= 3 {
                0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
            } else {
                p[0] as f64
            }
        })
        .collect();
    let mean = luma.iter().sum::<f64>() / luma.len() as f64;
    let variance = luma.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luma.len() as f64;
    assert!(
        variance > 50.0,
        "the screenshot looks blank: luma mean {mean:.1}, variance {variance:.1}"
    );
}

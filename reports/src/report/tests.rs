//! The report's mapping from an analysis on a synthetic sweep with a known truth: verdict
//! figures, the step table, every chart with its data, result.json's layout, and a Markdown
//! snapshot of the whole document.

use super::*;
use crate::analysis::{AnalysisOptions, analyze};
use crate::recording::RunInfo;
use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};

const A: f64 = 0.008;
const B: f64 = 0.0002;

fn sweep() -> (SyntheticRun, Recording) {
    let specs: Vec<WaveSpec> = [1u32, 4, 16, 64]
        .iter()
        .map(|&bs| WaveSpec {
            batch_size: bs,
            input_len: 128,
            output_len: 101,
            waves: 2,
            step_time_s: A + B * f64::from(bs),
            ..WaveSpec::default()
        })
        .collect();
    let rec = wave_recording(&specs);
    let data = rec.recording_with(RunInfo {
        run_id: Some(7),
        engine_kind: Some("vllm".into()),
        model: Some("tiny".into()),
        dp: None,
    });
    (rec, data)
}

/// Llama-3.1-8B on a GPU that makes the bs-1 step's least time 4.1 ms, half the true 8.2 ms
/// (decode context 128 + 101 / 2 → 179 tokens); larger batches add their KV reads.
fn roofline() -> crate::roofline::Roofline {
    crate::roofline::llama_8b_with_t_min(0.0041, 1, 179)
}

/// The roofline's least step time at bs 64, about 4.5 ms.
fn t_min_64_s() -> f64 {
    roofline().at(64, 179).t_min_s
}

fn analysis() -> (Analysis, Recording) {
    let (_, data) = sweep();
    let opts = AnalysisOptions {
        roofline: Some(roofline()),
        ..AnalysisOptions::default()
    };
    (analyze(&data, &opts).unwrap(), data)
}

fn value<'a>(v: &'a [(String, String)], label: &str) -> &'a str {
    v.iter()
        .find(|(l, _)| l == label)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no verdict line {label:?} in {v:?}"))
}

#[test]
fn the_verdict_quotes_the_ceiling_fit_roofline_agreement_and_trust() {
    let (a, _) = analysis();
    let v = verdict(&a);
    let c = a.headline().expect("a ceiling");
    let ceiling = value(&v, "Ceiling");
    assert!(
        ceiling.starts_with(&format!("{:.0} output tok/s", c.throughput_tok_s)),
        "{ceiling}"
    );
    assert!(ceiling.contains(&format!("limited by {}", c.limited_by)));
    let fit = value(&v, "Step-time fit");
    assert!(
        fit.starts_with("t_fwd = 8.000 ms + 0.2000 ms × bs"),
        "{fit}"
    );
    // At bs 64 the roofline's least time against the true 20.8 ms step.
    let roof = value(&v, "Efficiency vs roofline");
    let eff = t_min_64_s() / 0.0208;
    assert!((0.2..0.25).contains(&eff), "{eff}");
    assert!(
        roof.starts_with(&format!(
            "{:.0} % at the largest batch (bs 64)",
            eff * 100.0
        )),
        "{roof}"
    );
    assert!(roof.contains("bs 64"), "{roof}");
    assert!(value(&v, "Client vs engine").starts_with("client and engine step times agree"));
    assert_eq!(
        value(&v, "Trust"),
        "no errors or warnings: the numbers hold"
    );
    assert!(value(&v, "Best measured").contains("at bs 64"));
}

#[test]
fn the_step_table_has_a_row_per_step_with_the_roofline_columns() {
    let (a, _) = analysis();
    let t = step_table(&a);
    assert_eq!(t.rows.len(), 4);
    assert_eq!(t.headers.len(), 18);
    assert!(t.rows.iter().all(|r| r.len() == t.headers.len()));
    assert_eq!(t.rows[3][1], "64");
    // t_fwd client at bs 64 is the true 20.8 ms step.
    let col = t
        .headers
        .iter()
        .position(|h| h == "t_fwd client ms")
        .expect("column");
    assert_eq!(t.rows[3][col], "20.80");
    let eff = t
        .headers
        .iter()
        .position(|h| h == "roofline eff %")
        .expect("column");
    assert_eq!(
        t.rows[3][eff],
        format!("{:.0}", t_min_64_s() / 0.0208 * 100.0)
    );
    let eff_bs1 = t.rows[0][eff].as_str();
    assert_eq!(eff_bs1, "50", "4.1 ms against 8.2 ms");
}

#[test]
fn every_chart_is_built_with_labelled_axes_and_data() {
    let (a, data) = analysis();
    let charts = report_charts(&a, &data);
    let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "throughput_vs_bs",
            "tpot_vs_bs",
            "step_time_vs_bs",
            "gpu_util_mem",
            "gpu_power",
            "gpu_sm_clock",
            "throughput_vs_p99",
            "error_rate",
            "itl_distribution"
        ]
    );
    for c in &charts {
        assert!(
            c.spec.x_label.contains('('),
            "{}: x label has a unit",
            c.name
        );
        assert!(
            c.spec.y_label.contains('('),
            "{}: y label has a unit",
            c.name
        );
        assert!(
            c.spec.series.iter().any(|s| !s.points.is_empty()),
            "{} has data",
            c.name
        );
    }
    let tp = &charts[0].spec;
    let marker = &tp.markers[0];
    let head = a.headline().expect("ceiling");
    assert_eq!(marker.y, head.throughput_tok_s);
    let tpot = &charts[1].spec;
    assert_eq!(tpot.hlines[0].y, 50.0, "default SLA 20 tok/s = 50 ms");
    let step = &charts[2].spec;
    let roof = step
        .series
        .iter()
        .find(|s| s.name == "roofline t_min")
        .expect("roofline series");
    assert!((roof.points[3].1 - t_min_64_s() * 1e3).abs() < 1e-9);
    assert!((roof.points[0].1 - 4.1).abs() < 1e-9);
    assert_eq!(charts[3].spec.shaded.len(), 4, "one band per step");
    let errors = &charts[7].spec.series[0].points;
    assert!(errors.iter().all(|p| p.1 == 0.0));
}

#[test]
fn a_run_without_gpu_samples_has_no_gpu_charts() {
    let (a, mut data) = analysis();
    data.gpu.clear();
    let charts = report_charts(&a, &data);
    assert!(charts.iter().all(|c| !c.name.starts_with("gpu_")));
    assert_eq!(charts.len(), 6);
}

#[test]
fn result_json_carries_the_schema_version_headline_and_analysis() {
    let (a, data) = analysis();
    let j = result_json(&a, &data, json!({"id": 7}));
    assert_eq!(j["schema_version"], RESULT_SCHEMA_VERSION);
    assert_eq!(j["run"]["id"], 7);
    assert_eq!(j["counts"]["steps"], 4);
    assert_eq!(j["has_errors"], false);
    let head = a.headline().expect("ceiling");
    assert_eq!(j["headline"]["throughput_tok_s"], head.throughput_tok_s);
    assert_eq!(j["analysis"]["steps"].as_array().map(Vec::len), Some(4));
    assert_eq!(j["analysis"]["fit"]["context_term"], "one_context");
    assert_eq!(j["headline"]["length_bucket"], "0-4k");
    assert_eq!(j["headline"]["seq_len_tokens"], 229);
}

#[test]
fn the_committed_schema_has_this_version_and_every_field_it_requires() {
    let (a, data) = analysis();
    let j = result_json(&a, &data, json!({"id": 7}));
    assert_eq!(
        RESULT_SCHEMA_VERSION, 2,
        "lengths and the context term are version 2"
    );
    assert_eq!(super::schema_check::drift(&j), Vec::<String>::new());
    // The check bites: a result of the previous layout drifts on the version and the new fields.
    let mut old = j.clone();
    old["schema_version"] = json!(1);
    if let Some(c) = old["headline"].as_object_mut() {
        c.remove("length_bucket");
    }
    assert_eq!(
        super::schema_check::drift(&old),
        [
            "schema_version: schema 2 vs result 1",
            "ceiling: length_bucket missing at headline"
        ]
    );
}

#[test]
fn markdown_report_snapshot() {
    let (a, data) = analysis();
    let charts: Vec<(ReportChart, String)> = report_charts(&a, &data)
        .into_iter()
        .map(|c| (c, String::new()))
        .collect();
    let doc = report_doc(
        &a,
        &charts,
        vec![("Engine".into(), "vllm (synthetic)".into())],
    );
    insta::assert_snapshot!(crate::render::markdown(&doc));
}

#[test]
fn terminal_summary_snapshot() {
    let (a, _) = analysis();
    insta::assert_snapshot!(crate::render_terminal(&a));
}

#[test]
fn colour_marks_only_the_severity_words() {
    let (mut a, _) = analysis();
    a.findings.push(crate::finding::Finding {
        step_idx: Some(1),
        code: "request_failures".into(),
        severity: Severity::Error,
        message: "m".into(),
        evidence: serde_json::Value::Null,
    });
    let plain = crate::render_terminal(&a);
    let coloured = crate::terminal::colourize(&plain);
    assert!(coloured.contains("\u{1b}[31merror\u{1b}[0m"), "{coloured}");
    assert!(coloured.contains("\u{1b}[36minfo\u{1b}[0m"), "{coloured}");
    let stripped = coloured
        .replace("\u{1b}[31m", "")
        .replace("\u{1b}[33m", "")
        .replace("\u{1b}[36m", "")
        .replace("\u{1b}[0m", "");
    assert_eq!(stripped, plain);
}

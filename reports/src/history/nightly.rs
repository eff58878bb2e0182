//! The nightly report of one node (`ceiling nightly`): one night's verdict against the node's
//! history as a [`ReportDoc`], rendered by the same HTML and Markdown renderers as a run's
//! report. The verdict comes first (the morning's one line, the gate, the baseline, where the
//! run's own report is), then each regression and what changed beside it, the verdict per
//! metric × batch size × lengths (regressions first), the trend charts with their noise band,
//! and the run's environment. Pure: it formats what [`RegressReport`] holds.

use super::RegressReport;
use super::regress::{MetricVerdict, Verdict};
use crate::finding::Severity;
use crate::render::{DocChart, DocFinding, DocLabels, ReportDoc, Table};

/// What the nightly report shows besides the judged report.
#[derive(Debug, Clone, Default)]
pub struct NightlyParts {
    /// The trend charts, in the order shown.
    pub charts: Vec<DocChart>,
    /// The run's environment (engine, model, GPUs, host, tool, probe config).
    pub environment: Vec<(String, String)>,
    /// The run's own report, relative to the nightly one (e.g. `run/report.html`).
    pub run_report: String,
    /// `--gate` was given: a regression exits 1.
    pub gate: bool,
}

/// The nightly report of `r`.
pub fn nightly_doc(r: &RegressReport, parts: NightlyParts) -> ReportDoc {
    let host = r.host.as_deref().unwrap_or("this node");
    let regressions = r.regressions().count();
    let gate = match (regressions, parts.gate) {
        (0, _) => "pass: no metric regressed beyond noise (exit 0)".to_string(),
        (n, true) => format!("fail: {n} regression(s) (exit 1, --gate)"),
        (n, false) => format!("{n} regression(s); exit 0 (no --gate)"),
    };
    let mut findings: Vec<DocFinding> = r
        .regressions()
        .map(|v| DocFinding {
            severity: Severity::Error,
            code: v.metric.clone(),
            message: regression_line(v),
        })
        .collect();
    findings.extend(r.attribution.iter().map(|c| DocFinding {
        severity: Severity::Warn,
        code: c.code.clone(),
        message: format!("changed beside the regression: {}", c.message),
    }));
    ReportDoc {
        title: format!(
            "ceiling nightly — {host}, run {} ({})",
            r.run_id, r.started_at
        ),
        verdict: vec![
            ("Verdict".into(), r.headline()),
            ("Gate".into(), gate),
            ("Baseline".into(), baseline_line(r)),
            ("Run report".into(), parts.run_report),
        ],
        findings,
        step_table: verdict_table(r),
        steps_note: None,
        length_table: Table::default(),
        rate_table: Table::default(),
        pd_table: Table::default(),
        charts: parts.charts,
        environment: parts.environment,
        labels: DocLabels {
            trust: "Regressions and what changed beside them".into(),
            no_findings: "No regression beyond noise.".into(),
            steps: "Every metric against its baseline".into(),
        },
    }
}

fn baseline_line(r: &RegressReport) -> String {
    let o = &r.options;
    if r.baseline_run_ids.is_empty() {
        return "none: the first night of this history key".into();
    }
    format!(
        "runs {} (the last {} of the same host, GPUs, engine, model and probe config; a change counts beyond {} robust sigmas and {:.1} %)",
        r.baseline_run_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        o.last_n,
        o.k,
        o.min_effect * 100.0
    )
}

/// `t_fwd_s at bs 64 (256/128): 0.012300 against a baseline median of 0.011300, +8.8 %, z 5.1`.
fn regression_line(v: &MetricVerdict) -> String {
    format!(
        "{} at bs {} ({}/{}): {:.6} against a baseline median of {}, {}, z {}",
        v.metric,
        v.batch_size,
        v.input_len,
        v.output_len,
        v.value,
        num(v.baseline_median, 6),
        v.change_rel
            .map_or_else(|| "-".into(), |c| format!("{:+.1} %", c * 100.0)),
        num(v.z, 1)
    )
}

fn num(x: Option<f64>, places: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.places$}"))
}

/// Every verdict, regressions first, then by metric, batch size and lengths.
fn verdict_table(r: &RegressReport) -> Table {
    let mut rows: Vec<&MetricVerdict> = r.verdicts.iter().collect();
    rows.sort_by(|a, b| {
        (a.verdict != Verdict::Regression)
            .cmp(&(b.verdict != Verdict::Regression))
            .then_with(|| a.metric.cmp(&b.metric))
            .then_with(|| {
                (a.batch_size, a.input_len, a.output_len).cmp(&(
                    b.batch_size,
                    b.input_len,
                    b.output_len,
                ))
            })
    });
    Table {
        headers: [
            "metric",
            "bs",
            "in/out",
            "value",
            "baseline median",
            "change",
            "z",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .into_iter()
            .map(|v| {
                vec![
                    v.metric.clone(),
                    v.batch_size.to_string(),
                    format!("{}/{}", v.input_len, v.output_len),
                    format!("{:.6}", v.value),
                    num(v.baseline_median, 6),
                    v.change_rel
                        .map_or_else(|| "-".into(), |c| format!("{:+.1} %", c * 100.0)),
                    num(v.z, 1),
                    v.verdict.as_str().into(),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::attribution::Cause;
    use crate::history::regress::RegressOptions;

    fn verdict(metric: &str, bs: u32, change: f64, verdict: Verdict) -> MetricVerdict {
        MetricVerdict {
            run_id: 12,
            metric: metric.into(),
            batch_size: bs,
            input_len: 16,
            output_len: 16,
            value: 0.1 * (1.0 + change),
            baseline_runs: 7,
            baseline_median: Some(0.1),
            baseline_sigma: Some(0.001),
            sigma: Some(0.001),
            change_rel: Some(change),
            z: Some(change * 100.0),
            verdict,
            worse_than_last: false,
            change_vs_last_rel: Some(change),
        }
    }

    fn report(verdicts: Vec<MetricVerdict>, attribution: Vec<Cause>) -> RegressReport {
        RegressReport {
            run_id: 12,
            host: Some("gpu-node-17".into()),
            started_at: "2026-12-02T03:00:00Z".into(),
            options: RegressOptions::default(),
            baseline_run_ids: vec![5, 6, 7, 8, 9, 10, 11],
            verdicts,
            attribution,
            fleet: Vec::new(),
        }
    }

    #[test]
    fn a_regression_comes_first_with_what_changed_beside_it_and_the_gate() {
        let r = report(
            vec![
                verdict("itl_p50_s", 4, 0.004, Verdict::WithinNoise),
                verdict("t_fwd_s", 16, 0.08, Verdict::Regression),
            ],
            vec![Cause {
                code: "driver_changed".into(),
                message: "driver 550.54 → 560.28".into(),
                evidence: serde_json::Value::Null,
            }],
        );
        let doc = nightly_doc(
            &r,
            NightlyParts {
                run_report: "run/report.html".into(),
                gate: true,
                ..NightlyParts::default()
            },
        );
        assert!(
            doc.verdict[0]
                .1
                .starts_with("gpu-node-17: run 12: t_fwd_s at bs 16 rose 8.0 %")
        );
        assert_eq!(doc.verdict[1].1, "fail: 1 regression(s) (exit 1, --gate)");
        assert!(
            doc.verdict[2]
                .1
                .starts_with("runs 5, 6, 7, 8, 9, 10, 11 (the last 7")
        );
        assert_eq!(doc.verdict[3].1, "run/report.html");
        let codes: Vec<&str> = doc.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["t_fwd_s", "driver_changed"]);
        assert_eq!(
            doc.findings[0].message,
            "t_fwd_s at bs 16 (16/16): 0.108000 against a baseline median of 0.100000, +8.0 %, z 8.0"
        );
        assert_eq!(doc.step_table.rows[0][0], "t_fwd_s");
        assert_eq!(doc.step_table.rows[1][7], "within_noise");
        let md = crate::render::markdown(&doc);
        assert!(
            md.contains("### Regressions and what changed beside them"),
            "{md}"
        );
        assert!(md.contains("## Every metric against its baseline"), "{md}");
    }

    #[test]
    fn a_quiet_night_passes_and_says_so() {
        let r = report(
            vec![verdict("t_fwd_s", 16, 0.004, Verdict::WithinNoise)],
            vec![],
        );
        let doc = nightly_doc(&r, NightlyParts::default());
        assert!(doc.findings.is_empty());
        assert_eq!(
            doc.verdict[1].1,
            "pass: no metric regressed beyond noise (exit 0)"
        );
        let html = crate::render::html_page(&doc);
        assert!(
            html.contains("<p class=\"none\">No regression beyond noise.</p>"),
            "{html}"
        );
        assert!(html.contains("no regression beyond noise"), "{html}");
    }
}

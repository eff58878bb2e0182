//! The regression verdicts rendered: as JUnit XML, one testcase per metric × batch size ×
//! lengths (CI dashboards read it; a regression fails, insufficient history is skipped, the
//! rest pass), and as the terminal's table.

use super::RegressReport;
use super::regress::Verdict;

/// XML-escapes text for an attribute or element.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The report as a JUnit `<testsuites>` document, valid against Maven Surefire's schema
/// (`junit-10.xsd`, which Jenkins and pytest use): `skipped` is counted on the `<testsuite>`
/// only, the schema allows no such attribute on `<testsuites>`.
pub fn junit(r: &RegressReport) -> String {
    let host = r.host.as_deref().unwrap_or("unknown-host");
    let failures = r.regressions().count();
    let skipped = r
        .verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::InsufficientHistory)
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"ceiling regress\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n",
        r.verdicts.len()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\" timestamp=\"{}\" hostname=\"{}\">\n",
        esc(&format!("regress run {}", r.run_id)),
        r.verdicts.len(),
        esc(r.started_at.get(..19).unwrap_or(&r.started_at)),
        esc(host),
    ));
    let causes: Vec<&str> = r.attribution.iter().map(|c| c.message.as_str()).collect();
    for v in &r.verdicts {
        let name = format!(
            "{} bs {} in {} out {}",
            v.metric, v.batch_size, v.input_len, v.output_len
        );
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            esc(&name),
            esc(&format!("ceiling.{host}.{}", v.metric))
        ));
        let change = v
            .change_rel
            .map_or_else(|| "n/a".into(), |c| format!("{:+.1} %", c * 100.0));
        match v.verdict {
            Verdict::Regression => {
                let msg = format!(
                    "{} {change} beyond noise (z {:.1}, baseline median {:.6} over {} runs)",
                    v.metric,
                    v.z.unwrap_or(f64::INFINITY),
                    v.baseline_median.unwrap_or(f64::NAN),
                    v.baseline_runs
                );
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"regression\">{}</failure>\n    </testcase>\n",
                    esc(&msg),
                    esc(&causes.join("; "))
                ));
            }
            Verdict::InsufficientHistory => out.push_str(&format!(
                ">\n      <skipped message=\"insufficient history: {} baseline runs\"/>\n    </testcase>\n",
                v.baseline_runs
            )),
            Verdict::WithinNoise | Verdict::Improvement => out.push_str("/>\n"),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The report for a terminal: the headline, then one line per judged cell, regressions first.
pub fn render_terminal(r: &RegressReport) -> String {
    let mut out = format!("{}\n", r.headline());
    if !r.attribution.is_empty() {
        out.push_str("attribution:\n");
        for c in &r.attribution {
            out.push_str(&format!("  {:<22} {}\n", c.code, c.message));
        }
    }
    for (metric, p) in &r.fleet {
        let (bs, z) = (p.batch_size, p.z_text());
        out.push_str(&format!(
            "fleet {}: {metric} at bs {bs} {:.6}, median of {} nodes {:.6}, z {z}\n",
            p.date, p.value, p.nodes, p.fleet_median
        ));
    }
    out.push_str(&format!(
        "baseline: runs {:?} (last {}, k {}, min effect {:.1} %)\n",
        r.baseline_run_ids,
        r.options.last_n,
        r.options.k,
        r.options.min_effect * 100.0
    ));
    out.push_str(&format!(
        "{:<18} {:>5} {:>11} {:>12} {:>12} {:>8} {:>7}  verdict\n",
        "metric", "bs", "in/out", "value", "baseline", "change", "z"
    ));
    let mut rows: Vec<_> = r.verdicts.iter().collect();
    rows.sort_by_key(|v| v.verdict != Verdict::Regression);
    for v in rows {
        let f = |x: Option<f64>, p: usize| x.map_or_else(|| "-".into(), |x| format!("{x:.p$}"));
        out.push_str(&format!(
            "{:<18} {:>5} {:>11} {:>12.6} {:>12} {:>8} {:>7}  {}\n",
            v.metric,
            v.batch_size,
            format!("{}/{}", v.input_len, v.output_len),
            v.value,
            f(v.baseline_median, 6),
            v.change_rel
                .map_or_else(|| "-".into(), |c| format!("{:+.1}%", c * 100.0)),
            f(v.z, 1),
            v.verdict.as_str()
        ));
    }
    out
}

/// A Prometheus label value, escaped (`\`, `"`, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The night's key figures and verdicts in the Prometheus text format, for node_exporter's
/// textfile collector: per judged cell its value, baseline median and sigma and a 0/1 gauge per
/// verdict, and the run's count of regressions.
pub fn prom_textfile(r: &RegressReport) -> String {
    let host = label(r.host.as_deref().unwrap_or("unknown"));
    let mut out = String::new();
    let family = |out: &mut String, name: &str, help: &str| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    };
    family(
        &mut out,
        "ceiling_regressions",
        "Metrics x batch sizes that regressed beyond noise in the judged run.",
    );
    out.push_str(&format!(
        "ceiling_regressions{{host=\"{host}\",run=\"{}\"}} {}\n",
        r.run_id,
        r.regressions().count()
    ));
    let cell = |v: &super::regress::MetricVerdict| {
        format!(
            "host=\"{host}\",metric=\"{}\",bs=\"{}\",input_len=\"{}\",output_len=\"{}\"",
            label(&v.metric),
            v.batch_size,
            v.input_len,
            v.output_len
        )
    };
    type Get = fn(&super::regress::MetricVerdict) -> Option<f64>;
    let figures: [(&str, &str, Get); 3] = [
        (
            "ceiling_metric_value",
            "The judged run's value of the metric.",
            |v| Some(v.value),
        ),
        (
            "ceiling_metric_baseline_median",
            "Median of the metric over the baseline runs.",
            |v| v.baseline_median,
        ),
        (
            "ceiling_metric_sigma",
            "Combined robust sigma: baseline MAD x 1.4826 with the run's own interval.",
            |v| v.sigma,
        ),
    ];
    for (name, help, get) in figures {
        family(&mut out, name, help);
        for v in &r.verdicts {
            if let Some(x) = get(v).filter(|x| x.is_finite()) {
                out.push_str(&format!("{name}{{{}}} {x}\n", cell(v)));
            }
        }
    }
    family(
        &mut out,
        "ceiling_verdict",
        "1 for the verdict given to the metric at this batch size, 0 for the others.",
    );
    let all = [
        Verdict::Regression,
        Verdict::Improvement,
        Verdict::WithinNoise,
        Verdict::InsufficientHistory,
    ];
    for v in &r.verdicts {
        for verdict in all {
            out.push_str(&format!(
                "ceiling_verdict{{{},verdict=\"{}\"}} {}\n",
                cell(v),
                verdict.as_str(),
                u8::from(v.verdict == verdict)
            ));
        }
    }
    out
}

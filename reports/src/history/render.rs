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

/// The report as a JUnit `<testsuites>` document.
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
        "<testsuites name=\"ceiling regress\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
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

//! The HTML report: one self-contained file (inline CSS, inline SVG charts), no JavaScript and
//! nothing fetched, so it opens the same from disk, a CI artefact or an e-mail attachment.
//!
//! Sections, in order: verdict (headline figures, then trust: the findings), the step table,
//! the charts, the environment. Every text from the doc is escaped; chart SVG, which
//! [`super::render_svg`] produced, is inlined as is.

use std::fmt::Write as _;

use super::{DocChart, DocFinding, ReportDoc, Table};
use crate::finding::Severity;

const CSS: &str = r#"
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d2330;
  font: 15px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 4px 0 20px; }
h2 { font-size: 20px; margin: 32px 0 12px; border-bottom: 2px solid #d8dce3; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
table { border-collapse: collapse; background: #fff; margin: 4px 0; }
th, td { border: 1px solid #d8dce3; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 16em; }
table.verdict td { font-size: 17px; font-weight: 600; }
.scroll { overflow-x: auto; }
ul.findings { list-style: none; padding: 0; margin: 0; }
ul.findings li { margin: 6px 0; padding: 8px 12px; border-left: 6px solid; border-radius: 3px; }
ul.findings li.sev-error { background: #fdecea; border-color: #c62828; }
ul.findings li.sev-warn { background: #fff4e0; border-color: #e08a00; }
ul.findings li.sev-info { background: #e8f0fb; border-color: #3d74c5; }
.sev { display: inline-block; min-width: 3.6em; font-weight: 700; text-transform: uppercase;
  font-size: 12px; letter-spacing: 0.04em; }
li.sev-error .sev { color: #b71c1c; }
li.sev-warn .sev { color: #8a5300; }
li.sev-info .sev { color: #1f4f96; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; background: rgba(0,0,0,0.05);
  padding: 1px 4px; border-radius: 3px; }
p.note { color: #4a5262; font-size: 14px; }
p.none { color: #2e7d32; font-weight: 600; }
figure { margin: 16px 0 28px; background: #fff; border: 1px solid #d8dce3; padding: 12px; }
figure svg { display: block; width: 100%; max-width: 960px; height: auto; margin: 0 auto; }
figcaption { margin-top: 8px; color: #4a5262; font-size: 14px; text-align: center; }
"#;

/// The whole report as one HTML document.
pub fn html_page(doc: &ReportDoc) -> String {
    let mut out =
        String::with_capacity(64 * 1024 + doc.charts.iter().map(|c| c.svg.len()).sum::<usize>());
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // An empty data: icon stops the browser asking for /favicon.ico.
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(out, "<title>{}</title>", esc(&doc.title));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&doc.title));

    out.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    if doc.verdict.is_empty() {
        out.push_str("<p>No headline figures: the run has no successful step.</p>\n");
    } else {
        key_values(&mut out, "kv verdict", &doc.verdict);
    }
    let _ = writeln!(out, "<h3>{}</h3>", esc(&doc.labels.trust));
    findings(&mut out, &doc.findings, &doc.labels.no_findings);
    out.push_str("</section>\n");

    let _ = writeln!(
        out,
        "<section id=\"steps\">\n<h2>{}</h2>",
        esc(&doc.labels.steps)
    );
    table(&mut out, &doc.step_table);
    if let Some(note) = &doc.steps_note {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(note));
    }
    out.push_str("</section>\n");

    if !doc.length_table.rows.is_empty() {
        out.push_str("<section id=\"lengths\">\n<h2>Ceiling by length</h2>\n");
        table(&mut out, &doc.length_table);
        out.push_str("</section>\n");
    }

    if !doc.rate_table.rows.is_empty() {
        out.push_str("<section id=\"rates\">\n<h2>Open loop: rate steps</h2>\n");
        table(&mut out, &doc.rate_table);
        out.push_str("</section>\n");
    }

    if !doc.pd_table.rows.is_empty() {
        out.push_str("<section id=\"pd\">\n<h2>Prefill/decode disaggregation</h2>\n");
        table(&mut out, &doc.pd_table);
        out.push_str("</section>\n");
    }

    out.push_str("<section id=\"charts\">\n<h2>Charts</h2>\n");
    if doc.charts.is_empty() {
        out.push_str("<p>No charts.</p>\n");
    }
    for chart in &doc.charts {
        figure(&mut out, chart);
    }
    out.push_str("</section>\n");

    out.push_str("<section id=\"environment\">\n<h2>Environment</h2>\n");
    key_values(&mut out, "kv", &doc.environment);
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

fn findings(out: &mut String, findings: &[DocFinding], none: &str) {
    if findings.is_empty() {
        let _ = writeln!(out, "<p class=\"none\">{}</p>", esc(none));
        return;
    }
    out.push_str("<ul class=\"findings\">\n");
    for f in findings {
        let sev = severity_class(f.severity);
        let _ = writeln!(
            out,
            "<li class=\"sev-{sev}\"><span class=\"sev\">{sev}</span> <code>{}</code> {}</li>",
            esc(&f.code),
            esc(&f.message)
        );
    }
    out.push_str("</ul>\n");
}

fn severity_class(s: Severity) -> &'static str {
    s.as_str()
}

fn key_values(out: &mut String, class: &str, rows: &[(String, String)]) {
    let _ = writeln!(out, "<table class=\"{class}\">");
    for (k, v) in rows {
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    out.push_str("</table>\n");
}

fn table(out: &mut String, t: &Table) {
    if t.headers.is_empty() && t.rows.is_empty() {
        out.push_str("<p>No steps.</p>\n");
        return;
    }
    out.push_str("<div class=\"scroll\">\n<table class=\"steps\">\n<thead><tr>");
    for h in &t.headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let width = t
        .headers
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
    for row in &t.rows {
        out.push_str("<tr>");
        for i in 0..width {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            let class = if looks_numeric(cell) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

fn figure(out: &mut String, chart: &DocChart) {
    out.push_str("<figure>\n");
    out.push_str(strip_prolog(&chart.svg).trim());
    let _ = writeln!(
        out,
        "\n<figcaption>{}</figcaption>\n</figure>",
        esc(&chart.caption)
    );
}

/// Drops an XML declaration or doctype before `<svg`, which has no place inside HTML.
fn strip_prolog(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

/// Right-align cells that read as numbers, with or without a unit or sign (`1,234`, `-3.5 %`).
pub(crate) fn looks_numeric(cell: &str) -> bool {
    let t = cell.trim_start_matches(['-', '+', '~', '≈']);
    t.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample::sample_doc;

    #[test]
    fn sections_come_in_order_verdict_steps_charts_environment() {
        let page = html_page(&sample_doc());
        let at = |needle: &str| {
            page.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(at("id=\"verdict\"") < at("id=\"steps\""));
        assert!(at("id=\"steps\"") < at("<p class=\"note\">GPUs recorded but not counted"));
        assert!(at("<p class=\"note\">") < at("id=\"lengths\""));
        let mut all_counted = sample_doc();
        all_counted.steps_note = None;
        assert!(!html_page(&all_counted).contains("class=\"note\""));
        assert!(at("id=\"steps\"") < at("id=\"lengths\""));
        assert!(at("id=\"lengths\"") < at("id=\"charts\""));
        assert!(at(">4k-16k</td>") > at("id=\"lengths\""));
        let mut one_length = sample_doc();
        one_length.length_table = Table::default();
        assert!(!html_page(&one_length).contains("id=\"lengths\""));
        assert!(at("id=\"charts\"") < at("id=\"environment\""));
        assert!(
            at("<li class=\"sev-error\">") < at("<li class=\"sev-info\">"),
            "order kept"
        );
    }

    #[test]
    fn page_is_self_contained() {
        let page = html_page(&sample_doc());
        assert!(!page.contains("<script"), "no JavaScript");
        let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !without_ns.contains("http:") && !without_ns.contains("https:"),
            "no URLs"
        );
        assert!(!without_ns.contains("src="), "nothing loaded");
        assert!(!page.contains("<?xml"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(page.matches("<figure>").count(), 2);
    }

    #[test]
    fn text_is_escaped() {
        let mut doc = sample_doc();
        doc.title = "<script>alert(1)</script>".into();
        doc.steps_note = Some("GPU <b>".into());
        doc.environment
            .push(("model".into(), "a&b \"q\" <i>".into()));
        let page = html_page(&doc);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a&amp;b &quot;q&quot; &lt;i&gt;"));
        assert!(page.contains("GPU &lt;b&gt;"));
    }

    #[test]
    fn empty_doc_still_renders_every_section() {
        let page = html_page(&ReportDoc::default());
        for id in ["verdict", "steps", "charts", "environment"] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(page.contains("No findings"));
    }

    #[test]
    fn numeric_cells_align_right() {
        assert!(looks_numeric("1,234 tok/s"));
        assert!(looks_numeric("-3.5 %"));
        assert!(!looks_numeric("wave"));
        assert!(!looks_numeric(""));
    }
}

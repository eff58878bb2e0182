//! The Markdown report, for pull requests and chat: GitHub-flavoured tables, findings as a
//! list, charts as image links to the SVG files written beside it (`charts/NAME.svg`, as given
//! in each [`DocChart::file`]). Same sections and order as the HTML report. Text is escaped so
//! that names with `|`, `*` or `_` stay text.

use std::fmt::Write as _;

use super::{DocChart, ReportDoc, Table};

/// The whole report as GitHub-flavoured Markdown.
pub fn markdown(doc: &ReportDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", text(&doc.title));

    out.push_str("## Verdict\n\n");
    if doc.verdict.is_empty() {
        out.push_str("No headline figures: the run has no successful step.\n\n");
    } else {
        key_values(&mut out, ("Figure", "Value"), &doc.verdict);
    }
    let _ = writeln!(out, "### {}\n", text(&doc.labels.trust));
    if doc.findings.is_empty() {
        let _ = writeln!(out, "{}\n", text(&doc.labels.no_findings));
    } else {
        for f in &doc.findings {
            let _ = writeln!(
                out,
                "- **{}** `{}`: {}",
                f.severity.as_str(),
                code(&f.code),
                text(&f.message)
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## {}\n", text(&doc.labels.steps));
    table(&mut out, &doc.step_table);
    if let Some(note) = &doc.steps_note {
        let _ = writeln!(out, "{}\n", text(note));
    }

    if !doc.length_table.rows.is_empty() {
        out.push_str("## Ceiling by length\n\n");
        table(&mut out, &doc.length_table);
    }

    if !doc.rate_table.rows.is_empty() {
        out.push_str("## Open loop: rate steps\n\n");
        table(&mut out, &doc.rate_table);
    }

    if !doc.pd_table.rows.is_empty() {
        out.push_str("## Prefill/decode disaggregation\n\n");
        table(&mut out, &doc.pd_table);
    }

    out.push_str("## Charts\n\n");
    if doc.charts.is_empty() {
        out.push_str("No charts.\n\n");
    }
    for chart in &doc.charts {
        image(&mut out, chart);
    }

    out.push_str("## Environment\n\n");
    key_values(&mut out, ("Item", "Value"), &doc.environment);
    // One trailing newline, as editors and `git diff` expect.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn key_values(out: &mut String, headers: (&str, &str), rows: &[(String, String)]) {
    let t = Table {
        headers: vec![headers.0.to_string(), headers.1.to_string()],
        rows: rows
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect(),
    };
    // Headline values are sentences that start with a number: left-aligned reads better.
    table_aligned(out, &t, false);
}

fn table(out: &mut String, t: &Table) {
    table_aligned(out, t, true);
}

/// A GFM table; with `align_numbers`, columns whose every non-empty cell is numeric align right.
fn table_aligned(out: &mut String, t: &Table, align_numbers: bool) {
    let width = t
        .headers
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
    if width == 0 {
        out.push_str("None.\n\n");
        return;
    }
    let cell = |row: &[String], i: usize| row.get(i).map(|c| cell_text(c)).unwrap_or_default();
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line((0..width).map(|i| cell(&t.headers, i)).collect()));
    let numeric = |i: usize| {
        let mut cells = t
            .rows
            .iter()
            .filter_map(|r| r.get(i))
            .filter(|c| !c.trim().is_empty())
            .peekable();
        align_numbers && cells.peek().is_some() && cells.all(|c| super::html::looks_numeric(c))
    };
    out.push_str(&line(
        (0..width)
            .map(|i| if numeric(i) { "---:" } else { "---" }.to_string())
            .collect(),
    ));
    for row in &t.rows {
        out.push_str(&line((0..width).map(|i| cell(row, i)).collect()));
    }
    out.push('\n');
}

fn image(out: &mut String, chart: &DocChart) {
    let target = if chart.file.contains([' ', '(', ')']) {
        format!("<{}>", chart.file)
    } else {
        chart.file.clone()
    };
    let _ = writeln!(out, "![{}]({target})\n", text(&chart.caption));
}

/// Escapes Markdown's inline syntax so the text reads as written.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A table cell: trimmed and escaped.
fn cell_text(s: &str) -> String {
    text(s.trim())
}

/// Content for a code span: backticks cannot be escaped inside one, so they are dropped.
fn code(s: &str) -> String {
    s.replace(['`', '\n', '\r'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sample::sample_doc;

    #[test]
    fn markdown_report_snapshot() {
        insta::assert_snapshot!(markdown(&sample_doc()));
    }

    #[test]
    fn empty_doc_has_every_section() {
        insta::assert_snapshot!(markdown(&ReportDoc::default()));
    }

    #[test]
    fn pipes_and_emphasis_in_cells_stay_text() {
        let t = Table {
            headers: vec!["a|b".into()],
            rows: vec![vec!["x_y *z*".into()]],
        };
        let mut out = String::new();
        table(&mut out, &t);
        assert_eq!(out, "| a\\|b |\n| --- |\n| x\\_y \\*z\\* |\n\n");
    }

    #[test]
    fn short_rows_are_padded_to_the_header() {
        let t = Table {
            headers: vec!["bs".into(), "note".into()],
            rows: vec![vec!["8".into()]],
        };
        let mut out = String::new();
        table(&mut out, &t);
        assert_eq!(out, "| bs | note |\n| ---: | --- |\n| 8 |  |\n\n");
    }
}
